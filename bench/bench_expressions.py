"""Expression language: evaluations per second against peers, compile time, cold start.

The expression is the issue's reference condition:

    account.type == "institutional" and allocation < 1% * account.intended and fill.ratio < 0.5

Each peer runs the same condition in its own syntax on equivalent data (noted in the table); a
peer that is not installed is skipped with a note. Every candidate is timed in REPEATS rounds,
round-robin (one batch of each per round), so that load from other processes falls on all of them
alike; the figures are the median batch rates by wall time and by CPU time, on one core. Ratios
(by CPU time) are relative to fairalloc's compiled function on int data.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
import timeit
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fairalloc.expressions import ROOTS, Scope, Type, compile_expression

SOURCE = 'account.type == "institutional" and allocation < 1% * account.intended and fill.ratio < 0.5'
REPEATS = 9
BATCH_SECONDS = 0.1


@dataclass
class Candidate:
    """One engine evaluating the condition: ``statement`` run in ``namespace`` must be True."""

    name: str
    statement: str
    namespace: dict[str, Any]
    note: str


def _scope() -> Scope:
    return Scope.build(ROOTS, {"type": Type.STRING})


def ours() -> list[Candidate]:
    compiled = compile_expression(SOURCE, scope=_scope(), expect=Type.BOOLEAN)
    fn = compiled.fn
    account = {"id": "A1", "type": "institutional", "intended": 1000, "limit_price": None, "received_at": None}
    fill = {"ratio": Decimal("0.3")}
    c5 = Decimal("0.5")

    def hand(order: Any, security: Any, statement: Any, fill: Any, account: Any, allocation: Any) -> Any:
        return account["type"] == "institutional" and allocation * 100 < account["intended"] and fill["ratio"] < c5

    call = "fn(None, None, None, fill, account, allocation)"
    data = {"fill": fill, "account": account}
    return [
        Candidate("fairalloc compiled (int allocation)", call, {"fn": fn, **data, "allocation": 9}, "exact"),
        Candidate(
            "fairalloc compiled (Decimal allocation)",
            call,
            {"fn": fn, **data, "allocation": Decimal("9.5")},
            "exact",
        ),
        Candidate("hand-written Python function", call, {"fn": hand, **data, "allocation": 9}, "same data"),
    ]


def rule_engine_candidate() -> Candidate:
    import rule_engine  # type: ignore[import-untyped]

    rule = rule_engine.Rule(
        "account['type'] == 'institutional' and allocation < 0.01 * account['intended'] and fill['ratio'] < 0.5"
    )
    thing = {"account": {"type": "institutional", "intended": 1000}, "allocation": 9, "fill": {"ratio": Decimal("0.3")}}
    return Candidate("rule-engine", "rule.matches(thing)", {"rule": rule, "thing": thing}, "Rule.matches, item access")


def cel_candidate() -> Candidate:
    import celpy

    env = celpy.Environment()
    program = env.program(
        env.compile(
            'account.type == "institutional" && double(allocation) < 0.01 * double(account.intended)'
            " && fill.ratio < 0.5"
        )
    )
    to_cel = celpy.json_to_cel  # type: ignore[attr-defined]
    activation = {
        "account": to_cel({"type": "institutional", "intended": 1000}),
        "allocation": celpy.celtypes.IntType(9),
        "fill": to_cel({"ratio": 0.3}),
    }
    return Candidate(
        "cel-python",
        "bool(program.evaluate(activation))",
        {"program": program, "activation": activation},
        "interpreter, CEL doubles (float)",
    )


def zen_candidate() -> Candidate:
    import zen

    expression = zen.compile_expression(
        'account.type == "institutional" and allocation < 0.01 * account.intended and fill.ratio < 0.5'
    )
    context = {"account": {"type": "institutional", "intended": 1000}, "allocation": 9, "fill": {"ratio": 0.3}}
    return Candidate(
        "zen-engine",
        "expression.evaluate(context)",
        {"expression": expression, "context": context},
        "compile_expression, float data",
    )


def peers() -> tuple[list[Candidate], list[str]]:
    found, notes = [], []
    for name, make in (("rule-engine", rule_engine_candidate), ("cel-python", cel_candidate), ("zen-engine", zen_candidate)):
        try:
            found.append(make())
        except ImportError:
            notes.append(f"{name}: not installed, skipped (pip install '.[bench]')")
    return found, notes


def rates(candidates: list[Candidate]) -> list[tuple[float, float]]:
    """Median calls per second of each candidate, by wall time and by CPU time, round-robin.

    CPU time (this process's user + system) is much less disturbed than wall time when other
    jobs share the machine.
    """
    timers, numbers = [], []
    for candidate in candidates:
        assert eval(candidate.statement, candidate.namespace) is True, candidate.name  # noqa: S307 - our text
        timer = timeit.Timer(candidate.statement, globals=candidate.namespace)
        number, elapsed = timer.autorange()
        timers.append(timer)
        numbers.append(max(1, int(number * BATCH_SECONDS / max(elapsed, 1e-9))))
    wall: list[list[float]] = [[] for _ in candidates]
    cpu: list[list[float]] = [[] for _ in candidates]
    for _ in range(REPEATS):
        for index, timer in enumerate(timers):
            cpu_start = time.process_time()
            seconds = timer.timeit(numbers[index])
            wall[index].append(numbers[index] / seconds)
            cpu[index].append(numbers[index] / max(time.process_time() - cpu_start, 1e-9))
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu)]


def columnar_rate(accounts: int = 100_000) -> float:
    """Evaluations per second of the condition's columnar form, one call over ``accounts`` accounts
    (what a large block does: fairalloc.arrays)."""
    import numpy as np

    from fairalloc.expressions.vector import Frame, Rational, vectorise

    function = vectorise(compile_expression(SOURCE, scope=_scope(), expect=Type.BOOLEAN))
    assert function is not None
    columns = {
        "type": np.asarray(["institutional" if i % 3 else "retail" for i in range(accounts)], dtype=object),
        "intended": Rational(np.full(accounts, 1000, dtype=np.int64), 1),
    }
    frame = Frame({"order": {}, "security": {}, "statement": {}, "fill": {"ratio": Decimal("0.3")}},
                  columns.__getitem__, Rational(np.full(accounts, 9, dtype=np.int64), 1))
    assert int(function(frame).sum()) == accounts - len(range(0, accounts, 3))
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function(frame)
        samples.append(time.perf_counter() - start)
    return accounts / statistics.median(samples)


def compile_time() -> float:
    scope = _scope()
    samples = []
    for _ in range(50):
        start = time.perf_counter()
        compile_expression(SOURCE, scope=scope, expect=Type.BOOLEAN)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def cold_start() -> list[tuple[str, float, float]]:
    """Fresh interpreters: bare Python, import the package, import + build parser + compile.

    Medians of wall time and of the child's CPU time (user + system).
    """
    programs = {
        "python -c pass": "pass",
        "import fairalloc.expressions": "import fairalloc.expressions",
        "import + build parser + compile one expression": (
            "from fairalloc.expressions import ROOTS, Scope, Type, compile_expression\n"
            f"compile_expression({SOURCE!r}, scope=Scope.build(ROOTS, {{'type': Type.STRING}}), expect=Type.BOOLEAN)"
        ),
    }
    rows = []
    for label, program in programs.items():
        walls, cpus = [], []
        for _ in range(7):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", program], check=True)
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        rows.append((label, statistics.median(walls), statistics.median(cpus)))
    return rows


def main() -> None:
    load_before = os.getloadavg()[0]
    mine = ours()
    others, notes = peers()
    candidates = [*mine, *others]
    measured = rates(candidates)
    base_cpu = measured[0][1]
    print(f"expression: {SOURCE}")
    print(f"{'engine':<42} {'evals/s wall':>14} {'evals/s CPU':>14} {'vs fairalloc':>13}  notes")
    for candidate, (wall, cpu) in zip(candidates, measured):
        print(f"{candidate.name:<42} {wall:>14,.0f} {cpu:>14,.0f} {cpu / base_cpu:>12.3f}x  {candidate.note}")
    for note in notes:
        print(f"  {note}")
    print(f"{'fairalloc columnar (100,000 accounts a call)':<42} {columnar_rate():>14,.0f} {'':>14} "
          f"{'':>13}  large blocks: fairalloc.arrays")
    print()
    print(f"{'parse + check + compile, one expression (warm parser)':<60} {compile_time() * 1e6:>9.0f} us")
    for label, wall, cpu in cold_start():
        print(f"cold start: {label:<48} {wall * 1e3:>7.1f} ms wall {cpu * 1e3:>7.1f} ms CPU")
    print(f"1-minute load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
