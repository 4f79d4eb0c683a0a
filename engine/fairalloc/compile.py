"""Stages 3–5 — parse, check and compile a structurally valid policy into a :class:`Policy` plan.

:func:`compile_policy` first checks the structure against the JSON Schema (``schema.py``), the one
check that stops compilation; then the passes of :data:`PASSES` run in order, each collecting
diagnostics rather than stopping at the first:

1. ``attributes`` — declared account/security attributes become typed scopes for expressions;
2. ``selection``  — ``applies_to``, checked against the order alone;
3. ``method``     — weights, rotation and rounding of the allocation method, and the sections the
   method does not use;
4. ``thresholds`` — the minimum allocation (which may hand denied shares to the rotation);
5. ``exceptions`` — rules, override reason codes, the deadline.

Every expression is parsed, name- and type-checked against the scope of the place it stands in
(``applies_to`` sees no account; an ``exclude`` rule sees no allocation). If pass 1 finds a
problem, the rest still run with what was declared correctly, so the author sees as many problems
as possible at once; they are reported sorted by location.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from collections.abc import Callable
from typing import Any

from fairalloc.digest import sha256_hex
from fairalloc.errors import Code, Diagnostic, PolicyError, suggest
from fairalloc.expressions import CompiledExpression, Scope, Type, ast, compile_expression
from fairalloc.expressions.grammar import KEYWORDS
from fairalloc.expressions.ast import Expr
from fairalloc.load import Path, SourceDocument
from fairalloc.numbers import EXACT, decimal_text
from fairalloc.options import (
    CME_553,
    Action,
    CostBasis,
    Denied,
    Method,
    MinimumKind,
    OverTime,
    PriceAllocation,
    Remainder,
    Residual,
    RoundingMethod,
    TieBreak,
)
from fairalloc.plan import (
    Attribute,
    CostShare,
    Costs,
    Deadline,
    Fairness,
    Minimum,
    OddLotRecipient,
    Policy,
    Pricing,
    Rotation,
    Rule,
)
from fairalloc.schema import check_policy_structure

_KIND_TYPES: dict[str, Type] = {
    "string": Type.STRING,
    "number": Type.NUMBER,
    "boolean": Type.BOOLEAN,
    "date": Type.DATE,
    "list": Type.list_of(Type.STRING),
}

# Which context roots each place in a policy may read (docs/policy-language.md, "Contexts").
ORDER_ROOTS = frozenset({"order", "security", "statement", "fill"})
ACCOUNT_ROOTS = ORDER_ROOTS | {"account"}
ALLOCATION_ROOTS = ACCOUNT_ROOTS | {"allocation"}


def canonical_json(value: Any) -> str:
    """The canonical text of a policy's data: sorted keys, no white space, exact numbers.

    The digest is taken over this text, so comments, key order, quoting and layout of the YAML
    file do not change a policy's identity, while any change of meaning does.
    """
    if isinstance(value, dict):
        items = ",".join(
            f"{canonical_json(str(key))}:{canonical_json(item)}" for key, item in sorted(value.items())
        )
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, dt.date):
        return canonical_json(value.isoformat())
    text = str(value)
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # nothing to escape (a printable text has no control character)
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def digest_of(canonical: str) -> str:
    return "sha256:" + sha256_hex(canonical)


class _Compiler:
    """Holds the document and the diagnostics while the passes run."""

    def __init__(self, doc: SourceDocument) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.diagnostics: list[Diagnostic] = []
        self.account_attributes: dict[str, Attribute] = {}
        self.security_attributes: dict[str, Attribute] = {}
        self.applies_to: CompiledExpression | None = None
        self.weight_expression: CompiledExpression | None = None
        self.priority_expression: CompiledExpression | None = None
        self.odd_lot_plan: OddLotRecipient | None = None
        self.rotation_plan: Rotation | None = None
        self.fairness_plan: Fairness | None = None
        self.minimum_plan: Minimum | None = None
        self.rule_plans: tuple[Rule, ...] = ()
        self.reason_code_plan: tuple[tuple[str, str], ...] = ()
        self.deadline_plan: Deadline | None = None
        self.pricing_plan = Pricing()

    # -- helpers ---------------------------------------------------------------------------
    def error(self, code: str, message: str, path: Path, hint: str | None = None, *, key: bool = False) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.doc.locate(path, key=key), hint))

    def get(self, *path: str | int, default: Any = None) -> Any:
        node: Any = self.data
        for part in path:
            if isinstance(node, dict) and isinstance(part, str):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                return default
            if node is None:
                return default
        return node

    def expression(self, path: Path, roots: frozenset[str], expect: Type) -> CompiledExpression | None:
        source = self.get(*path)
        if not isinstance(source, str):
            return None
        scope = Scope.build(
            roots=set(roots),
            account_attributes={a.name: a.type for a in self.account_attributes.values()},
            security_attributes={a.name: a.type for a in self.security_attributes.values()},
        )
        try:
            compiled = compile_expression(
                source,
                scope=scope,
                expect=expect,
                locate=lambda offset: self.doc.locate_in_scalar(path, offset),
            )
        except PolicyError as error:
            self.diagnostics.extend(error.diagnostics)
            return None
        for offset, path_text, literal, values in _impossible_values(compiled.tree, self.declared_values()):
            close = suggest(literal, values)
            self.diagnostics.append(Diagnostic(
                Code.EXPR_IMPOSSIBLE_VALUE,
                f"'{path_text}' is never {literal!r}: the policy declares its values as {', '.join(values)}",
                self.doc.locate_in_scalar(path, offset),
                f"did you mean {close!r}?" if close else "compare with one of the declared values",
            ))
        return compiled

    def declared_values(self) -> dict[str, tuple[str, ...]]:
        """Attributes with a fixed set of values, by dotted path (``account.fee_basis``)."""
        found: dict[str, tuple[str, ...]] = {}
        for owner, table in (("account", self.account_attributes), ("security", self.security_attributes)):
            for attribute in table.values():
                if attribute.values is not None:
                    found[f"{owner}.{attribute.name}"] = attribute.values
        return found

    def number_or_expression(self, path: Path, roots: frozenset[str]) -> CompiledExpression | Decimal | None:
        value = self.get(*path)
        if isinstance(value, bool):
            self.error(Code.POLICY_TYPE, "expected a number or an expression", path)
            return None
        if isinstance(value, (int, Decimal)):
            return Decimal(value)
        return self.expression(path, roots, Type.NUMBER)

    # -- pass 1 ----------------------------------------------------------------------------
    def attributes(self) -> None:
        builtins = {
            "account": {"id", "intended", "limit_price", "received_at"},
            "security": {"symbol"},
        }
        for owner, table in (("account", self.account_attributes), ("security", self.security_attributes)):
            declared = self.get("attributes", owner, default={})
            for name, spec in declared.items():
                path: Path = ("attributes", owner, name)
                if name in builtins[owner]:
                    self.error(
                        Code.ATTRIBUTE_SHADOWS_FIELD,
                        f"attribute '{name}' would hide the built-in field '{owner}.{name}'",
                        path,
                        "rename the attribute",
                        key=True,
                    )
                    continue
                if name in KEYWORDS:
                    self.error(
                        Code.ATTRIBUTE_RESERVED_WORD,
                        f"attribute '{name}' is a reserved word of the expression language",
                        path,
                        "rename the attribute; expressions could not name it",
                        key=True,
                    )
                    continue
                kind = spec["type"]
                values = tuple(spec["values"]) if "values" in spec else None
                if values is not None and kind != "string":
                    self.error(Code.ATTRIBUTE_VALUES, "'values' is only allowed for string attributes", path + ("values",), key=True)
                has_default = "default" in spec
                default = spec.get("default")
                if has_default and not _matches_kind(default, kind):
                    self.error(
                        Code.ATTRIBUTE_DEFAULT,
                        f"default of '{owner}.{name}' must be a {kind}, not {default!r}",
                        path + ("default",),
                    )
                elif has_default and values is not None and default not in values:
                    self.error(
                        Code.ATTRIBUTE_DEFAULT,
                        f"default {default!r} of '{owner}.{name}' is not one of its values",
                        path + ("default",),
                        f"use one of: {', '.join(values)}",
                    )
                table[name] = Attribute(name, _KIND_TYPES[kind], kind, values, default, has_default)

    # -- passes 2 and 3 --------------------------------------------------------------------
    # -- passes 2 to 6 (see PASSES) ---------------------------------------------------------
    def selection(self) -> None:
        """Which orders the policy governs: ``applies_to``, read against the order alone."""
        self.applies_to = self.expression(("applies_to",), ORDER_ROOTS, Type.BOOLEAN)

    def method(self) -> None:
        """The allocation method and what it needs: weights, rotation, rounding."""
        method = self.data["method"]
        self.weight_expression = self.weight(method)
        if method == "pro_rata":
            self.priority_expression = self.expression(("pro_rata", "priority"), ACCOUNT_ROOTS, Type.NUMBER)
        self.odd_lot_plan = self.odd_lots(method)
        self.rotation_plan = self.rotation(method)
        rounding = self.data["rounding"]
        rounding_method = rounding.get("method", "largest_remainder")
        remainder = rounding.get("remainder", "largest_remainder")
        if rounding_method == "quota" and "remainder" in rounding:
            self.error(
                Code.REMAINDER_WITH_QUOTA,
                "'remainder' cannot be set with the quota method",
                ("rounding", "remainder"),
                "the quota method gives the odd lot to the account next in line, which keeps it fill-monotone",
                key=True,
            )
        if remainder == "rotation" and self.rotation_plan is None:
            self.error(
                Code.REMAINDER_NEEDS_ROTATION,
                "'remainder: rotation' needs a 'rotation' section saying the order",
                ("rounding", "remainder"),
                "add 'rotation: {order_by: account.id}' or an explicit 'sequence'",
            )
        self.fairness_plan = self.fairness(method, rounding_method, remainder)
        if "price_time" in self.data and method != "price_time":
            self.error(Code.SECTION_UNUSED, f"'price_time' section is unused: this policy allocates by {method}",
                       ("price_time",), "remove it, or change 'method'", key=True)
        if method != "pro_rata" and ("method" in rounding or "remainder" in rounding or "tie_break" in rounding):
            which = next(key for key in ("method", "remainder", "tie_break") if key in rounding)
            self.error(
                Code.ROUNDING_UNUSED,
                f"'rounding.{which}' only applies to pro_rata; this policy allocates by {method}",
                ("rounding", which),
                "remove it, or change 'method'",
                key=True,
            )

    def thresholds(self) -> None:
        """The minimum allocation, which needs the rotation (``denied: rotation``) and the caps."""
        allow_above = bool(self.get("caps", "allow_above_intended", default=False))
        self.minimum_plan = self.minimum(allow_above, self.rotation_plan)
        if self.data["method"] == "price_time" and self.minimum_plan is not None:
            self.error(
                Code.MINIMUM_WITH_PRICE_TIME,
                "minimum thresholds do not apply to price/time allocation",
                ("minimum",),
                "each fill goes to the best-ranked eligible account; remove 'minimum'",
                key=True,
            )

    def exceptions(self) -> None:
        """Rules, override reason codes and the deadline."""
        self.rule_plans = self.rules()
        self.reason_code_plan = self.reason_codes()
        self.deadline_plan = self.deadline()

    def plan(self) -> Policy:
        """The immutable plan, once every pass has run without a diagnostic."""
        rounding = self.data["rounding"]
        price = self.data.get("price", {})
        canonical = canonical_json(self.data)
        return Policy(
            id=self.data["id"],
            version=self.data["version"],
            effective_date=dt.date.fromisoformat(str(self.data["effective"])),
            owner=self.data["owner"],
            description=self.data.get("description", ""),
            digest=digest_of(canonical),
            canonical=canonical,
            source=self.doc.text,
            file=self.doc.file,
            applies_to=self.applies_to,
            account_attributes=tuple(self.account_attributes.values()),
            security_attributes=tuple(self.security_attributes.values()),
            method=Method(self.data["method"]),
            weight=self.weight_expression,
            rotation=self.rotation_plan,
            unlimited_first=bool(self.get("price_time", "unlimited_first", default=True)),
            lot=Decimal(rounding["lot"]),
            rounding_method=RoundingMethod(rounding.get("method", "largest_remainder")),
            remainder=Remainder(rounding.get("remainder", "largest_remainder")),
            tie_break=TieBreak(rounding.get("tie_break", "account_id")),
            price_precision=int(price.get("precision", 6)),
            price_rounding=price.get("rounding", "half_even"),
            allow_above_intended=bool(self.get("caps", "allow_above_intended", default=False)),
            minimum=self.minimum_plan,
            rules=self.rule_plans,
            reason_code_descriptions=self.reason_code_plan,
            deadline=self.deadline_plan,
            pricing=self.pricing_plan,
            equal_weights=self.get("pro_rata", "weight") == "equal",
            priority=self.priority_expression,
            odd_lot_recipient=self.odd_lot_plan,
            data=self.data,
            fairness=self.fairness_plan,
        )

    def weight(self, method: str) -> CompiledExpression | None:
        if "pro_rata" in self.data and method != "pro_rata":
            self.error(Code.SECTION_UNUSED, f"'pro_rata' section is unused: this policy allocates by {method}",
                       ("pro_rata",), "remove it, or change 'method'", key=True)
            return None
        weight = self.get("pro_rata", "weight", default="intended")
        if weight in ("intended", "equal"):
            return None
        return self.expression(("pro_rata", "weight"), ACCOUNT_ROOTS, Type.NUMBER)

    def odd_lots(self, method: str) -> OddLotRecipient | None:
        """``odd_lots.recipient``: a pro-rata policy's designated taker of the odd quantity."""
        recipient = self.get("odd_lots", "recipient")
        if recipient is None:
            return None
        if method != "pro_rata":
            self.error(Code.SECTION_UNUSED, f"'odd_lots' section is unused: this policy allocates by {method}",
                       ("odd_lots",), "remove it, or change 'method'", key=True)
            return None
        if self.get("rounding", "method") == "quota":
            self.error(
                Code.ODD_LOTS_WITH_QUOTA,
                "'odd_lots' cannot be set with the quota method",
                ("odd_lots",),
                "the quota method gives the odd quantity to the account next in line, which keeps it fill-monotone",
                key=True,
            )
            return None
        if isinstance(recipient, str):
            return OddLotRecipient(recipient, None)
        chosen = self.expression(("odd_lots", "recipient", "expression"), ORDER_ROOTS, Type.STRING)
        return None if chosen is None else OddLotRecipient(None, chosen)

    def fairness(self, method: str, rounding_method: str, remainder: str) -> Fairness | None:
        """``fairness:``: it decides who takes the spare lots and the odd quantity, so it needs the
        largest remainder method's floor-then-spare-lots arithmetic and no other remainder rule;
        and the advantage it counts is what the rounding gave, so no rotation may move shares after.
        Priority tiers and an odd-lot recipient combine with it (docs/rounding.md): it orders the
        spare lots of the tier that is partly filled, and those of the whole lots beside the
        recipient's odd quantity."""
        spec = self.get("fairness")
        if spec is None:
            return None
        conflict: tuple[str, Path] | None = None
        if method != "pro_rata":
            conflict = (f"this policy allocates by {method}, which does not round", ("method",))
        elif rounding_method != "largest_remainder":
            conflict = ("it needs 'rounding.method: largest_remainder'", ("rounding", "method"))
        elif "remainder" in self.data["rounding"]:
            conflict = ("it decides who takes the odd quantity, so 'rounding.remainder' cannot be set",
                        ("rounding", "remainder"))
        elif self.get("minimum", "denied") == "rotation":
            conflict = ("'denied: rotation' moves shares after the rounding it keeps fair", ("minimum", "denied"))
        if conflict is not None:
            self.error(Code.FAIRNESS_ROUNDING, f"'fairness' cannot be used here: {conflict[0]}", conflict[1],
                       "fairness over time applies to pro-rata by the largest remainder method; see docs/rounding.md")
            return None
        group = self.expression(("fairness", "group"), frozenset({"order", "security"}), Type.STRING)
        return Fairness(OverTime(spec["over_time"]), group)

    def rotation(self, method: str) -> Rotation | None:
        spec = self.get("rotation")
        uses_rotation = (
            method == "rotation"
            or self.get("rounding", "remainder") == "rotation"
            or self.get("minimum", "denied") == "rotation"
        )
        if spec is None:
            if method == "rotation":
                self.error(Code.ROTATION_MISSING, "method 'rotation' needs a 'rotation' section", ("method",),
                           "add 'rotation:' with a 'sequence' of account ids or an 'order_by' expression")
            elif self.get("minimum", "denied") == "rotation":
                self.error(Code.ROTATION_MISSING, "'denied: rotation' needs a 'rotation' section saying the order",
                           ("minimum", "denied"),
                           "add 'rotation:' with a 'sequence' of account ids or an 'order_by' expression")
            return None
        if not uses_rotation:
            self.error(Code.SECTION_UNUSED, "'rotation' section is unused by this policy", ("rotation",),
                       "remove it, or use it: method: rotation, remainder: rotation or denied: rotation", key=True)
            return None
        sequence = spec.get("sequence")
        if (sequence is None) == ("order_by" not in spec):
            self.error(Code.ROTATION_ORDER, "'rotation' needs exactly one of 'sequence' or 'order_by'", ("rotation",),
                       "list the account ids in 'sequence', or give an 'order_by' expression over the account")
        if sequence is not None:
            seen: set[str] = set()
            for index, account in enumerate(sequence):
                if account in seen:
                    self.error(Code.ROTATION_DUPLICATE, f"account '{account}' appears twice in the rotation sequence",
                               ("rotation", "sequence", index), "each account may lead once per cycle")
                seen.add(account)
        order_by = self.expression(("rotation", "order_by"), ACCOUNT_ROOTS - {"fill"}, Type.ANY)
        if order_by is not None and order_by.type not in (Type.STRING, Type.NUMBER, Type.DATE):
            self.error(Code.ROTATION_ORDER_TYPE, f"'order_by' must give a string, number or date, not {order_by.type}",
                       ("rotation", "order_by"))
        group = self.expression(("rotation", "group"), frozenset({"order", "security"}), Type.STRING)
        return Rotation(
            tuple(sequence) if sequence is not None else None,
            order_by,
            spec.get("advance", "per_order"),
            group,
        )

    def minimum(self, allow_above: bool, rotation: Rotation | None) -> Minimum | None:
        spec = self.get("minimum")
        if spec is None:
            return None
        denied = Denied(spec.get("denied", "pro_rata"))
        value = Decimal(spec["value"]) if "value" in spec else None
        if "absolute" in spec:
            return Minimum(MinimumKind.ABSOLUTE, Decimal(spec["absolute"]), None, None, denied, value)
        if "relative_to_intended" in spec:
            relative = _fraction_value(spec["relative_to_intended"])
            path: Path = ("minimum", "relative_to_intended")
            if relative is None or relative <= 0:
                self.error(Code.MINIMUM_RELATIVE, "'relative_to_intended' must be a positive fraction such as 10% or 0.1",
                           path, "write a percentage like '10%' or a decimal like 0.1")
                return None
            if relative > 1 and not allow_above:
                self.error(
                    Code.THRESHOLD_UNREACHABLE,
                    f"a minimum of {relative} x intended is above every possible allocation",
                    path,
                    "allocations never exceed the intended quantity unless caps.allow_above_intended is true",
                )
                return None
            return Minimum(MinimumKind.RELATIVE_TO_INTENDED, None, relative, None, denied, value)
        if "expression" not in spec:
            return Minimum(MinimumKind.VALUE, None, None, None, denied, value)
        expression = self.expression(("minimum", "expression"), ACCOUNT_ROOTS, Type.NUMBER)
        if expression is None:
            return None
        return Minimum(MinimumKind.EXPRESSION, None, None, expression, denied, value)

    def rules(self) -> tuple[Rule, ...]:
        compiled: list[Rule] = []
        seen: dict[str, int] = {}
        for index, spec in enumerate(self.get("rules", default=[])):
            path: Path = ("rules", index)
            rule_id = spec["id"]
            if rule_id in seen:
                self.error(Code.RULE_DUPLICATE_ID, f"rule id '{rule_id}' is used twice (first at rule {seen[rule_id] + 1})",
                           path + ("id",), "give every rule its own id: the ledger and reports cite it")
            seen.setdefault(rule_id, index)
            action = spec["action"]
            roots = ALLOCATION_ROOTS if action in ("zero", "flag") else ACCOUNT_ROOTS
            when = self.expression(path + ("when",), roots, Type.BOOLEAN)
            if when is not None and not when.names:
                value = when.evaluate()
                self.error(
                    Code.RULE_CONSTANT,
                    f"rule '{rule_id}' {'always' if value else 'never'} fires: its condition reads no data",
                    path + ("when",),
                    "a rule's condition must depend on the order, the security or the account",
                )
            quantity: CompiledExpression | Decimal | None = None
            if action == "cap":
                if "quantity" not in spec:
                    self.error(Code.RULE_CAP_QUANTITY, f"rule '{rule_id}' caps but says no 'quantity'", path,
                               "add 'quantity:' with a number or an expression")
                else:
                    quantity = self.number_or_expression(path + ("quantity",), ACCOUNT_ROOTS)
                    if isinstance(quantity, Decimal) and quantity < 0:
                        self.error(Code.RULE_CAP_QUANTITY, "a cap cannot be negative", path + ("quantity",))
            elif "quantity" in spec:
                self.error(Code.RULE_QUANTITY_UNUSED, f"'quantity' only applies to action 'cap', not '{action}'",
                           path + ("quantity",), key=True)
            if when is not None:
                compiled.append(Rule(rule_id, when, Action(action), quantity, " ".join(spec["reason"].split()),
                                     bool(spec.get("review", False)), index))
        return tuple(compiled)

    def reason_codes(self) -> tuple[tuple[str, str], ...]:
        codes: list[tuple[str, str]] = []
        seen: set[str] = set()
        for index, spec in enumerate(self.get("overrides", "reason_codes", default=[])):
            if spec["code"] in seen:
                self.error(Code.REASON_CODE_DUPLICATE, f"reason code '{spec['code']}' is listed twice",
                           ("overrides", "reason_codes", index, "code"))
            seen.add(spec["code"])
            codes.append((spec["code"], spec["description"]))
        return tuple(sorted(codes))

    def deadline(self) -> Deadline | None:
        spec = self.get("deadline")
        if spec is None:
            return None
        zone = spec.get("timezone", "UTC")
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only a policy with a deadline pays for it

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            self.error(Code.DEADLINE_TIMEZONE, f"unknown time zone '{zone}'", ("deadline", "timezone"),
                       "use an IANA name such as America/New_York or UTC")
            return None
        return Deadline(int(spec.get("days_after_trade_date", 0)), dt.time.fromisoformat(spec["time"]), zone)


    def pricing(self) -> None:
        """Prices accounts receive (average or pieces of fills) and how costs are shared."""
        allocation = PriceAllocation(self.get("price", "allocation", default="average"))
        if self.get("price", "rounding") == CME_553 and allocation is PriceAllocation.FILL:
            self.error(Code.PRICE_ROUNDING_NEEDS_AVERAGE,
                       "'rounding: cme_553' rounds an average price; at fill price no price is rounded",
                       ("price", "rounding"), "remove it, or allocate at the average price")
        if self.data["method"] == "price_time" and allocation is PriceAllocation.FILL:
            self.error(Code.SECTION_UNUSED, "price/time already gives each account whole fills at their prices",
                       ("price", "allocation"), "remove 'allocation: fill'", key=True)
        costs = None
        spec = self.get("costs")
        if spec is not None:
            default = self.cost_share(spec, ("costs",))
            by_cost = tuple((name, self.cost_share(own, ("costs", "by_cost", name)))
                            for name, own in sorted(spec.get("by_cost", {}).items()))
            costs = Costs(default, by_cost, int(spec.get("precision", 2)),
                          Residual(spec.get("residual", "largest_remainder")))
        self.pricing_plan = Pricing(allocation, bool(self.get("price", "by_broker", default=False)), costs)

    def cost_share(self, spec: dict[str, Any], path: Path) -> CostShare:
        schedule = spec.get("schedule")
        if schedule is not None:
            attribute = self.account_attributes.get(schedule)
            if attribute is None or attribute.kind != "number":
                declared = [a.name for a in self.account_attributes.values() if a.kind == "number"]
                close = suggest(schedule, declared)
                self.error(Code.COSTS_SCHEDULE,
                           f"schedule '{schedule}' is not a declared number attribute of the account",
                           path + ("schedule",), f"did you mean {close!r}?" if close else
                           "declare it under attributes.account with type: number")
        return CostShare(CostBasis(spec.get("basis", "quantity")), schedule)


