"""The HTTP service on loopback: stateless decisions per second, latency at half that rate, and
recorded orders per second on PostgreSQL.

A real ``fairalloc serve`` process on 127.0.0.1 with a real JWKS (an Ed25519 key made here).
The stateless load comes from :class:`Load`: one thread driving eight keep-alive connections
over raw sockets (each request's bytes made once, each answer read by its Content-Length), so the
client takes little of the machine from the server; where ``wrk`` is installed (Debian's package
``wrk``) the closed-loop rate is measured with it as well, and the output says which client gave
which figure. The recorded workflow's clients are threads with ``http.client``. Every run is
bounded (a fixed number of requests, or seconds). The CPU time of the server, of PostgreSQL and
of the clients is read from /proc and getrusage; the load average is printed, since on a shared
machine the figures are only as fair as it was idle. The server's CPU per decision is the figure
that does not depend on the load. Figures go to docs/performance.md (section "HTTP service").
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import OKPAlgorithm

from bench import harness
from tests.ledger import pgcluster

ROOT = Path(__file__).resolve().parent.parent
ISSUER, AUDIENCE = "https://idp.bench", "fairalloc"
THREADS = 8
DECISIONS = 3_000
PACED_SECONDS = 4.0
WRK_SECONDS = 4.0
ORDERS = 160


def _trade(order_id: str, accounts: int = 20, at: str = "2026-03-02T14:30:00Z",
           trade_date: str = "2026-03-02") -> dict[str, Any]:
    return {
        "order": {"id": order_id, "symbol": "XYZ", "side": "buy", "quantity": 1_000 * accounts,
                  "trade_date": trade_date, "entered_at": at, "security": {"asset_class": "equity"}},
        "statement": {"recorded_at": at, "recorded_by": "pm.bench", "accounts": [
            {"account": f"ACC-{n:02d}", "intended": 1_000, "attributes": {"fee_basis": "standard"}}
            for n in range(accounts)]},
        "fills": [{"id": f"{order_id}-F1", "quantity": 700 * accounts, "price": "99.95", "executed_at": at},
                  {"id": f"{order_id}-F2", "quantity": 100 * accounts, "price": "100.05", "executed_at": at}],
    }


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """CPU of a server and its worker processes (uvicorn's workers are its children)."""
    total = _cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: the server's own CPU only
        children = []
    for child in children:
        try:
            total += _cpu_seconds(int(child))
        except FileNotFoundError:  # it exited since: its CPU moves to the parent once reaped
            pass
    return total


class Server:
    def __init__(self, folder: Path, *options: str) -> None:
        key = ed25519.Ed25519PrivateKey.generate()
        jwks = folder / "jwks.json"
        jwks.write_text(json.dumps({"keys": [{**OKPAlgorithm.to_jwk(key.public_key(), as_dict=True),
                                              "kid": "k1", "use": "sig"}]}))
        self.key = key
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fairalloc", "serve", "--port", str(self.port), "--jwks", str(jwks),
             "--issuer", ISSUER, "--audience", AUDIENCE, *options],
            stdout=subprocess.DEVNULL, stderr=(folder / "serve.log").open("wb"), cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/healthz", b"", "")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"serve did not start: {(folder / 'serve.log').read_text()}")

    def token(self, sub: str, roles: list[str]) -> str:
        now = int(time.time())
        return jwt.encode({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 3600, "roles": roles},
                          self.key, algorithm="EdDSA", headers={"kid": "k1"})

    def call(self, method: str, path: str, body: bytes, token: str,
             connection: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
        conn = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if connection is None:
            conn.close()
        return response.status, data

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


class Load:
    """Keep-alive HTTP/1.1 connections driven from one thread by a selector: the same request
    (its bytes made once) sent on each connection as soon as its last answer is read (closed
    loop), or at a fixed total rate (open loop, latency counted from when each request was due,
    so queueing counts). An answer is read by its ``Content-Length``; any status but 200 stops
    the run."""

    def __init__(self, port: int, request: bytes, connections: int = THREADS) -> None:
        self.request = request
        self.selector = selectors.DefaultSelector()
        self.latencies: list[float] = []
        self.sockets: list[socket.socket] = []
        for _ in range(connections):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            self.sockets.append(sock)

    def close(self) -> None:
        self.selector.close()
        for sock in self.sockets:
            sock.close()

    def closed(self, total: int) -> tuple[float, list[float]]:
        """``total`` requests as fast as they are answered: (wall seconds, latencies)."""
        wall = self._run(total, None, time.perf_counter())
        return wall, self.latencies

    def paced(self, rate: float, seconds: float) -> list[float]:
        """``rate`` requests a second for ``seconds``: the latencies, from when each was due."""
        self._run(int(rate * seconds), rate, time.perf_counter())
        return self.latencies

    def _run(self, total: int, rate: float | None, started: float) -> float:
        self.latencies = []
        idle = list(self.sockets)
        pending: dict[socket.socket, tuple[float, bytearray]] = {}
        sent = 0
        deadline = started + 600
        while len(self.latencies) < total:
            now = time.perf_counter()
            if now > deadline:
                raise SystemExit("the load run took longer than 10 minutes")
            while idle and sent < total:
                due = now if rate is None else started + sent / rate
                if due > now:
                    break
                sock = idle.pop()
                sock.sendall(self.request)  # a few kB: the socket's buffer takes it at once
                pending[sock] = (due, bytearray())
                self.selector.register(sock, selectors.EVENT_READ, sock)
                sent += 1
            wait = None
            if rate is not None and idle and sent < total:
                wait = max(0.0, started + sent / rate - time.perf_counter())
            for key, _ in self.selector.select(wait):
                sock = key.data
                due, buffer = pending[sock]
                chunk = sock.recv(1 << 16)
                if not chunk:
                    raise SystemExit("the server closed a connection")
                buffer += chunk
                if _complete(buffer):
                    self.latencies.append(time.perf_counter() - due)
                    self.selector.unregister(sock)
                    del pending[sock]
                    idle.append(sock)
        return time.perf_counter() - started


def _complete(buffer: bytearray) -> bool:
    """Whether ``buffer`` holds one whole answer (headers and its Content-Length of body);
    an answer other than 200 stops the benchmark."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = bytes(buffer[:end]).decode("latin-1").lower()
    length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
    if len(buffer) < end + 4 + length:
        return False
    if not head.startswith("http/1.1 200 "):
        raise SystemExit(f"allocation refused: {bytes(buffer[:300])!r}")
    if len(buffer) > end + 4 + length:
        raise SystemExit("more bytes than one answer on a connection")
    return True


def _request(path: str, body: bytes, token: str) -> bytes:
    """One POST's bytes, as http.client would send them."""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb")); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99),
    latency.max, 0, 0))
