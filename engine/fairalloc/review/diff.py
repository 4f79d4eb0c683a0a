"""A semantic diff of two policy versions, in the words a compliance reviewer reads.

The diff is taken over the policy's meaning — the compiled plan for settings that have defaults
(``rounding.method`` left out means ``largest_remainder``) and the policy data for the rest — never
over its text, so comments and layout never show. Rules are matched by id, so a moved rule is one
"moved" item, not a removal and an addition. Expressions that changed are shown old → new, and when
the new condition is the old one with a term added (``old or X``, ``old and X``) the item says so:
"rule `restricted-person-5130` now also excludes accounts where `X`". Quantities are in shares
(units of the order's quantity: face amount for bonds).

Each :class:`Change` says whether it can change an allocation (``allocation``); impact analysis
attributes changed allocations to those. Documentation, review flags, reason codes and deadlines
cannot change a quantity and are listed separately.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fairalloc.compile import canonical_json
from fairalloc.expressions.ast import Binary, Expr, unparse
from fairalloc.expressions.parse import ParseFailure, parse
from fairalloc.options import COST_BASES, PRICE_ALLOCATIONS, RESIDUALS
from fairalloc.plan import Costs, Policy

# How each place that holds a condition reads in a sentence: "<subject> where <condition>".
_ACTION_VERBS: dict[str, str] = {
    "exclude": "excludes accounts",
    "cap": "caps accounts",
    "zero": "allocates nothing to accounts",
    "flag": "flags for review accounts",
}
_REMAINDER: dict[str, str] = {
    "largest_remainder": "by largest remainder",
    "smallest_account": "to the smallest account",
    "largest_account": "to the largest account",
    "rotation": "in rotation order",
}
_WORDS: dict[str, str] = {
    "pro_rata": "pro-rata",
    "rotation": "rotation",
    "price_time": "price/time priority",
    "largest_remainder": "largest remainder",
    "quota": "the quota method",
    "smallest_account": "the smallest account",
    "largest_account": "the largest account",
    "account_id": "account id",
    "per_order": "every order",
    "per_day": "every trading day",
    "half_even": "half-even",
    "half_up": "half-up",
    "down": "down",
    "up": "up",
    "cme_553": "by CME Rule 553 (up for a buy, down for a sell, the difference credited to each account)",
}


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two policy versions."""

    pointer: str  # where, in the policy data (rules addressed by id: /rules/<id>/when)
    text: str  # the change in words
    allocation: bool  # whether it can change an allocated quantity
    rule: str | None = None  # the rule id, for rule changes
    old: Any = None
    new: Any = None

    @property
    def label(self) -> str:
        """A short name for tables: ``rule restricted-person-5130``, ``minimum``, ``rounding.lot``."""
        if self.rule is not None:
            return f"rule {self.rule}"
        return self.pointer.lstrip("/").replace("/", ".") or "policy"

    def to_json(self) -> dict[str, Any]:
        return {"pointer": self.pointer, "text": self.text, "affects_allocation": self.allocation,
                "rule": self.rule, "old": _plain(self.old), "new": _plain(self.new)}


