"""Atomic output files: permissions kept on replace, umask defaults on create; input files read as
text mode reads them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("content", [
    b'{"a": 1}\n', b'{"a":\r\n 1}\r\n', b'{"a":\r 1}\r', b"\xef\xbb\xbf{}", "caf\u00e9 \u2028 \u00e9\r\n".encode(), b"",
    b"\xe9t\xe9", b"ok \xe2\x82", b"\xc3\x28",
])
def test_a_file_is_read_as_text_mode_reads_it(content: bytes, tmp_path: Path) -> None:
    """Newlines translated, a byte-order mark kept, and a file that is not UTF-8 refused for the
    reason text mode gives; the same through the reader's path for files beyond its byte limit."""
    from fairalloc.errors import FileAccessError
    from fairalloc.load import read_text

    path = tmp_path / "f.json"
    path.write_bytes(content)

    def text_mode(limit: int | None) -> str:
        """The file as text mode reads it: whole, or at most ``limit + 1`` characters."""
        try:
            with open(path, encoding="utf-8") as handle:
                if limit is None:
                    return handle.read()
                text = handle.read(min(len(content), limit) + 1)
                return text + handle.read(limit + 1 - len(text)) if len(text) > len(content) else text
        except UnicodeDecodeError as error:
            return f"file is not UTF-8 text ({error.reason})"

    for limit in (None, 64, 1):  # within the limit in bytes, and past it (read as text)
        try:
            got = read_text(str(path), limit=limit)
        except FileAccessError as error:
            got = error.diagnostics[0].message
        assert got == text_mode(limit), limit


def test_a_directory_or_a_pipe_is_read_as_before(tmp_path: Path) -> None:
    import threading

    from fairalloc.errors import FileAccessError
    from fairalloc.load import read_text

    with pytest.raises(FileAccessError, match="cannot read file: Is a directory"):
        read_text(str(tmp_path))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(b'{"a":\r\n 1}'))
    writer.start()
    assert read_text(str(fifo)) == '{"a":\n 1}'
    writer.join()