end
"""


def _wrk(folder: Path, port: int, body: bytes, token: str, seconds: float) -> dict[str, float] | None:
    """A closed-loop run of ``wrk`` (two threads, eight connections) for ``seconds``, or None
    where wrk is not installed: requests, wall seconds, p50 and p99 in seconds, its CPU."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    (folder / "wrk.lua").write_text(_WRK_SCRIPT)
    (folder / "body.json").write_bytes(body)
    with (folder / "wrk.out").open("wb") as out:
        process = subprocess.Popen([wrk, "-t2", f"-c{THREADS}", f"-d{seconds:g}s", "-s", str(folder / "wrk.lua"),
                                    f"http://127.0.0.1:{port}/v1/allocate"], stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "BENCH_TOKEN": token, "BENCH_BODY": str(folder / "body.json")})
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    text = (folder / "wrk.out").read_text()
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    if process.returncode or not lines:
        raise SystemExit(f"wrk failed: {text}")
    requests, micros, broken, refused, p50, p99, *_ = map(int, lines[0].split()[1:])
    if broken or refused:
        raise SystemExit(f"wrk: {broken} socket errors, {refused} answers other than 2xx")
    return {"requests": requests, "wall": micros / 1e6, "p50": p50 / 1e6, "p99": p99 / 1e6,
            "cpu": usage.ru_utime + usage.ru_stime}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _runtime() -> str:
    """What uvicorn serves with in this environment (it takes uvloop and httptools when present)."""
    from importlib.util import find_spec

    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    parser = "httptools" if find_spec("httptools") else "h11"
    return f"event loop {loop}, HTTP parser {parser}"


