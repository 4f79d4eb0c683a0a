"""Policy tests: YAML files that pin what a policy does to a trade, and the runner that checks them.

A test file names the policy it tests and lists cases; each case gives a trade (a path to a trade
JSON document, relative to the test file, or the trade written inline), an optional rotation
state, and what must come out::

    policy: ../../us-equity-pro-rata.yaml
    cases:
      - name: partial fill is spread pro-rata in round lots
        trade: ../../../examples/us-equity-pro-rata.trade.json
        rotation: {group: us-equity-pro-rata, position: 0}     # optional
        fairness: {group: us-equity-pro-rata, advantage: {CLIENT-A: 40}}   # optional
        expect:
          allocations: {CLIENT-A: 15000, CLIENT-B: 6000}        # accounts not listed must get 0
          exceptions: {proprietary-in-partial-fill: [PROPRIETARY]}   # exactly these fired
          rotation_after: {position: 1}                          # optional
          fairness_after: {CLIENT-A: -10, CLIENT-B: 10/3}       # optional: advantages, exact
      - name: a bond order is not governed by this policy
        trade: {...}
        expect:
          refused: policy-not-applicable                         # a refusal code instead

``allocations`` is exact (every account of the trade not listed must receive nothing),
``exceptions`` maps each fired rule id (or ``minimum`` for a denial by the minimum) to the accounts
it fired for and is compared as a whole; an omitted key is not checked. Problems in a test file are
diagnostics located at ``file:line:column``; the format is documented in ``docs/policy-review.md``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from fairalloc import allocate, load_policy, load_trade
from fairalloc.errors import Diagnostic, FairallocError, InputError, Location, RefusedError
from fairalloc.fairness import FairnessState, fraction_json
from fairalloc.load import Path, SourceDocument, load_yaml, read_text
from fairalloc.plan import Policy
from fairalloc.result import Allocation, quantity_json
from fairalloc.rotation import RotationState
from fairalloc.trade import Trade

_FILE_KEYS = frozenset({"policy", "cases"})
_CASE_KEYS = frozenset({"name", "trade", "rotation", "fairness", "expect"})
_EXPECT_KEYS = frozenset({"allocations", "exceptions", "refused", "rotation_after", "money", "fairness_after"})


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a case requires; ``None`` means "not checked"."""

    allocations: dict[str, Fraction] | None = None
    exceptions: dict[str, frozenset[str]] | None = None
    refused: str | None = None
    rotation_after: dict[str, Any] | None = None
    money: dict[str, dict[str, Any]] | None = None  # account -> gross, net, price_credit, costs by name
    fairness_after: dict[str, Fraction] | None = None  # account -> cumulative advantage after


@dataclass(frozen=True, slots=True)
class PolicyTestCase:
    """One case of a test file, ready to run."""

    name: str
    location: Location
    trade: Trade
    trade_file: str
    rotation: RotationState | None
    expect: Expectation
    fairness: FairnessState | None = None


