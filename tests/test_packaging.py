"""The wheel as a user installs it: alone, with only its core dependencies, in a clean virtual
environment (``python -m venv``; the dependencies come from the configured package index).

From there the core commands work with the source tree out of reach (the commands run in a
temporary directory and read the repository's policies by absolute path), nothing named
``engine`` is importable, a command whose extra is missing says which extra to install, the core
install stays small, and the demo runs once ``fairalloc[all]`` is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import EXAMPLES, POLICIES, ROOT

CORE_LIMIT_MB = 150
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


@dataclass(frozen=True)
class Venv:
    """A virtual environment with the wheel installed, and what installing it cost."""

    path: Path
    work: Path  # an empty directory to run commands in, away from the source tree
    site_mb: float
    seconds: float

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A program of the environment (``fairalloc``, ``python``), run from the empty directory."""
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return subprocess.run([str(self.path / "bin" / argv[0]), *argv[1:]], cwd=self.work, env=env,
                              capture_output=True, text=True, timeout=300)


def _site_packages_mb(venv: Path) -> float:
    (site,) = venv.glob("lib/python*/site-packages")
    return sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def _pip_install(venv: Path, requirement: str) -> None:
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", requirement],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
    )
    return next(out.glob("fairalloc-*.whl"))


@pytest.fixture(scope="module")
def core(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    """``pip install fairalloc`` in a fresh environment; the size is measured right after."""
    base = tmp_path_factory.mktemp("core")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True)
    _pip_install(base / "venv", str(wheel))
    seconds = time.monotonic() - started
    (base / "work").mkdir()
    venv = Venv(base / "venv", base / "work", _site_packages_mb(base / "venv"), seconds)
    print(f"\ncore install: {venv.site_mb:.1f} MB of site-packages, {seconds:.1f} s to create and install")
    yield venv


def test_wheel_ships_grammar_schemas_license_and_demo_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "fairalloc/grammar/fairalloc.lark" in names
    for schema in ("policy", "trade", "allocation"):
        assert f"fairalloc/schemas/{schema}.schema.json" in names
    assert "fairalloc/py.typed" in names
    assert any(name.endswith("entry_points.txt") for name in names)
    license_text = zipfile.ZipFile(wheel).read(f"fairalloc-{VERSION}.dist-info/licenses/LICENSE").decode()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(wheel).read(
        f"fairalloc-{VERSION}.dist-info/METADATA").decode()
    assert "fairalloc/demo_data/policies/us-equity-pro-rata.yaml" in names
    assert "fairalloc/demo_data/examples/ledger-day/day.json" in names
    assert not [name for name in names if name.startswith("engine/")]


def test_sdist_carries_the_license_and_the_examples(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)], cwd=ROOT,
                   check=True, capture_output=True)
    (sdist,) = tmp_path.glob("fairalloc-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    assert {f"fairalloc-{VERSION}/{name}" for name in ("LICENSE", "pyproject.toml", "policies/us-equity-pro-rata.yaml",
                                                        "grammar/fairalloc.lark")} <= names


def test_core_install_is_small(core: Venv) -> None:
    assert core.site_mb <= CORE_LIMIT_MB, f"{core.site_mb:.1f} MB"


def test_core_install_brings_no_extra(core: Venv) -> None:
    done = core.run("python", "-c", "import importlib.util as u; "
                    "print([m for m in ('sqlalchemy', 'alembic', 'psycopg', 'polars') if u.find_spec(m)])")
    assert done.stdout.strip() == "[]", done.stderr