@dataclass(frozen=True)
class PolicyDiff:
    """Everything that differs between ``old`` and ``new``, in reading order."""

    old: Policy
    new: Policy
    changes: tuple[Change, ...] = field(default=())
    old_note: str | None = None  # where the old version came from, e.g. who published it in the ledger
    new_note: str | None = None

    @property
    def same_meaning(self) -> bool:
        return self.old.digest == self.new.digest

    @property
    def allocation_changes(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.allocation)

    def heading(self) -> str:
        old, new = self.old, self.new
        name = old.id if old.id == new.id else f"{old.id} → {new.id}"
        return f"policy {name}: version {old.version} → {new.version} ({_short(old.digest)} → {_short(new.digest)})"

    def notes(self) -> list[str]:
        return [f"{label}: {note}" for label, note in (("old", self.old_note), ("new", self.new_note)) if note]

    def text(self) -> str:
        """Plain text for a terminal."""
        lines = [self.heading()] + [f"  {note}" for note in self.notes()]
        if self.same_meaning:
            lines.append("  no change of meaning (same digest)")
        for title, changes in self._groups():
            lines.append(f"  {title}:")
            lines.extend(f"    - {change.text}" for change in changes)
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        """Markdown for a pull request."""
        lines = [f"### Policy diff: {_code(self.old.ref)} → {_code(self.new.ref)}", "",
                 f"Digest {_code(self.old.digest)} → {_code(self.new.digest)}", ""]
        lines += [f"- {note}" for note in self.notes()] + ([""] if self.notes() else [])
        if self.same_meaning:
            lines.append("No change of meaning (same digest).")
        for title, changes in self._groups():
            lines.append(f"**{title[0].upper()}{title[1:]}**")
            lines.append("")
            lines.extend(f"- {change.text}" for change in changes)
            lines.append("")
        return "\n".join(lines).rstrip("\n") + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "old": {"id": self.old.id, "version": self.old.version, "digest": self.old.digest, "file": self.old.file},
            "new": {"id": self.new.id, "version": self.new.version, "digest": self.new.digest, "file": self.new.file},
            "same_meaning": self.same_meaning,
            "old_provenance": self.old_note,
            "new_provenance": self.new_note,
            "changes": [change.to_json() for change in self.changes],
        }

    def _groups(self) -> list[tuple[str, tuple[Change, ...]]]:
        affecting = self.allocation_changes
        other = tuple(change for change in self.changes if not change.allocation)
        return [(title, group) for title, group in (("changes that can affect allocations", affecting),
                                                     ("other changes", other)) if group]


def _short(digest: str) -> str:
    return digest[: len("sha256:") + 12]


def _code(text: Any) -> str:
    return f"`{text}`"


