"""Atomic output files: permissions kept on replace, umask defaults on create."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fairalloc.cli._io import write_output


def test_replacing_a_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "policy.yaml"
    target.write_text("old\n")
    target.chmod(0o644)
    write_output("new\n", str(target))
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["policy.yaml"]


def test_a_new_file_gets_the_umask_default(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_output("x\n", str(tmp_path / "new.json"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o644
