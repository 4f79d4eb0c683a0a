"""Expression language against its peers and its limits, on many different records.

The condition is the allocation benchmark's ``flag`` rule:

    account.type == "institutional" and allocation < 1% * account.intended and fill.ratio < 0.5

Method (``python -m bench expressions``):

- **Records.** ``FAIRALLOC_BENCH_RECORDS`` (default 100,000) different accounts from a fixed seed,
  in blocks of 10,000 that share one fill (as the accounts of one block order do), the blocks'
  fill ratios on both sides of 0.5. Types, intended quantities and allocations vary by account;
  allocations are odd and intended quantities multiples of 200, so ``allocation * 100`` never
  equals ``intended`` and engines that compute in binary floats decide every record as exact
  arithmetic does.
- **The same answer.** Every engine counts the records for which the condition holds, over all of
  them, in every round; each count must equal the count computed in exact decimal arithmetic, or
  the benchmark stops.
- **Each engine's fastest documented form**, its input converted to its own types before timing
  (conversion is not timed for any engine): fairalloc's compiled function called per record with
  its own account and fill records, and its columnar form (what a block of 64 accounts or more
  evaluates) called once per block; rule-engine's ``Rule.matches`` on flat records (top-level
  names, float data); cel-python's ``CompiledRunner`` on activations of CEL values; zen-engine's
  ``compile_expression`` on flat dicts; cel-rust through its Python binding
  ``common-expression-language`` (``cel.compile``, then ``Program.execute`` on a ``cel.Context``
  built per record). Where an engine was faster with the cross-multiplied integer comparison
  ``allocation * 100 < intended`` (cel-rust) it gets that; where it was faster with doubles
  (cel-python) it gets ``allocation < 0.01 * intended``.
- **The limits**: a plain Python lambda over the same records as fairalloc's compiled function,
  and numpy over the same blocks as the columnar form (string types dictionary-coded to small
  integers, quantities as int64, the block's ratio compared once).
- **Timing**: ``FAIRALLOC_BENCH_ROUNDS`` (default 5) interleaved rounds, each engine one pass over
  all records per round, after an untimed pass over the first block; CPU and wall medians and the
  per-round CPU ratios to fairalloc's compiled function (``bench/harness.py``).

A peer that is not installed is skipped with a note (``pip install -e '.[bench]'``). Then the
compile time of one expression and the cold start of a fresh interpreter.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from bench import harness
from fairalloc.expressions import ROOTS, Scope, Type, compile_expression

SOURCE = 'account.type == "institutional" and allocation < 1% * account.intended and fill.ratio < 0.5'
BLOCK = 10_000
TYPES = ("institutional", "retail", "fund", "pension")
RATIOS = ("0.3", "0.7", "0.45", "0.55", "0.1", "0.9", "0.25", "0.499", "0.501", "0.05")
HALF = Decimal("0.5")


@dataclass(frozen=True)
class Record:
    """One account's inputs to the condition (the block's fill ratio included)."""

    type: str
    intended: int
    allocation: int
    ratio: Decimal


def records(count: int, block: int = BLOCK, seed: int = 15) -> list[list[Record]]:
    """``count`` different records in blocks of ``block``, each block with its own fill ratio."""
    rng = random.Random(seed)
    blocks = []
    for number, first in enumerate(range(0, count, block)):
        ratio = Decimal(RATIOS[number % len(RATIOS)])
        blocks.append([Record(rng.choice(TYPES), 200 * rng.randint(1, 250), 2 * rng.randint(0, 300) + 1, ratio)
                       for _ in range(min(block, count - first))])
    return blocks


def exact_count(blocks: Sequence[Sequence[Record]]) -> int:
    """How many records satisfy the condition, in exact decimal arithmetic."""
    return sum(1 for block in blocks for r in block
               if r.type == "institutional" and r.allocation < Decimal("0.01") * r.intended and r.ratio < HALF)


@dataclass(frozen=True)
class Engine:
    """One way of evaluating the condition: ``prepare`` turns blocks into the engine's own input
    (not timed); ``count`` returns how many of them satisfy the condition (timed)."""

    name: str
    prepare: Callable[[Sequence[Sequence[Record]]], Any]
    count: Callable[[Any], int]


def _scope() -> Scope:
    return Scope.build(ROOTS, {"type": Type.STRING})


def _rows(blocks: Sequence[Sequence[Record]]) -> list[tuple[dict[str, Any], dict[str, Any], int]]:
    """fairalloc's own records: one fill record per block, one account record per account."""
    rows: list[tuple[dict[str, Any], dict[str, Any], int]] = []
    for block in blocks:
        fill: dict[str, Any] = {"ratio": block[0].ratio}
        rows.extend((fill, {"id": f"A{n}", "type": r.type, "intended": r.intended}, r.allocation)
                    for n, r in enumerate(block))
    return rows


