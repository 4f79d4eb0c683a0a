"""The wheel is a real, plain (non-editable) install: it carries the grammar and the JSON Schemas,
and the engine works from it with the source tree out of reach."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import EXAMPLES, POLICIES, ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
    )
    return next(out.glob("fairalloc-*.whl"))


def test_wheel_ships_grammar_and_schemas(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "fairalloc/grammar/fairalloc.lark" in names
    for schema in ("policy", "trade", "allocation"):
        assert f"fairalloc/schemas/{schema}.schema.json" in names
    assert "fairalloc/py.typed" in names
    assert any(name.endswith("entry_points.txt") for name in names)


def test_installed_wheel_validates_and_allocates(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    env = dict(os.environ, PYTHONPATH=str(target))
    code = (
        "import fairalloc, sys; from fairalloc.expressions import grammar;"
        f"assert fairalloc.__file__.startswith({str(target)!r}), fairalloc.__file__;"
        "from fairalloc.cli import main;"
        f"sys.exit(main(['allocate', '--policy', {str(POLICIES / 'us-equity-pro-rata.yaml')!r},"
        f" '--trade', {str(EXAMPLES / 'us-equity-pro-rata.trade.json')!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert '"CLIENT-A"' in done.stdout and '"quantity": 15000' in done.stdout
