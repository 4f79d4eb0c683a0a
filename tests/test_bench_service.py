"""The service benchmark's load generators count what they claim: every request answered 200,
one latency each, answers read whole however the bytes arrive, and a refusal stops the run.

No timing is asserted here (speed is measured by ``python -m bench service``); wrk is used where
installed and skipped where not."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import bench_service as bench


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bench.Server]:
    started = bench.Server(tmp_path_factory.mktemp("bench"), "--policies", str(bench.ROOT / "policies"))
    yield started
    started.stop()


def body() -> bytes:
    return json.dumps({"policy": "us-equity-pro-rata", "trade": bench._trade("T-1", accounts=3)}).encode()


def test_the_closed_loop_counts_every_answer(server: bench.Server) -> None:
    load = bench.Load(server.port, bench._request("/v1/allocate", body(), server.token("t", ["trader"])))
    try:
        wall, latencies = load.closed(50)
        assert len(latencies) == 50 and all(0 < latency <= wall for latency in latencies)
        paced = load.paced(200, 0.1)
        assert len(paced) == 20
    finally:
        load.close()


def test_a_refusal_stops_the_run(server: bench.Server) -> None:
    load = bench.Load(server.port, bench._request("/v1/allocate", body(), "not-a-token"), connections=2)
    try:
        with pytest.raises(SystemExit, match="refused"):
            load.closed(4)
    finally:
        load.close()


def test_an_answer_is_whole_only_with_its_content_length() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\n{}{}"
    for cut in range(len(answer)):
        assert not bench._complete(bytearray(answer[:cut]))
    assert bench._complete(bytearray(answer))
    with pytest.raises(SystemExit):
        bench._complete(bytearray(answer + b"x"))


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (apt-get install wrk)")
def test_wrk_reports_its_requests(server: bench.Server, tmp_path: Path) -> None:
    found = bench._wrk(tmp_path, server.port, body(), server.token("t", ["trader"]), 1)
    assert found is not None and found["requests"] > 0 and found["wall"] > 0 and found["cpu"] > 0
    with pytest.raises(SystemExit, match="other than 2xx"):
        bench._wrk(tmp_path, server.port, body(), "not-a-token", 1)
