"""The grammar file: found in the source tree, shipped in the wheel, loaded from the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from fairalloc.expressions.grammar import GRAMMAR_NAME, grammar_text, parser

REPO = Path(__file__).resolve().parents[2]


def test_grammar_text_is_the_repository_file() -> None:
    assert grammar_text() == (REPO / "grammar" / GRAMMAR_NAME).read_text(encoding="utf-8")


def test_parser_is_built_once() -> None:
    assert parser() is parser()


@pytest.mark.slow
def test_wheel_ships_the_grammar_and_loads_it_from_the_installed_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
    )
    (wheel,) = tmp_path.glob("fairalloc-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert f"fairalloc/grammar/{GRAMMAR_NAME}" in archive.namelist()
        installed = tmp_path / "installed"
        archive.extractall(installed)
    program = (
        "import fairalloc.expressions.grammar as g, pathlib\n"
        "from fairalloc.expressions import ROOTS, Scope, Type, compile_expression\n"
        f"assert pathlib.Path(g.__file__).is_relative_to({str(installed)!r}), g.__file__\n"
        "e = compile_expression('allocation > 1%', scope=Scope.build(ROOTS), expect=Type.BOOLEAN)\n"
        "assert e.evaluate(allocation=1) is True\n"
        "print('ok')\n"
    )
    # -S: no site-packages processing, so the editable install of the source tree is not on the
    # path; the wheel's copy and the dependencies' directory are the only places to import from.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), sysconfig.get_paths()["purelib"]])}
    result = subprocess.run(
        [sys.executable, "-S", "-c", program], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