def test_import_name_is_fairalloc_not_engine(core: Venv) -> None:
    done = core.run("python", "-c", "import fairalloc, sys; print(fairalloc.__file__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(core.path)), done.stdout
    done = core.run("python", "-c", "import engine")
    assert done.returncode == 1 and "ModuleNotFoundError: No module named 'engine'" in done.stderr


def test_version_from_package_metadata(core: Venv) -> None:
    done = core.run("fairalloc", "--version")
    assert (done.returncode, done.stdout) == (0, f"fairalloc {VERSION}\n")


def test_core_commands_work_on_folders(core: Venv) -> None:
    validate = core.run("fairalloc", "validate", str(POLICIES))
    assert validate.returncode == 0, validate.stderr
    assert len(validate.stdout.splitlines()) == len(list(POLICIES.glob("*.yaml")))
    formatted = core.run("fairalloc", "fmt", "--check", str(POLICIES))
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    tested = core.run("fairalloc", "test", "--no-coverage", str(POLICIES))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    suites = len(list((POLICIES / "tests").rglob("*.yaml")))
    assert f"0 failing, 0 error(s) in {suites} file(s)" in tested.stdout
    evaluated = core.run("fairalloc", "eval", "2 * 3 + 1")
    assert (evaluated.returncode, evaluated.stdout) == (0, "7\n"), evaluated.stderr
    allocated = core.run("fairalloc", "allocate", "--policy", str(POLICIES / "us-equity-pro-rata.yaml"),
                         "--trade", str(EXAMPLES / "us-equity-pro-rata.trade.json"))
    assert allocated.returncode == 0, allocated.stderr
    assert '"CLIENT-A"' in allocated.stdout and '"quantity": 15000' in allocated.stdout
    schema = core.run("fairalloc", "schema", "policy")
    assert schema.returncode == 0 and '"$schema"' in schema.stdout
    same = str(POLICIES / "us-equity-pro-rata.yaml")
    diffed = core.run("fairalloc", "diff", same, same, "--format", "json")
    assert diffed.returncode == 0, diffed.stderr
    completion = core.run("fairalloc", "completion", "bash")
    assert completion.returncode == 0 and "validate" in completion.stdout, completion.stderr


@pytest.mark.parametrize(("argv", "extra"), [
    (("fairalloc", "ledger", "verify"), "ledger"),
    (("fairalloc", "order", "show", "X"), "ledger"),
    (("fairalloc", "review", "--help"), "review"),
    (("fairalloc", "diff", "ledger:us-equity-pro-rata@1", str(POLICIES / "us-equity-pro-rata.yaml")), "ledger"),
    (("python", "-m", "fairalloc.demo"), "ledger,review"),
    (("fairalloc", "fix", "record", "--ledger", "out/l.db", "--messages", str(EXAMPLES / "fix" / "us-equity-pro-rata.fix")),
     "ledger"),
    (("fairalloc", "fix", "serve", "--settings", "out/s.cfg", "--ledger", "out/l.db"), "fix,ledger"),
])
def test_a_command_whose_extra_is_missing_names_it(core: Venv, argv: tuple[str, ...], extra: str) -> None:
    done = core.run(*argv)
    assert done.returncode == 69, done.stderr
    assert f"pip install 'fairalloc[{extra}]'" in done.stderr
    assert "error[missing-extra]" in done.stderr and "Traceback" not in done.stderr
    assert not (core.work / "out").exists()


def test_fix_allocate_needs_no_extra(core: Venv) -> None:
    done = core.run("fairalloc", "fix", "allocate", "--policy", str(POLICIES / "us-equity-pro-rata.yaml"),
                    "--messages", str(EXAMPLES / "fix" / "us-equity-pro-rata.fix"),
                    "--accounts", str(EXAMPLES / "fix" / "accounts.json"))
    assert done.returncode == 0, done.stderr
    assert "\x0135=J\x01" in done.stdout and "\x0153=30000\x01" in done.stdout


def test_missing_extra_as_json_for_machines(core: Venv) -> None:
    done = core.run("fairalloc", "--error-format", "json", "replay", "--date", "2026-03-02")
    assert done.returncode == 69
    assert '"code": "missing-extra"' in done.stderr and "fairalloc[ledger]" in done.stderr


@pytest.mark.slow
def test_demo_runs_from_the_wheel_with_all_extras(core: Venv, wheel: Path, tmp_path: Path) -> None:
    """In a copy of the core environment, so the tests above see it as installed."""
    venv = tmp_path / "venv"
    shutil.copytree(core.path, venv, symlinks=True)
    _pip_install(venv, f"{wheel}[all]")
    (tmp_path / "work").mkdir()
    done = Venv(venv, tmp_path / "work", 0, 0).run("python", "-m", "fairalloc.demo")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"Validating {len(list(POLICIES.glob('*.yaml')))} policies" in done.stdout
    assert "$ fairalloc ledger verify" in done.stdout and "The CCO's report:" in done.stdout
    for policy in POLICIES.glob("*.yaml"):
        if (EXAMPLES / f"{policy.stem}.trade.json").exists():
            assert (tmp_path / "work" / "out" / f"{policy.stem}.allocation.json").is_file()
    assert (tmp_path / "work" / "out" / "review" / "report.html").is_file()