def _stateless(folder: Path, workers: int) -> None:
    server = Server(folder, "--policies", str(ROOT / "policies"), "--workers", str(workers))
    try:
        token = server.token("oms.bench", ["trader"])
        body = json.dumps({"policy": "us-equity-pro-rata", "trade": _trade("BENCH-1")}).encode()
        request = _request("/v1/allocate", body, token)
        load = Load(server.port, request)
        try:
            load.closed(400)  # warm up every worker
            average = os.getloadavg()[0]
            cpu, client_cpu = _tree_cpu(server.process.pid), time.process_time()
            wall, latencies = load.closed(DECISIONS)
            cpu, client_cpu = _tree_cpu(server.process.pid) - cpu, time.process_time() - client_cpu
        finally:
            load.close()
        rate = len(latencies) / wall
        print(f"stateless, 20 accounts, {workers} worker(s), {THREADS} connections (one client thread): "
              f"{rate:,.0f} decisions/s wall ({len(latencies):,} in {wall:.2f} s); server CPU {cpu:.2f} s = "
              f"{cpu / len(latencies) * 1000:.2f} ms per decision, {len(latencies) / cpu:,.0f} per server CPU "
              f"second; client CPU {client_cpu:.2f} s; p50 {_percentile(latencies, 0.5) * 1000:.1f} ms, "
              f"p99 {_percentile(latencies, 0.99) * 1000:.1f} ms; load average {average:.2f}")
        cpu = _tree_cpu(server.process.pid)
        found = _wrk(folder, server.port, body, token, WRK_SECONDS)
        if found is None:
            print("  wrk: not installed (apt-get install wrk), not measured")
        else:
            cpu = _tree_cpu(server.process.pid) - cpu
            print(f"  wrk (2 threads, {THREADS} connections, {WRK_SECONDS:g} s): {found['requests'] / found['wall']:,.0f} "
                  f"decisions/s wall ({found['requests']:,}); server CPU {cpu / found['requests'] * 1000:.2f} ms per "
                  f"decision; wrk CPU {found['cpu']:.2f} s; p50 {found['p50'] * 1000:.1f} ms, p99 "
                  f"{found['p99'] * 1000:.1f} ms; load average {os.getloadavg()[0]:.2f}")
        load = Load(server.port, request)  # new connections: the server closes idle ones after 5 s
        try:
            paced = load.paced(rate / 2, PACED_SECONDS)
        finally:
            load.close()
        print(f"  paced at {rate / 2:,.0f}/s for {PACED_SECONDS:g} s: p50 {_percentile(paced, 0.5) * 1000:.1f} ms, "
              f"p99 {_percentile(paced, 0.99) * 1000:.1f} ms ({len(paced):,} requests); "
              f"load average {os.getloadavg()[0]:.2f}")
    finally:
        server.stop()


def _fairalloc(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "fairalloc", *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"fairalloc {' '.join(args)}: {done.stderr}")


