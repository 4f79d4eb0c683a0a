"""Rule coverage: which rules and branches of a policy its tests exercised, and which they did not.

A *branch* is an outcome of one part of a policy that a test can pin; each is covered when at least
one test case's allocation shows it:

============================  ===========  ======================================================
target                        branch       covered when, in some case's allocation ...
============================  ===========  ======================================================
``applies_to``                ``governs``  the trade was allocated (the condition held)
``applies_to``                ``declines`` the trade was refused with ``policy-not-applicable``
rule (any action)             ``fires``    the rule fired for some account
``cap`` rule                  ``binds``    an account it fired for got exactly its cap, below intended
``zero`` rule                 ``denies``   an account was denied in a round by the rule
``minimum``                   ``denies``   an account was denied for falling below the minimum
``minimum``                   ``met``      an account with a positive allocation reached the minimum
``rounding`` (largest rem.)   ``remainder`` an account received an extra lot for its remainder
``rounding`` (largest rem.)   ``odd-lot``  an odd quantity (less than a lot) was handed out
``pro_rata.priority``         ``filled``   a tier was filled up to every account's cap
``pro_rata.priority``         ``shared``   a tier shared what was left of the fill pro rata
``odd_lots``                  ``recipient`` the designated recipient took the odd quantity
============================  ===========  ======================================================

The measurement reads only the engine's explanation of each allocation (fired rules, caps,
minimums, rounding steps); it does not instrument expressions, so "a rule's condition was false
for some account" is not a branch here — every rule that never fired is named as untested.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fairalloc.plan import Policy
from fairalloc.result import AccountAllocation, Allocation

AccountTest = Callable[[AccountAllocation], bool]


@dataclass(frozen=True, slots=True)
class Branch:
    """One branch of a policy and how many test cases exercised it."""

    target: str  # 'applies_to', 'rule:<id>', 'minimum', 'rounding'
    branch: str
    cases: int
    meaning: str

    @property
    def covered(self) -> bool:
        return self.cases > 0


@dataclass(frozen=True, slots=True)
class PolicyCoverage:
    """The coverage of one policy by a set of test cases."""

    policy: str  # id@version
    file: str
    cases: int
    branches: tuple[Branch, ...]

    @property
    def untested_rules(self) -> tuple[str, ...]:
        """Ids of the policy's rules that fired in no test case."""
        return tuple(b.target.removeprefix("rule:") for b in self.branches
                     if b.target.startswith("rule:") and b.branch == "fires" and not b.covered)

    @property
    def uncovered(self) -> tuple[Branch, ...]:
        return tuple(branch for branch in self.branches if not branch.covered)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "file": self.file,
            "cases": self.cases,
            "covered": len(self.branches) - len(self.uncovered),
            "branches": len(self.branches),
            "untested_rules": list(self.untested_rules),
            "detail": [{"target": b.target, "branch": b.branch, "cases": b.cases, "covered": b.covered,
                        "meaning": b.meaning} for b in self.branches],
        }


def _count(allocations: Sequence[Allocation], test: AccountTest) -> int:
    """How many allocations have at least one account for which ``test`` holds."""
    return sum(1 for allocation in allocations if any(test(account) for account in allocation.accounts))


def _binds(rule_id: str) -> AccountTest:
    """An account the cap rule ``rule_id`` fired for received exactly its cap, below its intended quantity."""
    return lambda acc: rule_id in acc.rules and acc.cap is not None and acc.quantity == acc.cap < acc.intended


def _denied_by(rule_id: str) -> AccountTest:
    return lambda acc: acc.denied_by == rule_id


def _rule_branches(policy: Policy, allocations: Sequence[Allocation]) -> list[Branch]:
    branches: list[Branch] = []
    for rule in policy.rules:
        target = f"rule:{rule.id}"
        fired = sum(1 for a in allocations if any(record.rule == rule.id for record in a.exceptions))
        branches.append(Branch(target, "fires", fired, f"rule '{rule.id}' ({rule.action}) fired for an account"))
        if rule.action == "cap":
            branches.append(Branch(target, "binds", _count(allocations, _binds(rule.id)),
                                   "an account it capped received exactly its cap"))
        if rule.action == "zero":
            branches.append(Branch(target, "denies", _count(allocations, _denied_by(rule.id)),
                                   "an account was denied by it in a round"))
    return branches


def measure(policy: Policy, allocations: Sequence[Allocation], refusals: Sequence[Sequence[str]] = ()) -> PolicyCoverage:
    """The coverage of ``policy`` by test cases that produced ``allocations`` or were refused (codes)."""
    branches: list[Branch] = []
    if policy.applies_to is not None:
        declined = sum(1 for codes in refusals if "policy-not-applicable" in codes)
        branches.append(Branch("applies_to", "governs", len(allocations), "the policy governed a trade"))
        branches.append(Branch("applies_to", "declines", declined, "the policy declined a trade it does not govern"))
    branches.extend(_rule_branches(policy, allocations))
    if policy.minimum is not None and policy.method != "price_time":
        branches.append(Branch("minimum", "denies", _count(allocations, lambda acc: acc.denied_by == "minimum"),
                               f"an account was denied for falling below the minimum ({policy.minimum.describe()})"))
        branches.append(Branch("minimum", "met", _count(allocations, lambda acc: (
            acc.minimum is not None and acc.quantity > 0 and acc.quantity >= acc.minimum)),
            "an account's allocation reached the minimum"))
    if policy.method == "pro_rata" and policy.rounding_method == "largest_remainder":
        branches.append(Branch("rounding", "remainder", _count(allocations, lambda acc: (
            acc.step is not None and acc.step.extra_lot)), "an account received an extra lot for its remainder"))
        branches.append(Branch("rounding", "odd-lot", _count(allocations, lambda acc: (
            acc.step is not None and bool(acc.step.odd))), "a quantity smaller than a lot was handed out"))
    if policy.priority is not None:
        branches.append(Branch("pro_rata.priority", "filled", _count(allocations, lambda acc: (
            acc.tier_outcome is not None and acc.tier_outcome[0])), "a tier was filled up to every account's cap"))
        branches.append(Branch("pro_rata.priority", "shared", _count(allocations, lambda acc: (
            acc.tier_outcome is not None and not acc.tier_outcome[0] and acc.quantity > 0)),
            "a tier shared what was left of the fill pro rata"))
    if policy.odd_lot_recipient is not None:
        branches.append(Branch("odd_lots", "recipient", _count(allocations, lambda acc: acc.odd_lot is not None),
                               f"the designated recipient ({policy.odd_lot_recipient.describe()}) took the odd quantity"))
    return PolicyCoverage(policy.ref, policy.file, len(allocations) + len(refusals), tuple(branches))
