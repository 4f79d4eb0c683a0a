"""A throwaway PostgreSQL cluster in a temporary directory, for the tests and the benchmark.

The ledger's test suite and benchmark run against a real PostgreSQL server. When none is given
(``FAIRALLOC_TEST_PG_URL``), they start one from the installed server binaries: ``initdb`` into a
temporary directory, ``pg_ctl start`` on a free localhost port with its socket in that directory,
and ``pg_ctl stop`` plus removal at the end. ``initdb`` refuses to run as root, so as root the
cluster is owned by, and run as, the ``postgres`` system user.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: ``FAIRALLOC_PG_BIN``, Debian's, or PATH."""
    given = os.environ.get("FAIRALLOC_PG_BIN")
    candidates = [Path(given)] if given else []

    def version(path: Path) -> int:
        match = re.search(r"/postgresql/(\d+)/bin$", str(path))
        return int(match.group(1)) if match else 0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TempCluster:
    """A PostgreSQL server of our own: :meth:`start` returns its URL, :meth:`stop` removes it."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        self.durable = durable  # fsync on (benchmarks) or off (tests: faster, same semantics)
        self.root = Path(tempfile.mkdtemp(prefix="fairalloc-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *argv: str) -> None:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> str:
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-locale")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            f"-c max_connections=100 -c fsync={'on' if self.durable else 'off'}"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def create_database(server_url: str, prefix: str = "fairalloc") -> str:
    """Create a fresh, empty database on the server at ``server_url`` and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # name is generated above, never user input
    base, _, _db = server_url.rpartition("/")
    return f"{base}/{name}"
