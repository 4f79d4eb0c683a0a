"""Expression language: evaluations per second against peers, compile time, cold start.

The expression is the issue's reference condition:

    account.type == "institutional" and allocation < 1% * account.intended and fill.ratio < 0.5

Each peer runs the same condition in its own syntax on equivalent data (noted in the table); a
peer that is not installed is skipped with a note. Figures are medians of repeated timings on one
core; ratios are relative to fairalloc's compiled function.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from engine.expressions import ROOTS, Scope, Type, compile_expression

SOURCE = 'account.type == "institutional" and allocation < 1% * account.intended and fill.ratio < 0.5'
REPEATS = 7


def _scope() -> Scope:
    return Scope.build(ROOTS, {"type": Type.STRING})


def _rate(statement: str, namespace: dict[str, Any], target_seconds: float = 0.2) -> float:
    """Median calls per second of ``statement`` over REPEATS timings of about target_seconds."""
    timer = timeit.Timer(statement, globals=namespace)
    number, elapsed = timer.autorange()
    number = max(1, int(number * target_seconds / max(elapsed, 1e-9)))
    times = timer.repeat(repeat=REPEATS, number=number)
    return number / statistics.median(times)


def ours() -> list[tuple[str, float, str]]:
    compiled = compile_expression(SOURCE, scope=_scope(), expect=Type.BOOLEAN)
    account = {"id": "A1", "type": "institutional", "intended": 1000, "limit_price": None, "received_at": None}
    fill = {"ratio": Decimal("0.3")}
    rows = []
    for label, allocation in (("int allocation", 9), ("Decimal allocation", Decimal("9.5"))):
        namespace = {"fn": compiled.fn, "account": account, "fill": fill, "allocation": allocation}
        assert compiled.fn(None, None, None, fill, account, allocation) is True
        rate = _rate("fn(None, None, None, fill, account, allocation)", namespace)
        rows.append((f"fairalloc compiled ({label})", rate, "int/Decimal data, exact"))
    c5 = Decimal("0.5")
    hand: Callable[..., bool] = lambda order, security, statement, fill, account, allocation: (  # noqa: E731
        account["type"] == "institutional" and allocation * 100 < account["intended"] and fill["ratio"] < c5
    )
    namespace = {"fn": hand, "account": account, "fill": fill, "allocation": 9}
    rows.append(("hand-written lambda", _rate("fn(None, None, None, fill, account, allocation)", namespace), "same data"))
    return rows


def rule_engine_row() -> tuple[str, float, str]:
    import rule_engine  # type: ignore[import-untyped]

    rule = rule_engine.Rule(
        "account['type'] == 'institutional' and allocation < 0.01 * account['intended'] and fill['ratio'] < 0.5"
    )
    thing = {"account": {"type": "institutional", "intended": 1000}, "allocation": 9, "fill": {"ratio": Decimal("0.3")}}
    assert rule.matches(thing) is True
    return "rule-engine", _rate("rule.matches(thing)", {"rule": rule, "thing": thing}), "Rule.matches, item access"


def cel_row() -> tuple[str, float, str]:
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
    assert bool(program.evaluate(activation)) is True
    rate = _rate("program.evaluate(activation)", {"program": program, "activation": activation}, 0.05)
    return "cel-python", rate, "interpreter, CEL doubles (float)"


def zen_row() -> tuple[str, float, str]:
    import zen

    expression = zen.compile_expression(
        'account.type == "institutional" and allocation < 0.01 * account.intended and fill.ratio < 0.5'
    )
    context = {"account": {"type": "institutional", "intended": 1000}, "allocation": 9, "fill": {"ratio": 0.3}}
    assert expression.evaluate(context) is True
    rate = _rate("expression.evaluate(context)", {"expression": expression, "context": context})
    return "zen-engine", rate, "compile_expression, float data"


def peers() -> tuple[list[tuple[str, float, str]], list[str]]:
    rows, notes = [], []
    for name, row in (("rule-engine", rule_engine_row), ("cel-python", cel_row), ("zen-engine", zen_row)):
        try:
            rows.append(row())
        except ImportError:
            notes.append(f"{name}: not installed, skipped (pip install '.[bench]')")
    return rows, notes


def compile_times() -> list[tuple[str, float]]:
    scope = _scope()
    samples = []
    for _ in range(50):
        start = time.perf_counter()
        compile_expression(SOURCE, scope=scope, expect=Type.BOOLEAN)
        samples.append(time.perf_counter() - start)
    return [("parse + check + compile, one expression (warm parser)", statistics.median(samples))]


def cold_start() -> list[tuple[str, float]]:
    """Fresh interpreters: bare Python, import the package, import + build parser + compile."""
    programs = {
        "python -c pass": "pass",
        "import engine.expressions": "import engine.expressions",
        "import + build parser + compile one expression": (
            "from engine.expressions import ROOTS, Scope, Type, compile_expression\n"
            f"compile_expression({SOURCE!r}, scope=Scope.build(ROOTS, {{'type': Type.STRING}}), expect=Type.BOOLEAN)"
        ),
    }
    rows = []
    for label, program in programs.items():
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", program], check=True)
            samples.append(time.perf_counter() - start)
        rows.append((label, statistics.median(samples)))
    return rows


def main() -> None:
    load_before = os.getloadavg()[0]
    mine = ours()
    others, notes = peers()
    base = mine[0][1]
    print(f"expression: {SOURCE}")
    print(f"{'engine':<42} {'evals/s (median)':>18} {'vs fairalloc':>13}  notes")
    for name, rate, note in [*mine, *others]:
        print(f"{name:<42} {rate:>18,.0f} {rate / base:>12.3f}x  {note}")
    for note in notes:
        print(f"  {note}")
    print()
    for label, seconds in compile_times():
        print(f"{label:<60} {seconds * 1e6:>9.0f} us")
    for label, seconds in cold_start():
        print(f"cold start: {label:<48} {seconds * 1e3:>9.1f} ms")
    print(f"1-minute load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
