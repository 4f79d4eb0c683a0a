"""The HTTP service on loopback: stateless decisions per second, latency at half that rate, and
recorded orders per second on PostgreSQL.

A real ``fairalloc serve`` process on 127.0.0.1 with a real JWKS (an Ed25519 key made here); the
load comes from this process — threads, each with one keep-alive connection (``http.client``,
lighter than httpx, so the client takes less of the machine from the server). Every run is bounded
(a fixed number of requests, or seconds). The server's CPU time is read from /proc; the load
average is printed, since on a shared machine the figures are only as fair as it was idle.
Figures go to docs/performance.md (section "HTTP service").
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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


def _closed_loop(server: Server, body: bytes, token: str, total: int) -> tuple[float, list[float]]:
    """``total`` requests from THREADS threads as fast as answered: (wall seconds, latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = total // THREADS

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        mine: list[float] = []
        for _ in range(per_thread):
            started = time.perf_counter()
            status, data = server.call("POST", "/v1/allocate", body, token, conn)
            mine.append(time.perf_counter() - started)
            if status != 200:
                raise SystemExit(f"allocation refused: {status} {data[:300]!r}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies


def _paced(server: Server, body: bytes, token: str, rate: float, seconds: float) -> list[float]:
    """Requests at a fixed total ``rate`` (open loop, spread over the threads): latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    interval = THREADS / rate
    count = int(seconds * rate / THREADS)

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        start = time.perf_counter() + offset * interval / THREADS
        mine: list[float] = []
        for n in range(count):
            due = start + n * interval
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            server.call("POST", "/v1/allocate", body, token, conn)
            mine.append(time.perf_counter() - due)  # from when it was due: queueing counts
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _stateless(folder: Path, workers: int) -> None:
    server = Server(folder, "--policies", str(ROOT / "policies"), "--workers", str(workers))
    try:
        token = server.token("oms.bench", ["trader"])
        body = json.dumps({"policy": "us-equity-pro-rata", "trade": _trade("BENCH-1")}).encode()
        _closed_loop(server, body, token, 400)  # warm up every worker
        load = os.getloadavg()[0]
        cpu, client_cpu = _tree_cpu(server.process.pid), time.process_time()
        wall, latencies = _closed_loop(server, body, token, DECISIONS)
        cpu, client_cpu = _tree_cpu(server.process.pid) - cpu, time.process_time() - client_cpu
        rate = len(latencies) / wall
        print(f"stateless, 20 accounts, {workers} worker(s), {THREADS} clients: {rate:,.0f} decisions/s wall "
              f"({len(latencies):,} in {wall:.2f} s); server CPU {cpu:.2f} s = {len(latencies) / cpu:,.0f} "
              f"decisions per server CPU second; client CPU {client_cpu:.2f} s; p50 "
              f"{_percentile(latencies, 0.5) * 1000:.1f} ms, p99 {_percentile(latencies, 0.99) * 1000:.1f} ms; "
              f"load average {load:.2f}")
        paced = _paced(server, body, token, rate / 2, PACED_SECONDS)
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