def _impossible_values(tree: Expr, declared: dict[str, tuple[str, ...]]) -> list[tuple[int, str, str, tuple[str, ...]]]:
    """Comparisons that can never be true: an attribute with declared values compared (``==``,
    ``!=``, ``in``) with a string literal outside them. Decidable, and almost always a typo."""
    found: list[tuple[int, str, str, tuple[str, ...]]] = []

    def literals(node: Expr) -> list[ast.Literal]:
        if isinstance(node, ast.Literal) and isinstance(node.value, str):
            return [node]
        if isinstance(node, ast.ListExpr):
            return [item for item in node.items if isinstance(item, ast.Literal) and isinstance(item.value, str)]
        return []

    def visit(node: Expr) -> None:
        if isinstance(node, ast.Binary):
            if node.op in ("==", "!=", "in", "not in"):
                pairs = [(node.left, node.right)] + ([(node.right, node.left)] if node.op in ("==", "!=") else [])
                for side, other in pairs:
                    if isinstance(side, ast.Path) and side.dotted in declared:
                        values = declared[side.dotted]
                        for literal in literals(other):
                            if literal.value not in values:
                                found.append((literal.start, side.dotted, str(literal.value), values))
            visit(node.left)
            visit(node.right)
        elif isinstance(node, ast.Unary):
            visit(node.operand)
        elif isinstance(node, ast.Call):
            for argument in node.args:
                visit(argument)
        elif isinstance(node, ast.ListExpr):
            for item in node.items:
                visit(item)

    visit(tree)
    return found