def _recorded(folder: Path, owner: str, postmaster: int | None) -> None:
    """The ledger set up as deployed: the owner creates it and the role split, the service
    connects as a writer role (``clerk``) holding the ``service`` role. ``postmaster``: the
    database server's process, when it is ours, so its CPU is counted too."""
    from sqlalchemy import make_url

    url = make_url(owner).set(username="clerk").render_as_string(hide_password=False)
    _fairalloc("ledger", "init", "--admin", "clerk", "--ledger", owner)
    _fairalloc("ledger", "roles", "--writer", "clerk", "--ledger", owner)
    _fairalloc("ledger", "user", "grant", "clerk", "service", "--ledger", url)
    _fairalloc("ledger", "user", "grant", "admin.bench", "admin", "--ledger", url)
    server = Server(folder, "--ledger", url, "--workers", "2")
    try:
        admin = server.token("admin.bench", ["admin"])
        for role in ("pm", "trader"):
            status, data = server.call("PUT", f"/v1/users/desk.bench/roles/{role}", b"", admin)
            if status >= 300:
                raise SystemExit(f"grant refused: {status} {data!r}")
        status, data = server.call("POST", "/v1/policies",
                                   (ROOT / "policies" / "us-equity-pro-rata.yaml").read_bytes(), admin)
        if status not in (200, 201):
            raise SystemExit(f"publish refused: {status} {data!r}")
        token = server.token("desk.bench", ["pm", "trader"])
        now = dt.datetime.now(dt.timezone.utc)
        at = (now + dt.timedelta(seconds=8)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        trades = [json.dumps(_trade(f"REC-{n}", at=at, trade_date=now.date().isoformat())).encode()
                  for n in range(ORDERS)]

        def each(step: Callable[[int, http.client.HTTPConnection], None]) -> float:
            def run(first: int) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                for n in range(first, ORDERS, THREADS):
                    step(n, conn)
                conn.close()

            started = time.perf_counter()
            with ThreadPoolExecutor(THREADS) as pool:
                list(pool.map(run, range(THREADS)))
            return time.perf_counter() - started

        def checked(status: int, data: bytes) -> None:
            if status >= 300:
                raise SystemExit(f"refused: {status} {data[:300]!r}")

        def statement(n: int, conn: http.client.HTTPConnection) -> None:
            checked(*server.call("POST", "/v1/statements", trades[n], token, conn))

        def rest(n: int, conn: http.client.HTTPConnection) -> None:
            checked(*server.call("POST", "/v1/orders", trades[n], token, conn))
            checked(*server.call("POST", f"/v1/orders/REC-{n}/fills", trades[n], token, conn))
            checked(*server.call("POST", f"/v1/orders/REC-{n}/allocation", b"", token, conn))

        load = os.getloadavg()[0]
        durable = _durable(owner)
        cpu, client_cpu = _tree_cpu(server.process.pid), time.process_time()
        database_cpu = _tree_cpu(postmaster) if postmaster is not None else 0.0
        first = each(statement)
        time.sleep(max(0.0, (dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
                             - dt.datetime.now(dt.timezone.utc)).total_seconds() + 0.1))
        second = each(rest)
        cpu, client_cpu = _tree_cpu(server.process.pid) - cpu, time.process_time() - client_cpu
        database = (f"PostgreSQL CPU {_tree_cpu(postmaster) - database_cpu:.2f} s" if postmaster is not None
                    else "PostgreSQL CPU not measured (not our server)")
        wall = first + second
        print(f"recorded workflow on PostgreSQL, 2 workers, {THREADS} clients: {ORDERS / wall:,.0f} orders/s "
              f"(statement, entry, fills, allocation: {ORDERS * 4} requests in {wall:.2f} s, the wait for the "
              f"trades' entry time excluded); server CPU {cpu:.2f} s ({cpu / ORDERS * 1000:.1f} ms per order); "
              f"{database}; client CPU {client_cpu:.2f} s; load average {load:.2f} at start, "
              f"{os.getloadavg()[0]:.2f} at end")
    finally:
        server.stop()
    # The server's connections have closed, so PostgreSQL has counted all they did.
    commits, syncs = (after - before for after, before in zip(_durable(owner), durable))
    print(f"  {syncs / ORDERS:.2f} WAL flushes to disk per order; {commits / ORDERS:.2f} transactions committed "
          "per order as PostgreSQL counts them (xact_commit: reads and the pool's liveness checks included)")


def _durable(url: str) -> tuple[int, int]:
    """Transactions committed in the database (``xact_commit``), and WAL flushes to disk
    (``wal_sync``), so far."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        row = conn.execute("SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()), "
                           "(SELECT wal_sync FROM pg_stat_wal)").fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def main() -> None:
    harness.banner()
    print(f"server: {_runtime()}")
    with tempfile.TemporaryDirectory() as scratch:
        for workers in (1, 2):
            _stateless(Path(scratch), workers)
        server = os.environ.get("FAIRALLOC_TEST_PG_URL")
        cluster = None
        if server is None:
            bindir = pgcluster.find_bindir()
            if bindir is None:
                print("recorded workflow: skipped (no PostgreSQL binaries; set FAIRALLOC_TEST_PG_URL)")
                return
            cluster = pgcluster.TempCluster(bindir, durable=True)
            server = cluster.start()
        try:
            postmaster = (int((cluster.data / "postmaster.pid").read_text().split()[0])
                          if cluster is not None else None)
            _recorded(Path(scratch), pgcluster.create_database(server, "bench_service"), postmaster)
        finally:
            if cluster is not None:
                cluster.stop()
    harness.closing()


if __name__ == "__main__":
    main()
