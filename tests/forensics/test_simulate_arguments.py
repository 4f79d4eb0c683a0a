"""``fairalloc simulate`` with arguments that describe no firm: a usage error (exit 2) or, for an
output path that is a file, file-unwritable (exit 7) — each of these ended in exit 70 before."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairalloc.cli import main


@pytest.mark.parametrize("arguments", [["--orders", "0"], ["--accounts", "0"], ["--symbols", "0"], ["--year", "0"],
                                       ["--participation", "2"], ["--partial-share", "-0.5"], ["--rate", "nan"],
                                       ["--strength", "1.5"]])
def test_arguments_that_describe_no_firm_are_a_usage_error(
        arguments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", str(tmp_path / "out"), *arguments])
    assert exited.value.code == 2
    assert f"argument {arguments[0]}: {arguments[1]} is not from" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_output_path_that_is_a_file_is_file_unwritable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.write_text("not a folder\n")
    assert main(["simulate", str(out), "--orders", "2"]) == 7
    assert capsys.readouterr().err.startswith(f"{out}: error[file-unwritable]: ")


def test_the_smallest_firm_is_simulated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(tmp_path / "out"), "--orders", "1", "--accounts", "1", "--symbols", "1"]) == 0
    assert (tmp_path / "out" / "allocations.csv").read_text().count("\n") == 2