def _matches_kind(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, (int, Decimal)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "date":
        return isinstance(value, dt.date)
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _fraction_value(value: Any) -> Decimal | None:
    """``10%`` or ``"10%"`` or ``0.1`` → ``Decimal("0.1")``; anything else → None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    text = str(value).strip()
    try:
        if text.endswith("%"):
            return Decimal(text[:-1].strip()).scaleb(-2, EXACT)
        return Decimal(text)
    except ArithmeticError:
        return None


PASSES: tuple[tuple[str, Callable[[_Compiler], None]], ...] = (
    # Every later pass reads declared attributes through the scopes this pass builds.
    ("attributes", _Compiler.attributes),
    ("selection", _Compiler.selection),
    # Before thresholds: 'denied: rotation' reads the rotation this pass compiles.
    ("method", _Compiler.method),
    ("thresholds", _Compiler.thresholds),
    ("exceptions", _Compiler.exceptions),
    # After attributes: a cost schedule is a declared account attribute.
    ("pricing", _Compiler.pricing),
)
"""The compile passes after the structural check, in order. Each collects diagnostics instead of
stopping, so an author sees as many problems as possible at once; the structural check before them
is the one that stops compilation, since every pass relies on the shape it guarantees."""


def compile_policy(doc: SourceDocument) -> Policy:
    """Check ``doc``'s structure, then run :data:`PASSES`; raise :class:`PolicyError` with every
    problem found, sorted by location."""
    structural = check_policy_structure(doc)
    if structural:
        raise PolicyError(structural)
    compiler = _Compiler(doc)
    for _name, run in PASSES:
        run(compiler)
    if compiler.diagnostics:
        raise PolicyError(sorted(compiler.diagnostics, key=by_location))
    return compiler.plan()


def by_location(diagnostic: Diagnostic) -> tuple[str, int, int]:
    """Sort key of diagnostics: file, line, column (stable, so same-place problems keep their order)."""
    loc = diagnostic.location
    return (loc.file or "", loc.line or 0, loc.column or 0)