def _plain(value: Any) -> Any:
    """A JSON-ready copy of policy data (numbers as text where exact, dates ISO)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return str(value)


def _word(value: Any) -> str:
    return _WORDS.get(str(value), str(value))


def _number(value: Any) -> str:
    if isinstance(value, Decimal):
        normal = value.normalize()
        return format(normal, "f")
    return str(value)


def _percent(value: Decimal) -> str:
    return _number(value * 100) + "%"


def _direction(old: Any, new: Any) -> str:
    try:
        return "raised" if Decimal(str(new)) > Decimal(str(old)) else "lowered"
    except ArithmeticError:
        return "changed"


# -- expressions ---------------------------------------------------------------------------------
def _terms(tree: Expr, op: str) -> list[str]:
    """The operands of a chain of ``op`` (``a or b or c`` → [a, b, c]), each printed canonically."""
    if isinstance(tree, Binary) and tree.op == op:
        return _terms(tree.left, op) + _terms(tree.right, op)
    return [unparse(tree)]


def describe_condition(old: str, new: str, subject: str) -> str:
    """How a condition changed, e.g. "now also excludes accounts where `X`" (``subject``: "excludes accounts")."""
    try:
        old_tree, new_tree = parse(old), parse(new)
    except ParseFailure:
        return f"{subject} where {_code(new)} (was {_code(old)})"
    if unparse(old_tree) == unparse(new_tree):
        return f"condition rewritten without change of meaning: {_code(new)}"
    for op, wider in (("or", True), ("and", False)):
        before, after = _terms(old_tree, op), _terms(new_tree, op)
        added = [term for term in after if term not in before]
        removed = [term for term in before if term not in after]
        joined_added, joined_removed = f" {op} ".join(added), f" {op} ".join(removed)
        if set(before) < set(after) and not removed:
            return (f"now also {subject} where {_code(joined_added)}" if wider
                    else f"now {subject} only where, in addition, {_code(joined_added)}")
        if set(after) < set(before) and not added:
            return (f"no longer {subject} where {_code(joined_removed)}" if wider
                    else f"now {subject} even where {_code(joined_removed)} does not hold")
    return f"condition changed: {_code(old)} → {_code(new)}"


# -- sections ------------------------------------------------------------------------------------
Differ = Callable[[Policy, Policy], list[Change]]


def _identity(old: Policy, new: Policy) -> list[Change]:
    changes: list[Change] = []
    if old.id != new.id:
        changes.append(Change("/id", f"policy id changed from {_code(old.id)} to {_code(new.id)}", True, None, old.id, new.id))
    if old.effective_date != new.effective_date:
        changes.append(Change("/effective", f"effective date moved from {old.effective_date} to {new.effective_date}",
                              True, None, old.effective_date, new.effective_date))
    if old.owner != new.owner:
        changes.append(Change("/owner", f"owner changed from {old.owner} to {new.owner}", False, None, old.owner, new.owner))
    if old.description != new.description:
        changes.append(Change("/description", "description reworded", False, None, old.description, new.description))
    return changes


def _governance(old: Policy, new: Policy) -> list[Change]:
    before, after = old.data.get("applies_to"), new.data.get("applies_to")
    if before == after:
        return []
    if before is None:
        text = f"now governs only orders where {_code(after)} (it governed every order)"
    elif after is None:
        text = f"now governs every order (it governed only orders where {_code(before)})"
    else:
        text = "scope: " + describe_condition(before, after, "governs orders")
    return [Change("/applies_to", text, True, None, before, after)]


def _attribute_words(spec: dict[str, Any]) -> str:
    words = [str(spec.get("type"))]
    if "values" in spec:
        words.append("values " + ", ".join(spec["values"]))
    if "default" in spec:
        words.append(f"default {_plain(spec['default'])}")
    return "; ".join(words)


def _attributes(old: Policy, new: Policy) -> list[Change]:
    changes: list[Change] = []
    for owner in ("account", "security"):
        before = old.data.get("attributes", {}).get(owner, {})
        after = new.data.get("attributes", {}).get(owner, {})
        for name in sorted(set(before) | set(after)):
            pointer, label = f"/attributes/{owner}/{name}", f"{owner} attribute {_code(name)}"
            a, b = before.get(name), after.get(name)
            if a is None:
                changes.append(Change(pointer, f"new {label} ({_attribute_words(b)})", True, None, None, b))
            elif b is None:
                changes.append(Change(pointer, f"{label} removed", True, None, a, None))
            else:
                changes.extend(_attribute_change(pointer, label, a, b))
    return changes


def _attribute_change(pointer: str, label: str, a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    if a.get("type") != b.get("type"):
        changes.append(Change(pointer + "/type", f"{label} type changed from {a.get('type')} to {b.get('type')}",
                              True, None, a.get("type"), b.get("type")))
    old_values, new_values = a.get("values") or [], b.get("values") or []
    if old_values != new_values:
        added = [v for v in new_values if v not in old_values]
        removed = [v for v in old_values if v not in new_values]
        parts = ([f"now allows {', '.join(added)}"] if added else []) + ([f"no longer allows {', '.join(removed)}"] if removed else [])
        changes.append(Change(pointer + "/values", f"{label} " + ("; ".join(parts) or "values reordered"),
                              True, None, old_values, new_values))
    if canonical_json(a.get("default")) != canonical_json(b.get("default")) or ("default" in a) != ("default" in b):
        changes.append(Change(pointer + "/default", f"{label} default changed from {_plain(a.get('default'))} "
                              f"to {_plain(b.get('default'))}", True, None, a.get("default"), b.get("default")))
    if a.get("description") != b.get("description"):
        changes.append(Change(pointer + "/description", f"{label} description reworded", False, None,
                              a.get("description"), b.get("description")))
    return changes


def _method(old: Policy, new: Policy) -> list[Change]:
    changes: list[Change] = []
    if old.method != new.method:
        changes.append(Change("/method", f"allocation method changed from {_word(old.method)} to {_word(new.method)}",
                              True, None, old.method, new.method))
    before, after = _weight_words(old), _weight_words(new)
    if before != after and new.method == "pro_rata":
        changes.append(Change("/pro_rata/weight", f"pro-rata weight changed from {before} to {after}",
                              True, None, old.data.get("pro_rata", {}).get("weight"),
                              new.data.get("pro_rata", {}).get("weight")))
    changes.extend(_priority(old, new))
    if old.unlimited_first != new.unlimited_first and new.method == "price_time":
        first = "before" if new.unlimited_first else "after"
        changes.append(Change("/price_time/unlimited_first", f"orders without a limit price now rank {first} limit orders",
                              True, None, old.unlimited_first, new.unlimited_first))
    return changes


def _weight_words(policy: Policy) -> str:
    if policy.equal_weights:
        return "equal shares (the same quantity to every account)"
    return _code(policy.weight.source if policy.weight else "intended quantity")


def _priority(old: Policy, new: Policy) -> list[Change]:
    a = old.priority.source if old.priority else None
    b = new.priority.source if new.priority else None
    if a == b or new.method != "pro_rata":
        return []
    if a is None:
        text = f"accounts are now served in priority tiers by {_code(b)}: tier 1 filled first, pro-rata within a tier"
    elif b is None:
        text = f"priority tiers (by {_code(a)}) are removed: every account shares the fill pro-rata"
    else:
        text = f"priority tiers now by {_code(b)} (were by {_code(a)})"
    return [Change("/pro_rata/priority", text, True, None, a, b)]


def _odd_lots(old: Policy, new: Policy) -> list[Change]:
    a = old.odd_lot_recipient.describe() if old.odd_lot_recipient else None
    b = new.odd_lot_recipient.describe() if new.odd_lot_recipient else None
    if a == b:
        return []
    if a is None:
        text = f"the odd quantity (less than a lot) now goes to a designated account: {_code(b)}"
    elif b is None:
        text = f"the odd quantity no longer goes to a designated account ({_code(a)}): the remainder rule places it"
    else:
        text = f"the odd-lot recipient changed from {_code(a)} to {_code(b)}"
    return [Change("/odd_lots/recipient", text, True, None, old.data.get("odd_lots"), new.data.get("odd_lots"))]


def _rotation(old: Policy, new: Policy) -> list[Change]:
    a, b = old.data.get("rotation"), new.data.get("rotation")
    if a == b:
        return []
    if a is None or b is None:
        text = "a rotation is introduced" if a is None else "the rotation is removed"
        return [Change("/rotation", text, True, None, a, b)]
    changes: list[Change] = []
    seq_a, seq_b = a.get("sequence") or [], b.get("sequence") or []
    if seq_a != seq_b:
        added = [x for x in seq_b if x not in seq_a]
        removed = [x for x in seq_a if x not in seq_b]
        parts = ([f"added {', '.join(added)}"] if added else []) + ([f"removed {', '.join(removed)}"] if removed else [])
        if not parts:
            parts = [f"reordered to {', '.join(seq_b)}"]
        changes.append(Change("/rotation/sequence", "rotation sequence: " + "; ".join(parts), True, None, seq_a, seq_b))
    for key, label in (("order_by", "rotation order"), ("group", "rotation groups")):
        if a.get(key) != b.get(key):
            changes.append(Change(f"/rotation/{key}", f"{label} changed from {_code(a.get(key))} to {_code(b.get(key))}",
                                  True, None, a.get(key), b.get(key)))
    if a.get("advance", "per_order") != b.get("advance", "per_order"):
        changes.append(Change("/rotation/advance", f"the rotation now advances {_word(b.get('advance', 'per_order'))} "
                              f"(was {_word(a.get('advance', 'per_order'))})", True, None, a.get("advance"), b.get("advance")))
    return changes


def _rounding(old: Policy, new: Policy) -> list[Change]:
    changes: list[Change] = []
    if old.lot != new.lot:
        changes.append(Change("/rounding/lot", f"round lot {_direction(old.lot, new.lot)} from {_number(old.lot)} to "
                              f"{_number(new.lot)} shares", True, None, old.lot, new.lot))
    if old.rounding_method != new.rounding_method:
        changes.append(Change("/rounding/method", f"rounding method changed from {_word(old.rounding_method)} to "
                              f"{_word(new.rounding_method)}", True, None, old.rounding_method, new.rounding_method))
    if old.remainder != new.remainder and new.rounding_method != "quota" and old.fairness is new.fairness is None:
        changes.append(Change("/rounding/remainder", f"the odd quantity (less than a lot) now goes "
                              f"{_REMAINDER[new.remainder]} (went {_REMAINDER[old.remainder]})", True, None,
                              old.remainder, new.remainder))
    if old.tie_break != new.tie_break:
        changes.append(Change("/rounding/tie_break", f"ties are now broken by {_word(new.tie_break)} (was "
                              f"{_word(old.tie_break)})", True, None, old.tie_break, new.tie_break))
    return changes


def _fairness(old: Policy, new: Policy) -> list[Change]:
    """``fairness``: whether the rounding is kept fair over the orders of a group, and per which groups."""
    a, b = old.data.get("fairness"), new.data.get("fairness")
    if a == b:
        return []
    def groups(spec: Any) -> str:
        group = spec.get("group")
        return "per fairness group " + _code(group) if group else "over all the policy's orders"

    if a is None:
        lots = "the spare lots of the tier the fill runs short in" if new.priority else "each order's spare lots"
        odd = ("" if new.odd_lot_recipient else " and odd quantity")
        designated = (" (the odd quantity stays the designated recipient's and counts as no advantage)"
                      if new.odd_lot_recipient else "")
        return [Change("/fairness", f"rounding is now kept fair over time: {lots}{odd} go to the accounts with the "
                       "lowest cumulative rounding advantage (allocated minus exact share), counted "
                       f"{groups(b)}{designated}", True, None, a, b)]
    if b is None:
        odd = (f"to the designated recipient (else {_REMAINDER[new.remainder]})" if new.odd_lot_recipient
               else _REMAINDER[new.remainder])
        return [Change("/fairness", "rounding is no longer kept fair over time: spare lots go by largest remainder "
                       f"and the odd quantity {odd}, whatever earlier orders gave each account", True, None, a, b)]
    return [Change("/fairness/group", f"cumulative rounding advantages are now counted {groups(b)} (were counted "
                   f"{groups(a)}); each new group starts with every account at 0", True, None,
                   a.get("group"), b.get("group"))]


def _price_and_caps(old: Policy, new: Policy) -> list[Change]:
    changes: list[Change] = []
    if old.price_precision != new.price_precision:
        changes.append(Change("/price/precision", f"prices are now shown to {new.price_precision} decimal places (was "
                              f"{old.price_precision})", False, None, old.price_precision, new.price_precision))
    if old.price_rounding != new.price_rounding:
        changes.append(Change("/price/rounding", f"shown prices now round {_word(new.price_rounding)} (was "
                              f"{_word(old.price_rounding)})", False, None, old.price_rounding, new.price_rounding))
    if old.allow_above_intended != new.allow_above_intended:
        text = ("accounts may now receive more than their intended quantity" if new.allow_above_intended
                else "accounts may no longer receive more than their intended quantity")
        changes.append(Change("/caps/allow_above_intended", text, True, None, old.allow_above_intended,
                              new.allow_above_intended))
    return changes


def _minimum_words(policy: Policy) -> str:
    minimum = policy.minimum
    assert minimum is not None
    worth = f"a value of {_number(minimum.value)} at the average price" if minimum.value is not None else ""
    if minimum.kind == "value":
        return worth
    if minimum.kind == "absolute":
        words = f"{_number(minimum.absolute)} shares"
    elif minimum.kind == "relative_to_intended":
        assert minimum.relative is not None
        words = f"{_percent(minimum.relative)} of the intended quantity"
    else:
        assert minimum.expression is not None
        words = _code(minimum.expression.source)
    return f"{words} and {worth}" if worth else words


def _minimum(old: Policy, new: Policy) -> list[Change]:
    a, b = old.minimum, new.minimum
    if a is None and b is None:
        return []
    if a is None or b is None:
        text = (f"a minimum allocation of {_minimum_words(new)} is introduced" if a is None
                else f"the minimum allocation ({_minimum_words(old)}) is removed")
        return [Change("/minimum", text, True, None, old.data.get("minimum"), new.data.get("minimum"))]
    changes: list[Change] = []
    if (a.kind, a.absolute, a.relative, a.value) != (b.kind, b.absolute, b.relative, b.value) or (
            a.expression and b.expression and a.expression.source != b.expression.source):
        value_a = a.absolute if a.kind == "absolute" else a.relative if a.kind == "relative_to_intended" else None
        value_b = b.absolute if b.kind == "absolute" else b.relative if b.kind == "relative_to_intended" else None
        if a.kind == b.kind == "value":
            value_a, value_b = a.value, b.value
        same_unit = (a.kind == b.kind and value_a is not None and value_b is not None
                     and (a.kind == "value" or a.value == b.value))
        verb = _direction(value_a, value_b) if same_unit else "changed"
        before = _number(value_a) if same_unit and a.kind == "absolute" else _minimum_words(old)
        if same_unit and a.kind == "value":
            before = f"a value of {_number(value_a)}"
        changes.append(Change("/minimum", f"minimum allocation {verb} from {before} to {_minimum_words(new)}",
                              True, None, old.data.get("minimum"), new.data.get("minimum")))
    if a.denied != b.denied:
        words = {"pro_rata": "re-spread pro-rata", "rotation": "handed on in rotation order"}
        changes.append(Change("/minimum/denied", f"shares of accounts below the minimum are now {words[b.denied]} "
                              f"(were {words[a.denied]})", True, None, a.denied, b.denied))
    return changes


def _rule_words(spec: dict[str, Any]) -> str:
    text = f"{_ACTION_VERBS.get(spec['action'], spec['action'])} where {_code(spec['when'])}"
    if spec["action"] == "cap":
        text = f"caps at {_code(_plain(spec.get('quantity')))} accounts where {_code(spec['when'])}"
    return text + (" (CCO review)" if spec.get("review") else "")


def _rules(old: Policy, new: Policy) -> list[Change]:
    before = {spec["id"]: spec for spec in old.data.get("rules", [])}
    after = {spec["id"]: spec for spec in new.data.get("rules", [])}
    changes: list[Change] = []
    for rule_id in list(before) + [r for r in after if r not in before]:
        pointer, label = f"/rules/{rule_id}", f"rule {_code(rule_id)}"
        a, b = before.get(rule_id), after.get(rule_id)
        if a is None:
            assert b is not None
            changes.append(Change(pointer, f"new {label} {_rule_words(b)}", b["action"] != "flag", rule_id, None, b))
        elif b is None:
            changes.append(Change(pointer, f"{label} removed (it {_rule_words(a)})", a["action"] != "flag", rule_id, a, None))
        else:
            changes.extend(_rule_change(pointer, label, rule_id, a, b))
    order_before = [r for r in before if r in after]
    order_after = [r for r in after if r in before]
    if order_before != order_after:
        changes.append(Change("/rules", f"rules reordered: {', '.join(order_after)}", False, None, order_before, order_after))
    return changes


def _rule_change(pointer: str, label: str, rule_id: str, a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    changes: list[Change] = []
    quantities = "flag" not in (a["action"], b["action"])  # a flag records an exception, never moves a share
    if a["action"] != b["action"]:
        changes.append(Change(pointer + "/action", f"{label} now {_ACTION_VERBS[b['action']]} (it "
                              f"{_ACTION_VERBS[a['action']]})", True, rule_id, a["action"], b["action"]))
    if a["when"] != b["when"]:
        subject = _ACTION_VERBS.get(b["action"], b["action"])
        changes.append(Change(pointer + "/when", f"{label} {describe_condition(a['when'], b['when'], subject)}",
                              quantities, rule_id, a["when"], b["when"]))
    qa, qb = a.get("quantity"), b.get("quantity")
    if canonical_json(qa) != canonical_json(qb):
        numeric = all(isinstance(q, (int, Decimal)) for q in (qa, qb))
        verb = _direction(qa, qb) if numeric else "changed"
        changes.append(Change(pointer + "/quantity", f"{label} cap {verb} from {_code(_plain(qa))} to {_code(_plain(qb))}",
                              True, rule_id, qa, qb))
    if bool(a.get("review", False)) != bool(b.get("review", False)):
        text = "now requires CCO review" if b.get("review") else "no longer requires CCO review"
        changes.append(Change(pointer + "/review", f"{label} {text}", False, rule_id, a.get("review"), b.get("review")))
    if a["reason"] != b["reason"]:
        changes.append(Change(pointer + "/reason", f"{label} reason reworded", False, rule_id, a["reason"], b["reason"]))
    return changes


def _overrides_and_deadline(old: Policy, new: Policy) -> list[Change]:
    changes: list[Change] = []
    before, after = dict(old.reason_code_descriptions), dict(new.reason_code_descriptions)
    for code in sorted(set(before) | set(after)):
        pointer = f"/overrides/reason_codes/{code}"
        if code not in before:
            changes.append(Change(pointer, f"new override reason code {_code(code)}: {after[code]}", False, None, None, after[code]))
        elif code not in after:
            changes.append(Change(pointer, f"override reason code {_code(code)} removed", False, None, before[code], None))
        elif before[code] != after[code]:
            changes.append(Change(pointer, f"override reason code {_code(code)} reworded", False, None, before[code], after[code]))
    a, b = old.data.get("deadline"), new.data.get("deadline")
    if canonical_json(a) != canonical_json(b):
        def words(deadline: Any) -> str:
            if deadline is None:
                return "none"
            return (f"{deadline.time.isoformat()} {deadline.timezone}, {deadline.days_after_trade_date} day(s) "
                    "after trade date")
        changes.append(Change("/deadline", f"allocation deadline changed from {words(old.deadline)} to "
                              f"{words(new.deadline)}", False, None, a, b))
    return changes


def _costs_words(costs: Costs | None) -> str:
    if costs is None:
        return "not shared by the policy"
    words = [f"shared {COST_BASES[costs.default.basis]}" + (f" x account.{costs.default.schedule}"
                                                            if costs.default.schedule else "")]
    words += [f"{name} {COST_BASES[share.basis]}" + (f" x account.{share.schedule}" if share.schedule else "")
              for name, share in costs.by_cost]
    words.append(f"to {costs.precision} decimal(s), the cents left {RESIDUALS[costs.residual].words}")
    return "; ".join(words)


def _pricing(old: Policy, new: Policy) -> list[Change]:
    """At which prices accounts receive their shares and how commissions and fees are shared."""
    changes: list[Change] = []
    a, b = old.pricing, new.pricing
    if a.allocation != b.allocation:
        changes.append(Change("/price/allocation", f"price allocation is now {b.allocation}: {PRICE_ALLOCATIONS[b.allocation]} "
                              f"(was {a.allocation})", False, None, a.allocation, b.allocation))
    if a.by_broker != b.by_broker:
        text = ("each executing broker's fills are now allocated and priced apart" if b.by_broker
                else "the fills of every broker are now allocated and priced together")
        changes.append(Change("/price/by_broker", text, False, None, a.by_broker, b.by_broker))
    if a.costs != b.costs:
        changes.append(Change("/costs", f"commissions and fees are now {_costs_words(b.costs)} (were "
                              f"{_costs_words(a.costs)})", False, None, old.data.get("costs"), new.data.get("costs")))
    return changes


_SECTIONS: tuple[Differ, ...] = (_identity, _governance, _attributes, _method, _rotation, _rounding, _odd_lots,
                                 _fairness, _price_and_caps, _minimum, _rules, _overrides_and_deadline, _pricing)


def money_changes(diff: PolicyDiff) -> tuple[Change, ...]:
    """The changes that can move an account's money without moving its quantity: prices and costs."""
    return tuple(change for change in diff.changes if change.pointer.startswith(("/price", "/costs")))


def diff_policies(old: Policy, new: Policy, *, old_note: str | None = None, new_note: str | None = None) -> PolicyDiff:
    """The semantic diff of two compiled policy versions (``old`` → ``new``); notes say where each came from."""
    changes = [change for section in _SECTIONS for change in section(old, new)]
    if old.version != new.version:
        changes.append(Change("/version", f"version {old.version} → {new.version}", False, None, old.version, new.version))
    described = {change.pointer.split("/")[1] for change in changes if change.pointer}
    for key in sorted(set(old.data) | set(new.data)):
        a, b = old.data.get(key), new.data.get(key)
        if key not in described and canonical_json(a) != canonical_json(b):
            changes.append(Change(f"/{key}", f"section {_code(key)} changed: {_code(canonical_json(a))} → "
                                  f"{_code(canonical_json(b))}", True, None, a, b))
    return PolicyDiff(old, new, tuple(changes), old_note, new_note)
