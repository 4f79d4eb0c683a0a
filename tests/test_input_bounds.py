"""Hostile policies, trades and other inputs: each is refused with its stable code, a location and
the documented exit status (3 for a policy, 4 for a trade or state), never exit 70, in bounded
time and memory.

Each case runs the real command in a child process whose address space is capped at 200 MB
(``resource.setrlimit``): a limit that did not hold would end the child with a MemoryError (exit
70) or a kill, not with the expected code. Completion within a generous timeout is asserted; the
speed targets themselves live in ``bench/``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fairalloc.load import MAX_CHARS, MAX_DEPTH, MAX_VALUES

from .conftest import EXAMPLES, POLICIES, example_trade

MEMORY = 200 * 1024 * 1024
TIMEOUT = 60  # seconds; generous for a shared machine, a stall is minutes
POLICY = POLICIES / "us-equity-pro-rata.yaml"
ROTATION_POLICY = POLICIES / "fixed-income-rotation.yaml"

_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
from fairalloc.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_child(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``fairalloc --error-format json ARGS`` capped at 200 MB."""
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD.format(memory=MEMORY), "--error-format", "json", *args],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    assert "Traceback" not in completed.stderr, completed.stderr[-2000:]
    return completed


def run_bounded(*args: str) -> tuple[int, dict[str, Any]]:
    """Run ``fairalloc --error-format json ARGS`` capped at 200 MB; return its status and errors."""
    completed = run_child(*args)
    report: dict[str, Any] = json.loads(completed.stderr) if completed.stderr.strip() else {}
    return completed.returncode, report


def policy_text(**replacements: str) -> str:
    text = POLICY.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return text


def _alias_bomb() -> str:
    lines = ['lol0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"lol{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return POLICY.read_text(encoding="utf-8") + "\n".join(lines) + "\n"


def _nested_block(depth: int) -> str:
    return "".join("  " * level + f"k{level}:\n" for level in range(depth)) + "  " * depth + "leaf: 1\n"


HOSTILE_POLICIES: dict[str, tuple[str, str, int | None]] = {
    # name: (text, code, line of the reported location or None)
    "alias-bomb": (_alias_bomb(), "yaml-alias", 73),
    "recursive-alias": ("a: &a [*a]\n", "yaml-alias", 1),
    "flow-nesting-1e5": ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "yaml-too-deep", 1),
    "block-nesting": (_nested_block(MAX_DEPTH + 5), "yaml-too-deep", MAX_DEPTH + 1),
    "huge-exponent": (policy_text(**{"lot: 100": "lot: 1.0e+999999999"}), "yaml-number-range", 38),
    "tiny-exponent": (policy_text(**{"lot: 100": "lot: 1.0e-999999999"}), "yaml-number-range", 38),
    "million-digits": (policy_text(**{"absolute: 100": "absolute: 1." + "0" * 10**6 + "1"}), "yaml-number-range", 48),
    "million-digit-integer": (policy_text(**{"absolute: 100": "absolute: 1" + "0" * 10**6}), "yaml-number-range", 48),
    "too-large": (policy_text() + "#" * MAX_CHARS + "\n", "yaml-too-large", 1),
    "too-many-values": ("a: [" + "0," * MAX_VALUES + "0]\n", "yaml-too-many-values", 1),
    "explicit-tag": (policy_text(**{"lot: 100": "lot: !!float 100"}), "yaml-tag", 38),
    "yaml-1.1-boolean": (policy_text(**{"review: true": "review: yes"}), "yaml-ambiguous-scalar", 58),
    "huge-literal-in-expression": (
        policy_text(**{"fill.ratio < 100%": "fill.ratio < 1" + "0" * 3000 + "%"}), "expr-number-range", 53),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_POLICIES))
