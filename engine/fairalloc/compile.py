"""Stages 3–5 — parse, check and compile a structurally valid policy into a :class:`Policy` plan.

The passes run in a fixed order, each collecting diagnostics rather than stopping at the first:

1. ``attributes``  — declared account/security attributes become typed scopes for expressions;
2. ``expressions`` — every expression is parsed, name- and type-checked against the scope of the
   place it stands in (``applies_to`` sees no account; an ``exclude`` rule sees no allocation);
3. ``semantics``   — cross-key checks no schema can express (unused sections, unreachable
   thresholds, duplicate ids, rules that can never fire, rotation sequences).

Passes 2 and 3 need pass 1's scopes; if pass 1 fails, the rest still run with what was declared
correctly, so the author sees as many problems as possible at once.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fairalloc.errors import Diagnostic, PolicyError
from fairalloc.expressions import CompiledExpression, Scope, Type, ast, compile_expression
from fairalloc.expressions.grammar import KEYWORDS
from fairalloc.expressions.ast import Expr
from fairalloc.load import Path, SourceDocument
from fairalloc.numbers import EXACT
from fairalloc.options import Action, Denied, Method, MinimumKind, Remainder, RoundingMethod, TieBreak
from fairalloc.plan import Attribute, Deadline, Minimum, Policy, Rotation, Rule
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
        normal = value.normalize()
        return format(normal, "f") if normal != normal.to_integral_value() else str(int(normal))
    if isinstance(value, dt.date):
        return canonical_json(value.isoformat())
    text = str(value)
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
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class _Compiler:
    """Holds the document and the diagnostics while the passes run."""

    def __init__(self, doc: SourceDocument) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.diagnostics: list[Diagnostic] = []
        self.account_attributes: dict[str, Attribute] = {}
        self.security_attributes: dict[str, Attribute] = {}

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
            close = difflib.get_close_matches(literal, values, n=1)
            self.diagnostics.append(Diagnostic(
                "expr-impossible-value",
                f"'{path_text}' is never {literal!r}: the policy declares its values as {', '.join(values)}",
                self.doc.locate_in_scalar(path, offset),
                f"did you mean {close[0]!r}?" if close else "compare with one of the declared values",
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
            self.error("policy-type", "expected a number or an expression", path)
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
                        "attribute-shadows-field",
                        f"attribute '{name}' would hide the built-in field '{owner}.{name}'",
                        path,
                        "rename the attribute",
                        key=True,
                    )
                    continue
                if name in KEYWORDS:
                    self.error(
                        "attribute-reserved-word",
                        f"attribute '{name}' is a reserved word of the expression language",
                        path,
                        "rename the attribute; expressions could not name it",
                        key=True,
                    )
                    continue
                kind = spec["type"]
                values = tuple(spec["values"]) if "values" in spec else None
                if values is not None and kind != "string":
                    self.error("attribute-values", "'values' is only allowed for string attributes", path + ("values",), key=True)
                has_default = "default" in spec
                default = spec.get("default")
                if has_default and not _matches_kind(default, kind):
                    self.error(
                        "attribute-default",
                        f"default of '{owner}.{name}' must be a {kind}, not {default!r}",
                        path + ("default",),
                    )
                elif has_default and values is not None and default not in values:
                    self.error(
                        "attribute-default",
                        f"default {default!r} of '{owner}.{name}' is not one of its values",
                        path + ("default",),
                        f"use one of: {', '.join(values)}",
                    )
                table[name] = Attribute(name, _KIND_TYPES[kind], kind, values, default, has_default)

    # -- passes 2 and 3 --------------------------------------------------------------------
    def compile(self) -> Policy:
        self.attributes()
        method = self.data["method"]
        applies_to = self.expression(("applies_to",), ORDER_ROOTS, Type.BOOLEAN)
        weight = self.weight(method)
        rotation = self.rotation(method)
        rounding = self.data["rounding"]
        lot = Decimal(rounding["lot"])
        rounding_method = rounding.get("method", "largest_remainder")
        remainder = rounding.get("remainder", "largest_remainder")
        tie_break = rounding.get("tie_break", "account_id")
        if rounding_method == "quota" and "remainder" in rounding:
            self.error(
                "remainder-with-quota",
                "'remainder' cannot be set with the quota method",
                ("rounding", "remainder"),
                "the quota method gives the odd lot to the account next in line, which keeps it fill-monotone",
                key=True,
            )
        if remainder == "rotation" and rotation is None:
            self.error(
                "remainder-needs-rotation",
                "'remainder: rotation' needs a 'rotation' section saying the order",
                ("rounding", "remainder"),
                "add 'rotation: {order_by: account.id}' or an explicit 'sequence'",
            )
        if "price_time" in self.data and method != "price_time":
            self.error("section-unused", f"'price_time' section is unused: this policy allocates by {method}",
                       ("price_time",), "remove it, or change 'method'", key=True)
        if method != "pro_rata" and ("method" in rounding or "remainder" in rounding or "tie_break" in rounding):
            which = next(key for key in ("method", "remainder", "tie_break") if key in rounding)
            self.error(
                "rounding-unused",
                f"'rounding.{which}' only applies to pro_rata; this policy allocates by {method}",
                ("rounding", which),
                "remove it, or change 'method'",
                key=True,
            )
        allow_above = bool(self.get("caps", "allow_above_intended", default=False))
        minimum = self.minimum(allow_above, rotation)
        rules = self.rules()
        reason_codes = self.reason_codes()
        deadline = self.deadline()
        if method == "price_time" and minimum is not None:
            self.error(
                "minimum-with-price-time",
                "minimum thresholds do not apply to price/time allocation",
                ("minimum",),
                "each fill goes to the best-ranked eligible account; remove 'minimum'",
                key=True,
            )
        price = self.data.get("price", {})
        if self.diagnostics:
            raise PolicyError(self.diagnostics)
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
            applies_to=applies_to,
            account_attributes=tuple(self.account_attributes.values()),
            security_attributes=tuple(self.security_attributes.values()),
            method=Method(method),
            weight=weight,
            rotation=rotation,
            unlimited_first=bool(self.get("price_time", "unlimited_first", default=True)),
            lot=lot,
            rounding_method=RoundingMethod(rounding_method),
            remainder=Remainder(remainder),
            tie_break=TieBreak(tie_break),
            price_precision=int(price.get("precision", 6)),
            price_rounding=price.get("rounding", "half_even"),
            allow_above_intended=allow_above,
            minimum=minimum,
            rules=rules,
            reason_code_descriptions=reason_codes,
            deadline=deadline,
            data=self.data,
        )

    def weight(self, method: str) -> CompiledExpression | None:
        if "pro_rata" in self.data and method != "pro_rata":
            self.error("section-unused", f"'pro_rata' section is unused: this policy allocates by {method}",
                       ("pro_rata",), "remove it, or change 'method'", key=True)
            return None
        weight = self.get("pro_rata", "weight", default="intended")
        if weight == "intended":
            return None
        return self.expression(("pro_rata", "weight"), ACCOUNT_ROOTS, Type.NUMBER)

    def rotation(self, method: str) -> Rotation | None:
        spec = self.get("rotation")
        uses_rotation = (
            method == "rotation"
            or self.get("rounding", "remainder") == "rotation"
            or self.get("minimum", "denied") == "rotation"
        )
        if spec is None:
            if method == "rotation":
                self.error("rotation-missing", "method 'rotation' needs a 'rotation' section", ("method",),
                           "add 'rotation:' with a 'sequence' of account ids or an 'order_by' expression")
            elif self.get("minimum", "denied") == "rotation":
                self.error("rotation-missing", "'denied: rotation' needs a 'rotation' section saying the order",
                           ("minimum", "denied"),
                           "add 'rotation:' with a 'sequence' of account ids or an 'order_by' expression")
            return None
        if not uses_rotation:
            self.error("section-unused", "'rotation' section is unused by this policy", ("rotation",),
                       "remove it, or use it: method: rotation, remainder: rotation or denied: rotation", key=True)
            return None
        sequence = spec.get("sequence")
        if (sequence is None) == ("order_by" not in spec):
            self.error("rotation-order", "'rotation' needs exactly one of 'sequence' or 'order_by'", ("rotation",),
                       "list the account ids in 'sequence', or give an 'order_by' expression over the account")
        if sequence is not None:
            seen: set[str] = set()
            for index, account in enumerate(sequence):
                if account in seen:
                    self.error("rotation-duplicate", f"account '{account}' appears twice in the rotation sequence",
                               ("rotation", "sequence", index), "each account may lead once per cycle")
                seen.add(account)
        order_by = self.expression(("rotation", "order_by"), ACCOUNT_ROOTS - {"fill"}, Type.ANY)
        if order_by is not None and order_by.type not in (Type.STRING, Type.NUMBER, Type.DATE):
            self.error("rotation-order-type", f"'order_by' must give a string, number or date, not {order_by.type}",
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
        if "absolute" in spec:
            return Minimum(MinimumKind.ABSOLUTE, Decimal(spec["absolute"]), None, None, denied)
        if "relative_to_intended" in spec:
            relative = _fraction_value(spec["relative_to_intended"])
            path: Path = ("minimum", "relative_to_intended")
            if relative is None or relative <= 0:
                self.error("minimum-relative", "'relative_to_intended' must be a positive fraction such as 10% or 0.1",
                           path, "write a percentage like '10%' or a decimal like 0.1")
                return None
            if relative > 1 and not allow_above:
                self.error(
                    "threshold-unreachable",
                    f"a minimum of {relative} x intended is above every possible allocation",
                    path,
                    "allocations never exceed the intended quantity unless caps.allow_above_intended is true",
                )
                return None
            return Minimum(MinimumKind.RELATIVE_TO_INTENDED, None, relative, None, denied)
        expression = self.expression(("minimum", "expression"), ACCOUNT_ROOTS, Type.NUMBER)
        if expression is None:
            return None
        return Minimum(MinimumKind.EXPRESSION, None, None, expression, denied)

    def rules(self) -> tuple[Rule, ...]:
        compiled: list[Rule] = []
        seen: dict[str, int] = {}
        for index, spec in enumerate(self.get("rules", default=[])):
            path: Path = ("rules", index)
            rule_id = spec["id"]
            if rule_id in seen:
                self.error("rule-duplicate-id", f"rule id '{rule_id}' is used twice (first at rule {seen[rule_id] + 1})",
                           path + ("id",), "give every rule its own id: the ledger and reports cite it")
            seen.setdefault(rule_id, index)
            action = spec["action"]
            roots = ALLOCATION_ROOTS if action in ("zero", "flag") else ACCOUNT_ROOTS
            when = self.expression(path + ("when",), roots, Type.BOOLEAN)
            if when is not None and not when.names:
                value = when.evaluate()
                self.error(
                    "rule-constant",
                    f"rule '{rule_id}' {'always' if value else 'never'} fires: its condition reads no data",
                    path + ("when",),
                    "a rule's condition must depend on the order, the security or the account",
                )
            quantity: CompiledExpression | Decimal | None = None
            if action == "cap":
                if "quantity" not in spec:
                    self.error("rule-cap-quantity", f"rule '{rule_id}' caps but says no 'quantity'", path,
                               "add 'quantity:' with a number or an expression")
                else:
                    quantity = self.number_or_expression(path + ("quantity",), ACCOUNT_ROOTS)
                    if isinstance(quantity, Decimal) and quantity < 0:
                        self.error("rule-cap-quantity", "a cap cannot be negative", path + ("quantity",))
            elif "quantity" in spec:
                self.error("rule-quantity-unused", f"'quantity' only applies to action 'cap', not '{action}'",
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
                self.error("reason-code-duplicate", f"reason code '{spec['code']}' is listed twice",
                           ("overrides", "reason_codes", index, "code"))
            seen.add(spec["code"])
            codes.append((spec["code"], spec["description"]))
        return tuple(sorted(codes))

    def deadline(self) -> Deadline | None:
        spec = self.get("deadline")
        if spec is None:
            return None
        zone = spec.get("timezone", "UTC")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            self.error("deadline-timezone", f"unknown time zone '{zone}'", ("deadline", "timezone"),
                       "use an IANA name such as America/New_York or UTC")
            return None
        return Deadline(int(spec.get("days_after_trade_date", 0)), dt.time.fromisoformat(spec["time"]), zone)


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


def compile_policy(doc: SourceDocument) -> Policy:
    """Check ``doc``'s structure, then compile it; raise :class:`PolicyError` with every problem found."""
    structural = check_policy_structure(doc)
    if structural:
        raise PolicyError(structural)
    return _Compiler(doc).compile()