@dataclass(frozen=True, slots=True)
class PolicyTestFile:
    """A parsed test file: the policy it names and its cases."""

    path: str
    policy_path: str
    cases: tuple[PolicyTestCase, ...]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one case: ``passed``, ``failed`` (expectation not met) or ``error`` (could not run)."""

    case: PolicyTestCase
    status: str
    messages: tuple[str, ...]
    seconds: float
    allocation: Allocation | None = None
    refused: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """The outcome of one test file. ``errors`` are problems that stopped the whole file."""

    path: str
    policy: Policy | None
    results: tuple[CaseResult, ...] = ()
    errors: tuple[Diagnostic, ...] = ()
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.status == status)

    @property
    def ok(self) -> bool:
        return not self.errors and all(result.status == "passed" for result in self.results)


@dataclass
class _Reader:
    """Reads a test file's data with located diagnostics."""

    doc: SourceDocument
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, path: Path, hint: str | None = None, *, key: bool = False) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.doc.locate(path, key=key), hint))

    def mapping(self, value: Any, path: Path, allowed: frozenset[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error("policytest-type", "expected a mapping", path)
            return None
        for key in sorted(set(value) - allowed):
            self.error("policytest-unknown-key", f"unknown key '{key}'", path + (key,),
                       f"allowed here: {', '.join(sorted(allowed))}", key=True)
        return value

    def quantity(self, value: Any, path: Path) -> Fraction | None:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
            self.error("policytest-quantity", f"expected a quantity, not {value!r}", path)
            return None
        try:
            return Fraction(Decimal(str(value)))
        except (ArithmeticError, ValueError):
            self.error("policytest-quantity", f"'{value}' is not a quantity", path)
            return None


def load_test_file(path: str) -> PolicyTestFile:
    """Parse the test file at ``path``; raise :class:`InputError` listing every problem in it."""
    doc = load_yaml(read_text(path), path)
    reader = _Reader(doc)
    top = reader.mapping(doc.data, (), _FILE_KEYS) or {}
    policy = top.get("policy")
    if not isinstance(policy, str):
        reader.error("policytest-policy", "the test file must name its policy: 'policy: PATH'", ("policy",),
                     "a path relative to this test file, e.g. ../../us-equity-pro-rata.yaml")
    cases_data = top.get("cases")
    if not isinstance(cases_data, list) or not cases_data:
        reader.error("policytest-cases", "the test file must list its cases under 'cases:'", ("cases",))
        cases_data = []
    base = os.path.dirname(path)
    cases = [case for index, item in enumerate(cases_data)
             if (case := _read_case(reader, item, ("cases", index), base)) is not None]
    if reader.diagnostics:
        raise InputError(reader.diagnostics)
    assert isinstance(policy, str)
    return PolicyTestFile(path, os.path.normpath(os.path.join(base, policy)), tuple(cases))


def _read_case(reader: _Reader, item: Any, path: Path, base: str) -> PolicyTestCase | None:
    spec = reader.mapping(item, path, _CASE_KEYS)
    if spec is None:
        return None
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        reader.error("policytest-name", "every case needs a 'name'", path)
    if "expect" not in spec:
        reader.error("policytest-expect", "every case needs an 'expect' section", path)
    expect = _read_expect(reader, spec.get("expect", {}), path + ("expect",))
    trade, trade_file = _read_trade(reader, spec.get("trade"), path + ("trade",), base)
    rotation = _read_rotation(reader, spec.get("rotation"), path + ("rotation",))
    fairness = _read_fairness(reader, spec.get("fairness"), path + ("fairness",))
    if trade is None or expect is None or not isinstance(name, str):
        return None
    return PolicyTestCase(name, reader.doc.locate(path), trade, trade_file, rotation, expect, fairness)


def _read_trade(reader: _Reader, value: Any, path: Path, base: str) -> tuple[Trade | None, str]:
    doc = reader.doc
    if isinstance(value, str):
        trade_path = os.path.normpath(os.path.join(base, value))
        try:
            return load_trade(trade_path), trade_path
        except FairallocError as error:
            reader.diagnostics.extend(error.diagnostics)
            return None, trade_path
    if not isinstance(value, dict):
        reader.error("policytest-trade", "'trade' must be a path to a trade JSON file or the trade itself", path)
        return None, doc.file
    try:
        return load_trade(_jsonable(value), file=doc.file), doc.file
    except InputError as error:
        for diagnostic in error.diagnostics:
            inner = _pointer_path(diagnostic.location.pointer)
            reader.diagnostics.append(Diagnostic(diagnostic.code, diagnostic.message,
                                                 doc.locate(path + inner), diagnostic.hint))
        return None, doc.file


def _read_rotation(reader: _Reader, value: Any, path: Path) -> RotationState | None:
    if value is None:
        return None
    try:
        return RotationState.from_json(_jsonable(value), reader.doc.file)
    except InputError as error:
        for diagnostic in error.diagnostics:
            inner = _pointer_path(diagnostic.location.pointer)
            reader.error(diagnostic.code, diagnostic.message, path + inner, diagnostic.hint)
        return None


def _read_fairness(reader: _Reader, value: Any, path: Path) -> FairnessState | None:
    if value is None:
        return None
    try:
        return FairnessState.from_json(_jsonable(value), reader.doc.file)
    except InputError as error:
        for diagnostic in error.diagnostics:
            inner = _pointer_path(diagnostic.location.pointer)
            reader.error(diagnostic.code, diagnostic.message, path + inner, diagnostic.hint)
        return None


def _read_fairness_after(reader: _Reader, value: Any, path: Path) -> dict[str, Fraction] | None:
    """``fairness_after``: account -> advantage, read as a fairness state's advantages are."""
    if value is None:
        return None
    if not isinstance(value, dict):
        reader.error("policytest-fairness", "'fairness_after' maps account ids to advantages such as -10 or 10/3",
                     path)
        return None
    try:
        state = FairnessState.from_json({"group": "-", "advantage": _jsonable(value)}, reader.doc.file)
    except InputError as error:
        for diagnostic in error.diagnostics:
            inner = _pointer_path(diagnostic.location.pointer)[1:]
            reader.error("policytest-fairness", diagnostic.message, path + inner, diagnostic.hint)
        return None
    return {str(account): state.of(str(account)) for account in value}


def _read_expect(reader: _Reader, value: Any, path: Path) -> Expectation | None:
    spec = reader.mapping(value, path, _EXPECT_KEYS)
    if spec is None:
        return None
    allocations: dict[str, Fraction] | None = None
    if "allocations" in spec:
        given = spec["allocations"] or {}
        if not isinstance(given, dict):
            reader.error("policytest-allocations", "'allocations' maps each account id to its quantity",
                         path + ("allocations",), "e.g. allocations: {CLIENT-A: 15000, CLIENT-B: 6000}")
            given = {}
        allocations = {}
        for account, quantity in given.items():
            amount = reader.quantity(quantity, path + ("allocations", account))
            if amount is not None:
                allocations[str(account)] = amount
    exceptions: dict[str, frozenset[str]] | None = None
    if "exceptions" in spec:
        fired = spec["exceptions"] or {}
        if not isinstance(fired, dict) or not all(isinstance(v, list) for v in fired.values()):
            reader.error("policytest-exceptions", "'exceptions' maps each rule id to a list of account ids",
                         path + ("exceptions",), "e.g. exceptions: {restricted-person-5130: [ACCT-1]}")
        else:
            exceptions = {str(rule): frozenset(str(a) for a in accounts) for rule, accounts in fired.items()}
    refused = spec.get("refused")
    if refused is not None and not isinstance(refused, str):
        reader.error("policytest-refused", "'refused' is the stable code of the expected refusal", path + ("refused",))
    if refused is not None and ("allocations" in spec or "exceptions" in spec):
        reader.error("policytest-refused", "a case expects either a refusal or allocations, not both", path)
    rotation_after = spec.get("rotation_after")
    if rotation_after is not None and not isinstance(rotation_after, dict):
        reader.error("policytest-rotation", "'rotation_after' is a mapping such as {position: 1}", path + ("rotation_after",))
        rotation_after = None
    money = spec.get("money")
    if money is not None and not (isinstance(money, dict) and all(isinstance(v, dict) for v in money.values())):
        reader.error("policytest-money", "'money' maps each account id to its amounts", path + ("money",),
                     "e.g. money: {CLIENT-A: {net: '100.25', costs: {commission: '0.25'}}}")
        money = None
    return Expectation(allocations, exceptions, refused if isinstance(refused, str) else None,
                       _jsonable(rotation_after) if rotation_after is not None else None,
                       money={str(k): _jsonable(v) for k, v in money.items()} if money is not None else None,
                       fairness_after=_read_fairness_after(reader, spec.get("fairness_after"), path + ("fairness_after",)))


def _pointer_path(pointer: str | None) -> Path:
    """A JSON pointer as a data path (numeric parts become indices)."""
    if not pointer:
        return ()
    parts = [part.replace("~1", "/").replace("~0", "~") for part in pointer.lstrip("/").split("/")]
    return tuple(int(part) if part.isdigit() else part for part in parts)


def _jsonable(value: Any) -> Any:
    """YAML data as the JSON a trade or rotation document would hold (dates as ISO text)."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# -- running -------------------------------------------------------------------------------------
def run_case(policy: Policy, case: PolicyTestCase) -> CaseResult:
    """Allocate the case's trade under ``policy`` and compare with what the case expects."""
    started = time.perf_counter()
    try:
        allocation = allocate(policy, case.trade, case.rotation, file=case.trade_file, fairness=case.fairness)
    except RefusedError as error:
        elapsed = time.perf_counter() - started
        codes = tuple(error.codes)
        if case.expect.refused in codes:
            return CaseResult(case, "passed", (), elapsed, refused=codes)
        expected = ([f"expected refusal '{case.expect.refused}', got {', '.join(codes)}"]
                    if case.expect.refused is not None else [])
        messages = tuple(expected + [d.render() for d in error.diagnostics])
        return CaseResult(case, "failed", messages, elapsed, refused=codes)
    except FairallocError as error:
        return CaseResult(case, "error", tuple(d.render() for d in error.diagnostics), time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    problems = _compare(case.expect, allocation)
    return CaseResult(case, "failed" if problems else "passed", tuple(problems), elapsed, allocation)


def _compare(expect: Expectation, allocation: Allocation) -> list[str]:
    """Every way ``allocation`` differs from ``expect``, one message each (empty: it matches)."""
    messages: list[str] = []
    if expect.refused is not None:
        messages.append(f"expected refusal '{expect.refused}', but the trade was allocated")
        return messages
    actual = allocation.quantities()
    if expect.allocations is not None:
        for account in sorted(set(expect.allocations) - set(actual)):
            messages.append(f"account '{account}' is not in the trade's statement")
        for account in sorted(actual):
            wanted = expect.allocations.get(account, Fraction(0))
            if actual[account] != wanted:
                messages.append(f"{account}: expected {quantity_json(wanted)}, allocated {quantity_json(actual[account])}")
    if expect.exceptions is not None:
        fired = fired_rules(allocation)
        for rule in sorted(set(fired) | set(expect.exceptions)):
            got, wanted_for = fired.get(rule, frozenset()), expect.exceptions.get(rule, frozenset())
            for account in sorted(got - wanted_for):
                messages.append(f"rule '{rule}' fired for {account}, which the case does not expect")
            for account in sorted(wanted_for - got):
                messages.append(f"rule '{rule}' did not fire for {account}")
    if expect.money is not None:
        messages.extend(_money_problems(expect.money, allocation))
    if expect.rotation_after is not None:
        after = allocation.rotation_after.to_json() if allocation.rotation_after else {}
        for key, wanted in sorted(expect.rotation_after.items()):
            if after.get(key) != wanted:
                messages.append(f"rotation after the order: expected {key} {wanted!r}, got {after.get(key)!r}")
    if expect.fairness_after is not None:
        state = allocation.fairness_after
        for account, wanted_advantage in sorted(expect.fairness_after.items()):
            advantage = state.of(account) if state is not None else None
            if advantage != wanted_advantage:
                shown = "no fairness state" if advantage is None else fraction_json(advantage)
                messages.append(f"cumulative advantage of {account} after the order: "
                                f"expected {fraction_json(wanted_advantage)}, got {shown}")
    return messages


def _money_problems(expected: dict[str, dict[str, Any]], allocation: Allocation) -> list[str]:
    """Every amount of ``expected`` (by account: gross, net, price_credit, costs by name) that the
    allocation's money differs from, compared as exact decimals."""
    entries = {entry["account"]: entry.get("money", {}) for entry in allocation.document()["allocations"]}
    messages = []
    for account, amounts in sorted(expected.items()):
        actual = entries.get(account)
        if actual is None:
            messages.append(f"{account}: not an account of the trade")
            continue
        wanted = [(key, value, actual.get(key)) for key, value in amounts.items() if key != "costs"]
        wanted += [(f"costs.{name}", value, actual.get("costs", {}).get(name))
                   for name, value in (amounts.get("costs") or {}).items()]
        for key, value, got in sorted(wanted):
            if got is None or Fraction(str(value)) != Fraction(got):
                messages.append(f"{account}: expected {key} {value}, got {got if got is not None else 'none'}")
    return messages


def fired_rules(allocation: Allocation) -> dict[str, frozenset[str]]:
    """Rule id (or ``minimum``) → the accounts it fired for in ``allocation``."""
    fired: dict[str, set[str]] = {}
    for record in allocation.exceptions:
        fired.setdefault(record.rule, set()).add(record.account)
    return {rule: frozenset(accounts) for rule, accounts in fired.items()}


def run_file(path: str) -> SuiteResult:
    """Load the test file at ``path`` and its policy, run every case; never raises for bad input."""
    started = time.perf_counter()
    try:
        tests = load_test_file(path)
        policy = load_policy(tests.policy_path)
    except FairallocError as error:
        return SuiteResult(path, None, errors=tuple(error.diagnostics), seconds=time.perf_counter() - started)
    results = tuple(run_case(policy, case) for case in tests.cases)
    return SuiteResult(path, policy, results, seconds=time.perf_counter() - started)
