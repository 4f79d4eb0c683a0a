"""Policy sources: files and REV:path read from git, with located, coded errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fairalloc.cli import main
from fairalloc.errors import FileAccessError
from fairalloc.review.sources import load_source

from ..conftest import POLICIES

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with the US equity policy committed, then changed in the working tree."""
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "reviewer@example.com")
    git("config", "user.name", "Reviewer")
    (tmp_path / "policies").mkdir()
    policy = tmp_path / "policies" / "x.yaml"
    policy.write_text((POLICIES / "us-equity-pro-rata.yaml").read_text())
    git("add", ".")
    git("commit", "-q", "-m", "v1")
    policy.write_text(policy.read_text().replace("version: 1", "version: 2").replace("  absolute: 100", "  absolute: 500"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_file_and_revision(repo: Path) -> None:
    assert load_source("policies/x.yaml").kind == "file"
    committed = load_source("main:policies/x.yaml")
    assert committed.kind == "git" and committed.provenance is None
    assert committed.policy.version == 1 and committed.policy.file == "main:policies/x.yaml"
    assert load_source("policies/x.yaml").policy.version == 2


def test_cli_diff_against_a_revision(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "main:policies/x.yaml", "policies/x.yaml"]) == 0
    assert "minimum allocation raised from 100 to 500 shares" in capsys.readouterr().out


@pytest.mark.parametrize(("spec", "code"), [
    ("nope:policies/x.yaml", "git-show-failed"),
    ("main:policies/missing.yaml", "git-show-failed"),
    ("missing.yaml", "file-not-found"),
    (":policies/x.yaml", "source-not-found"),
])
def test_errors_have_codes(repo: Path, spec: str, code: str) -> None:
    with pytest.raises(FileAccessError) as caught:
        load_source(spec)
    assert caught.value.codes == [code]
    assert caught.value.diagnostics[0].location.file == spec


def test_cli_exit_status_for_unreadable_source(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "nope:policies/x.yaml", "policies/x.yaml"]) == 7
    assert "error[git-show-failed]" in capsys.readouterr().err