def test_hostile_policy_is_refused_with_a_located_error(name: str, tmp_path: Path) -> None:
    text, code, line = HOSTILE_POLICIES[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    commands = [["validate", str(path)]]
    if code.startswith("yaml-"):  # fmt reads YAML as validate does; it does not compile expressions
        commands.append(["fmt", "--check", str(path)])
    for command in commands:
        status, report = run_bounded(*command)
        assert status == 3, (command, report)
        first = report["errors"][0]
        assert first["code"] == code
        assert first["file"] == str(path)
        assert first["line"] == line and first["column"] >= 1


def _trade_text(mutate: Any = None, raw: tuple[str, str] | None = None) -> str:
    document = example_trade()
    if mutate is not None:
        mutate(document)
    text = json.dumps(document, default=str)
    if raw is not None:
        assert raw[0] in text
        text = text.replace(raw[0], raw[1], 1)
    return text


def _set_price(document: dict[str, Any]) -> None:
    document["fills"][0]["price"] = "1." + "0" * 10**6 + "1"


def _set_weight(document: dict[str, Any]) -> None:
    document["statement"]["accounts"][0]["attributes"]["weight"] = 7


def _deep_attribute(document: dict[str, Any]) -> None:
    value: Any = 1
    for _ in range(40):
        value = [value]
    document["statement"]["accounts"][0]["attributes"]["nested"] = value


HOSTILE_TRADES: dict[str, tuple[str, str, str | None]] = {
    # name: (text, code, JSON pointer, or None when the location is file:line:column)
    "nesting-1e5": ("[" * 100_000 + "]" * 100_000, "json-too-deep", None),
    "deep-attribute": (_trade_text(_deep_attribute), "json-too-deep",
                       "/statement/accounts/0/attributes/nested/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0"),
    "5000-digit-integer": (_trade_text(raw=('"quantity": 50000', '"quantity": ' + "9" * 5000)), "json-number-range", None),
    "million-digit-price": (_trade_text(_set_price), "trade-number-range", "/fills/0/price"),
    "weight-1e999999999": (_trade_text(_set_weight, raw=('"weight": 7', '"weight": 1e999999999')), "json-number-range", None),
    "weight-1e-999999999": (_trade_text(_set_weight, raw=('"weight": 7', '"weight": 1e-999999999')), "json-number-range", None),
    "quantity-1e999999999": (_trade_text(raw=('"quantity": 50000', '"quantity": 1e999999999')), "json-number-range", None),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_TRADES))
def test_hostile_trade_is_refused_with_a_located_error(name: str, tmp_path: Path) -> None:
    text, code, pointer = HOSTILE_TRADES[name]
    path = tmp_path / f"{name}.json"
    path.write_text(text, encoding="utf-8")
    status, report = run_bounded("allocate", "--policy", str(POLICY), "--trade", str(path))
    assert status == 4, report
    first = report["errors"][0]
    assert first["code"] == code and first["file"] == str(path)
    if pointer is None:
        assert first["line"] >= 1 and first["column"] >= 1
    else:
        assert first["pointer"] == pointer


def test_a_trade_too_large_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    from fairalloc.trade import MAX_CHARS as TRADE_CHARS

    path = tmp_path / "large.json"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(_trade_text()[:-1] + ', "padding": "')
        handle.write("x" * (TRADE_CHARS + 1))
        handle.write('"}')
    status, report = run_bounded("allocate", "--policy", str(POLICY), "--trade", str(path))
    assert status == 4
    assert report["errors"][0]["code"] == "json-too-large"


@pytest.mark.parametrize("state, code", [
    ("[" * 100_000 + "]" * 100_000, "json-too-deep"),
    ('{"group": "all", "position": ' + "1" * 5000 + "}", "json-number-range"),
    ('{"group": "fixed-income-rotation/core\\ud800", "position": 0}', "rotation-state"),
])
def test_hostile_rotation_state_is_refused(state: str, code: str, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(state, encoding="utf-8")
    trade = EXAMPLES / "fixed-income-rotation.trade.json"
    status, report = run_bounded("allocate", "--policy", str(ROTATION_POLICY), "--trade", str(trade),
                                 "--rotation", str(path))
    assert status == 4 and report["errors"][0]["code"] == code


def test_hostile_policy_test_file_is_refused(tmp_path: Path) -> None:
    tests = tmp_path / "bomb.test.yaml"
    tests.write_text(f"policy: {POLICY}\ncases:\n  - &case {{name: a}}\n  - *case\n", encoding="utf-8")
    completed = run_child("test", str(tests))
    assert completed.returncode == 1  # the file is reported as an error among the test results
    assert f"{tests}:3:5: error[yaml-alias]" in completed.stdout


def test_documented_limits_match_the_constants() -> None:
    from fairalloc.load import MAX_DIAGNOSTICS
    from fairalloc.numbers import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, MAX_NUMBER_TEXT
    from fairalloc.trade import MAX_CHARS as TRADE_CHARS
    from fairalloc.trade import MAX_DEPTH as TRADE_DEPTH

    docs = POLICIES.parent / "docs"
    policy_doc = (docs / "policy-language.md").read_text(encoding="utf-8").split("## Limits", 1)[1]
    oms_doc = (docs / "oms-integration.md").read_text(encoding="utf-8").split("## Limits", 1)[1]
    numbers = f"at most {MAX_INTEGER_DIGITS} before the decimal point and {MAX_FRACTION_DIGITS} after it"
    for doc in (policy_doc, oms_doc):
        assert numbers in doc
        assert f"{MAX_NUMBER_TEXT} characters" in doc
    assert f"{MAX_CHARS:,} characters" in policy_doc
    assert f"{MAX_DEPTH} levels" in policy_doc
    assert f"{MAX_VALUES:,} mappings" in policy_doc
    assert f"{MAX_DIAGNOSTICS} per file" in policy_doc
    assert f"{TRADE_CHARS:,} characters" in oms_doc
    assert f"{TRADE_DEPTH} levels" in oms_doc