def _flat(blocks: Sequence[Sequence[Record]]) -> list[dict[str, Any]]:
    return [{"type": r.type, "intended": r.intended, "allocation": r.allocation, "ratio": float(r.ratio)}
            for block in blocks for r in block]


def fairalloc_compiled() -> Engine:
    fn = compile_expression(SOURCE, scope=_scope(), expect=Type.BOOLEAN).fn

    def count(rows: list[tuple[dict[str, Any], dict[str, Any], int]]) -> int:
        matches = 0
        for fill, account, allocation in rows:
            if fn(None, None, None, fill, account, allocation):
                matches += 1
        return matches

    return Engine("fairalloc compiled, per record", _rows, count)


def fairalloc_columnar() -> Engine:
    import numpy as np

    from fairalloc.expressions.vector import Column, Frame, Rational, vectorise

    function = vectorise(compile_expression(SOURCE, scope=_scope(), expect=Type.BOOLEAN))
    assert function is not None

    def prepare(blocks: Sequence[Sequence[Record]]) -> list[Frame]:
        frames = []
        for block in blocks:
            columns: dict[str, Column] = {"type": np.asarray([r.type for r in block], dtype=object),
                       "intended": Rational(np.asarray([r.intended for r in block], dtype=np.int64), 1)}
            roots = {"order": {}, "security": {}, "statement": {}, "fill": {"ratio": block[0].ratio}}
            allocation = Rational(np.asarray([r.allocation for r in block], dtype=np.int64), 1)
            frames.append(Frame(roots, columns.__getitem__, allocation))
        return frames

    def count(frames: list[Frame]) -> int:
        return sum(int(np.count_nonzero(function(frame))) for frame in frames)

    return Engine("fairalloc columnar, per block", prepare, count)


def python_lambda() -> Engine:
    condition: Callable[[dict[str, Any], dict[str, Any], int], bool] = lambda fill, account, allocation: (  # noqa: E731
        account["type"] == "institutional" and allocation * 100 < account["intended"] and fill["ratio"] < HALF)

    def count(rows: list[tuple[dict[str, Any], dict[str, Any], int]]) -> int:
        matches = 0
        for fill, account, allocation in rows:
            if condition(fill, account, allocation):
                matches += 1
        return matches

    return Engine("limit: Python lambda, per record", _rows, count)


def numpy_limit() -> Engine:
    import numpy as np

    institutional = TYPES.index("institutional")

    def prepare(blocks: Sequence[Sequence[Record]]) -> list[tuple[Decimal, Any, Any, Any]]:
        return [(block[0].ratio, np.asarray([TYPES.index(r.type) for r in block], dtype=np.int8),
                 np.asarray([r.intended for r in block], dtype=np.int64),
                 np.asarray([r.allocation for r in block], dtype=np.int64)) for block in blocks]

    def count(prepared: list[tuple[Decimal, Any, Any, Any]]) -> int:
        return sum(int(np.count_nonzero((codes == institutional) & (allocation * 100 < intended)))
                   for ratio, codes, intended, allocation in prepared if ratio < HALF)

    return Engine("limit: numpy, per block", prepare, count)


def rule_engine() -> Engine:
    import rule_engine as re_  # type: ignore[import-untyped]

    rule = re_.Rule("type == 'institutional' and allocation < 0.01 * intended and ratio < 0.5")

    def count(flat: list[dict[str, Any]]) -> int:
        matches = 0
        for thing in flat:
            if rule.matches(thing):
                matches += 1
        return matches

    return Engine(f"rule-engine {re_.__version__}, Rule.matches", _flat, count)


def cel_python() -> Engine:
    import celpy
    from celpy import celtypes

    environment = celpy.Environment(runner_class=celpy.CompiledRunner)
    program = environment.program(environment.compile(
        'type == "institutional" && allocation < 0.01 * intended && ratio < 0.5'))

    def prepare(blocks: Sequence[Sequence[Record]]) -> list[dict[str, Any]]:
        return [{"type": celtypes.StringType(r["type"]), "intended": celtypes.DoubleType(r["intended"]),
                 "allocation": celtypes.DoubleType(r["allocation"]), "ratio": celtypes.DoubleType(r["ratio"])}
                for r in _flat(blocks)]

    def count(activations: list[dict[str, Any]]) -> int:
        matches = 0
        for activation in activations:
            if program.evaluate(activation):
                matches += 1
        return matches

    return Engine(f"cel-python {_version('cel-python')}, CompiledRunner", prepare, count)


