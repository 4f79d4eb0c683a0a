"""Writing outputs all-or-nothing: a temporary file in the target's folder, then a rename.

A crash or an error half-way never leaves a truncated report, findings file or CSV behind.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Callable

from fairalloc.errors import Code, Diagnostic, FileAccessError, Location


def atomic_write_with(path: pathlib.Path, write: Callable[[pathlib.Path], None]) -> None:
    """Call ``write(temp_path)`` and rename the result onto ``path``; IO errors exit with 7."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(handle)
    except OSError as error:
        raise _io_error(path, error) from None
    temp = pathlib.Path(name)
    try:
        write(temp)
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise _io_error(path, error) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_bytes(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all-or-nothing."""

    def write(temp: pathlib.Path) -> None:
        temp.write_bytes(data)

    atomic_write_with(path, write)


def _io_error(path: pathlib.Path, error: OSError) -> FileAccessError:
    return FileAccessError(
        Diagnostic(
            Code.FORENSICS_WRITE_FAILED,
            f"cannot write {path}: {error.strerror or error}",
            Location(file=str(path)),
            "check that the folder exists and is writable",
        )
    )
