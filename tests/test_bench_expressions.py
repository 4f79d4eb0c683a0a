"""The expression benchmark compares like with like: every engine it times counts the same records
as exact arithmetic does, and its harness pairs each candidate's runs round by round.

No timing is asserted here (speed is measured by ``python -m bench expressions``); peers that are
not installed (they come with the ``bench`` extra) are skipped.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import bench_expressions as bench
from bench import harness

FACTORIES: dict[str, Callable[[], bench.Engine]] = {
    "fairalloc compiled": bench.fairalloc_compiled,
    "fairalloc columnar": bench.fairalloc_columnar,
    "lambda": bench.python_lambda,
    "numpy": bench.numpy_limit,
    **{f"{name} {n}": make for n, (name, make) in enumerate(bench.PEERS)},
}


@pytest.fixture(scope="module", params=list(FACTORIES))
def engine(request: pytest.FixtureRequest) -> bench.Engine:
    try:
        return FACTORIES[request.param]()
    except ImportError:
        pytest.skip(f"{request.param} not installed (the bench extra)")


def test_the_sample_has_matches_and_misses() -> None:
    blocks = bench.records(3_000, block=500)
    expected = bench.exact_count(blocks)
    assert 0 < expected < 3_000
    assert {block[0].ratio < bench.HALF for block in blocks} == {True, False}


def test_every_engine_counts_what_exact_arithmetic_counts(engine: bench.Engine) -> None:
    blocks = bench.records(3_000, block=500)
    assert engine.count(engine.prepare(blocks)) == bench.exact_count(blocks)


@settings(max_examples=15, deadline=None)
@given(count=st.integers(1, 400), block=st.integers(1, 150), seed=st.integers(0, 2**16))
def test_every_engine_agrees_on_any_sample(engine: bench.Engine, count: int, block: int, seed: int) -> None:
    blocks = bench.records(count, block=block, seed=seed)
    assert engine.count(engine.prepare(blocks)) == bench.exact_count(blocks)


def test_interleave_rotates_the_order_and_keeps_each_rounds_result() -> None:
    order: list[str] = []

    def candidate(name: str) -> Callable[[], object]:
        def run() -> int:
            order.append(name)
            return len(order)

        return run

    runs = harness.interleave({"a": candidate("a"), "b": candidate("b"), "c": candidate("c")}, rounds=3)
    assert order == ["a", "b", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b"]  # warm-up, then rotated
    assert runs.results == {"a": [4, 9, 11], "b": [5, 7, 12], "c": [6, 8, 10]}
    assert all(len(timings) == 3 for timings in runs.timings.values())
    assert harness.interleave({"a": candidate("a")}, rounds=1, warm=False).results == {"a": [13]}


def test_ratios_pair_runs_of_the_same_round() -> None:
    runs = harness.Rounds({"base": [harness.Timing(1, 1.0), harness.Timing(1, 4.0)],
                           "peer": [harness.Timing(1, 3.0), harness.Timing(1, 4.0)]})
    assert runs.ratio("peer", "base") == (2.0, 1.0, 3.0)
    assert "peer" in harness.report(runs, baseline="base", count=10, unit="records")