def zen_engine() -> Engine:
    import zen

    expression = zen.compile_expression('type == "institutional" and allocation < 0.01 * intended and ratio < 0.5')

    def count(flat: list[dict[str, Any]]) -> int:
        matches = 0
        for context in flat:
            if expression.evaluate(context):
                matches += 1
        return matches

    return Engine(f"zen-engine {_version('zen-engine')}, compile_expression", _flat, count)


def cel_rust(contexts: bool) -> Engine:
    """cel-rust on ``cel.Context`` objects built before timing (``contexts``: its fastest form), or
    on plain dicts, which the binding converts to CEL values on every call."""
    import cel

    program = cel.compile('type == "institutional" && allocation * 100 < intended && ratio < 0.5')

    def prepare(blocks: Sequence[Sequence[Record]]) -> list[Any]:
        return [cel.Context(thing) if contexts else thing for thing in _flat(blocks)]

    def count(inputs: list[Any]) -> int:
        matches = 0
        for context in inputs:
            if program.execute(context):
                matches += 1
        return matches

    form = "cel.Context" if contexts else "dict"
    return Engine(f"cel-rust (common-expression-language {_version('common-expression-language')}), "
                  f"execute({form})", prepare, count)


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


PEERS: tuple[tuple[str, Callable[[], Engine]], ...] = (
    ("rule-engine", rule_engine),
    ("cel-python", cel_python),
    ("zen-engine", zen_engine),
    ("common-expression-language", partial(cel_rust, contexts=True)),
    ("common-expression-language", partial(cel_rust, contexts=False)),
)


def engines() -> tuple[list[Engine], list[str]]:
    """fairalloc's two forms, the two limits, and every installed peer; notes for the missing."""
    found = [fairalloc_compiled(), fairalloc_columnar(), python_lambda(), numpy_limit()]
    notes = []
    for distribution, make in PEERS:
        try:
            found.append(make())
        except ImportError:
            note = f"{distribution}: not installed, skipped (pip install -e '.[bench]')"
            notes += [] if note in notes else [note]
    return found, notes


def compile_time() -> harness.Timing:
    """Median time to parse, check, fold and compile the condition, the parser already built."""
    scope = _scope()
    compile_expression(SOURCE, scope=scope, expect=Type.BOOLEAN)
    return harness.median(harness.repeat(lambda: compile_expression(SOURCE, scope=scope, expect=Type.BOOLEAN), 50))


def cold_start() -> list[tuple[str, harness.Timing]]:
    """Fresh interpreters: bare Python, import the package, import + build the parser + compile."""
    programs = {
        "python -c pass": "pass",
        "import fairalloc.expressions": "import fairalloc.expressions",
        "import + build parser + compile one expression": (
            "from fairalloc.expressions import ROOTS, Scope, Type, compile_expression\n"
            f"compile_expression({SOURCE!r}, scope=Scope.build(ROOTS, {{'type': Type.STRING}}), expect=Type.BOOLEAN)"
        ),
    }
    return [(label, harness.median([harness.timed_process(harness.python("-c", program)) for _ in range(7)]))
            for label, program in programs.items()]


def main() -> None:
    harness.banner()
    count = int(os.environ.get("FAIRALLOC_BENCH_RECORDS", "100000"))
    rounds = int(os.environ.get("FAIRALLOC_BENCH_ROUNDS", "5"))
    blocks = records(count)
    expected = exact_count(blocks)
    found, notes = engines()
    candidates = {}
    for engine in found:
        prepared = engine.prepare(blocks)
        warm = engine.count(engine.prepare(blocks[:1]))
        assert warm == exact_count(blocks[:1]), (engine.name, warm)
        candidates[engine.name] = partial(engine.count, prepared)
    runs = harness.interleave(candidates, rounds, warm=False)
    for name, results in runs.results.items():
        if any(result != expected for result in results):
            raise SystemExit(f"{name} counted {results}, exact arithmetic counts {expected}")
    print(f"condition: {SOURCE}")
    print(f"{count:,} different records in blocks of {BLOCK:,}; every engine counted {expected:,} matches "
          f"in each of {rounds} interleaved rounds")
    print(harness.report(runs, baseline=found[0].name, count=count, unit="records"))
    for note in notes:
        print(f"  {note}")
    print()
    timing = compile_time()
    print(f"parse + check + fold + compile one expression, parser built: {timing.wall * 1e6:.0f} us wall, "
          f"{timing.cpu * 1e6:.0f} us CPU (median of 50)")
    for label, timing in cold_start():
        print(f"cold start, {label}: {timing.wall * 1e3:.1f} ms wall, {timing.cpu * 1e3:.1f} ms CPU (median of 7)")
    harness.closing()


if __name__ == "__main__":
    main()
