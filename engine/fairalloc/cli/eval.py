"""``fairalloc eval EXPR [--context FILE.json] [--policy FILE]``: evaluate one expression.

For a policy author trying a condition before writing it into a policy: the expression is parsed,
checked and compiled exactly as in a policy (the same diagnostics and codes, located in the
expression as ``<expr>:1:COLUMN``, exit 3), then evaluated on the context and its value printed as
JSON (exact decimals, dates and timestamps as ISO 8601 strings). The context file is a JSON
object whose keys are roots of the language — ``order``, ``security``, ``statement``, ``fill``,
``account`` (objects) and ``allocation`` (a number); only the roots it gives may be used. Built-in
fields take the type the language defines (a date or timestamp as its ISO text; a number as a
JSON number or a decimal string). With ``--policy`` the attributes of ``account`` and
``security`` are those the policy declares, typed, checked and defaulted as in a trade; without,
any other field of ``account`` or ``security`` is an attribute whose type is that of its value.
A context that breaks these rules is an input error (exit 4), located by JSON pointer, as is an
expression that fails on the data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import msgspec.structs

from fairalloc import load_policy
from fairalloc.errors import Diagnostic, InputError, Location, PolicyError, suggest
from fairalloc.expressions import ROOTS, Kind, Scope, Type, compile_expression
from fairalloc.expressions.scope import BUILTIN_FIELDS
from fairalloc.expressions.types import scalar_type
from fairalloc.load import read_text
from fairalloc.numbers import decimal_from_text, decimal_text
from fairalloc.plan import Attribute, Policy
from fairalloc.trade import parse_json

EXPRESSION_FILE = "<expr>"
_SURROGATE = re.compile("[\ud800-\udfff]")
_PLAIN_DIGITS = 100  # beyond this exponent a decimal is printed in scientific notation (still exact JSON)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "eval",
        help="evaluate an expression of the policy language",
        description="Evaluate an expression of the policy language (docs/expressions.md) and print its "
        "value as JSON. The context file gives the roots the expression may read.",
    )
    parser.add_argument("expression", metavar="EXPR", help="the expression, e.g. '2 * 3 + 1'")
    parser.add_argument("--context", metavar="FILE",
                        help="JSON object with the roots: order, security, statement, fill, account, allocation")
    parser.add_argument("--policy", metavar="FILE",
                        help="type account and security attributes as this policy declares them (with their defaults)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy) if args.policy else None
    declared = _declared(policy)
    context: dict[str, Any] = {}
    attributes = {root: {name: a.type for name, a in fields.items()} for root, fields in declared.items()}
    if args.context:
        context, attributes = read_context(args.context, declared, infer=policy is None)
    scope = Scope.build(context, attributes["account"], attributes["security"])
    try:
        compiled = compile_expression(
            args.expression, scope, locate=lambda offset: Location(EXPRESSION_FILE, 1, offset + 1)
        )
    except PolicyError as error:
        raise PolicyError([_context_hint(d) for d in error.diagnostics]) from None
    print(json_text(compiled.evaluate(**context)))
    return 0


def _declared(policy: Policy | None) -> dict[str, dict[str, Attribute]]:
    """The attributes ``policy`` declares for ``account`` and ``security`` (none without a policy)."""
    if policy is None:
        return {"account": {}, "security": {}}
    return {"account": {a.name: a for a in policy.account_attributes},
            "security": {a.name: a for a in policy.security_attributes}}


def _context_hint(diagnostic: Diagnostic) -> Diagnostic:
    """A root the expression may not use is one the context does not give: say where to give it."""
    if diagnostic.code != "expr-unknown-root":
        return diagnostic
    return msgspec.structs.replace(diagnostic, hint="give it in the --context file, e.g. {\"account\": {...}}")


def read_context(path: str, declared: dict[str, dict[str, Attribute]], *,
                 infer: bool) -> tuple[dict[str, Any], dict[str, dict[str, Type]]]:
    """The roots of the context file as the runtime takes them, and the attribute types of
    ``account`` and ``security``: the ``declared`` ones (with their defaults where not given)
    and, with ``infer``, any other field typed by its value. Raise :class:`InputError` listing
    every problem."""
    data = parse_json(read_text(path), path)
    if not isinstance(data, dict):
        raise InputError(Diagnostic("context-type", "the context must be a JSON object of roots", Location(path, pointer="")))
    problems: list[Diagnostic] = [
        Diagnostic("context-value", "the text has a lone UTF-16 surrogate (\\uD800-\\uDFFF), not a character",
                   Location(path, pointer=pointer.encode("utf-8", "backslashreplace").decode("utf-8")),
                   "write the character itself, or both halves of its pair")
        for pointer in _unencodable(data, "")
    ]
    if problems:
        raise InputError(problems)
    context: dict[str, Any] = {}
    attributes = {root: {name: a.type for name, a in fields.items()} for root, fields in declared.items()}
    for root, value in data.items():
        where = Location(path, pointer=f"/{_escape(root)}")
        if root not in ROOTS:
            problems.append(Diagnostic("context-unknown-root", f"'{root}' is not a root of the language", where,
                                       _hint(suggest(root, ROOTS), f"roots are {', '.join(ROOTS)}")))
        elif root == "allocation":
            context[root] = _number(value, where, problems)
        elif not isinstance(value, dict):
            problems.append(Diagnostic("context-type", f"'{root}' must be a JSON object of fields", where))
        else:
            context[root] = _record(root, value, where, declared.get(root, {}), attributes.get(root), problems,
                                    infer=infer)
    if problems:
        raise InputError(problems)
    return context, attributes


def _unencodable(value: Any, pointer: str) -> list[str]:
    """Pointers to the texts (keys included) that JSON's ``\\uXXXX`` escapes made lone surrogates:
    they cannot be printed or written as UTF-8, so the value could never be shown."""
    if isinstance(value, str):
        return [] if value.isascii() or not _SURROGATE.search(value) else [pointer]
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            at = f"{pointer}/{_escape(key)}"
            found += [at] if _unencodable(key, at) else _unencodable(item, at)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _unencodable(item, f"{pointer}/{index}")
    return found


def _record(root: str, value: dict[str, Any], where: Location, declared: dict[str, Attribute],
            inferred: dict[str, Type] | None, problems: list[Diagnostic], *, infer: bool) -> dict[str, Any]:
    """One record root's fields in the runtime's form; ``inferred`` collects the types of the
    attributes typed by their value (``account`` and ``security`` only)."""
    record: dict[str, Any] = {}
    typed = {**BUILTIN_FIELDS[root], **{name: a.type for name, a in declared.items()}}
    for name, item in value.items():
        at = msgspec.structs.replace(where, pointer=f"{where.pointer}/{_escape(name)}")
        if name in typed:
            record[name] = _typed(item, typed[name], at, problems)
            values = declared[name].values if name in declared else None
            if values is not None and isinstance(item, str) and item not in values:
                problems.append(Diagnostic("context-value", f"'{item}' is not one of {', '.join(values)}", at))
        elif infer and inferred is not None and (kind := _attribute_type(item)) is not None:
            inferred[name] = kind
            record[name] = item
        elif infer and inferred is not None:
            problems.append(Diagnostic("context-value", "an attribute must be a number, text, boolean, null or a "
                                       "list of one of these", at))
        else:
            problems.append(Diagnostic("context-unknown-field", f"'{root}' has no field '{name}'", at,
                                       _hint(suggest(name, typed), None)))
    for name, attribute in declared.items():
        if name not in record and attribute.has_default:
            record[name] = attribute.default
    return record


def _typed(value: Any, kind: Type, where: Location, problems: list[Diagnostic]) -> Any:
    """A field's JSON value in the runtime's form, for its type in the language."""
    if value is None:
        if not kind.nullable and not kind.is_any:
            problems.append(Diagnostic("context-value", f"this field is a {kind}; it cannot be null", where))
        return None
    try:
        if kind.is_any:
            return value
        if kind.kind is Kind.NUMBER:
            return _number(value, where, problems)
        if kind.kind is Kind.DATE and isinstance(value, str):
            return dt.date.fromisoformat(value)
        if kind.kind is Kind.TIMESTAMP and isinstance(value, str):
            stamp = dt.datetime.fromisoformat(value)
            if stamp.tzinfo is not None:
                return stamp
        if kind.kind is Kind.STRING and isinstance(value, str):
            return value
        if kind.kind is Kind.BOOLEAN and isinstance(value, bool):
            return value
        if kind.kind is Kind.LIST and isinstance(value, list) and kind.element is not None:
            element = kind.element
            return tuple(_typed(item, element, msgspec.structs.replace(where, pointer=f"{where.pointer}/{index}"),
                                problems) for index, item in enumerate(value))
    except ValueError:
        pass
    expected = {Kind.DATE: "a date 'YYYY-MM-DD'", Kind.TIMESTAMP: "an ISO 8601 timestamp with its offset"}.get(
        kind.kind, f"a {kind.non_null()}")
    problems.append(Diagnostic("context-value", f"expected {expected}, not {json.dumps(value, default=str)}", where))
    return None


def _number(value: Any, where: Location, problems: list[Diagnostic]) -> int | Decimal | None:
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return decimal_from_text(value)
        except ValueError as error:
            problems.append(Diagnostic("context-value", f"{json.dumps(value[:40])} {error}", where,
                                       "write a number as in a trade; see the limits on numbers in "
                                       "docs/oms-integration.md"))
            return None
    problems.append(Diagnostic("context-value", f"expected a number, not {json.dumps(value, default=str)}", where))
    return None


def _attribute_type(value: Any) -> Type | None:
    """The language type of an attribute's JSON value, or None when it has none."""
    if value is None:
        return Type.ANY
    if (scalar := scalar_type(value)) is not None:
        return scalar
    if isinstance(value, list):
        kinds = {_attribute_type(item) for item in value}
        if None in kinds or len(kinds) > 1:
            return None
        element = kinds.pop() if kinds else Type.ANY
        return Type.list_of(element) if element is not None else None
    return None


def _hint(match: str | None, otherwise: str | None) -> str | None:
    return f"did you mean '{match}'?" if match else otherwise


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_text(value: Any) -> str:
    """``value`` as JSON: numbers exactly as computed (no float on the way), dates as ISO text."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return decimal_text(value) if abs(value.adjusted()) <= _PLAIN_DIGITS else str(value.normalize())
    if isinstance(value, (dt.date, dt.datetime)):
        return json.dumps(value.isoformat())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json_text(item) for item in value) + "]"
    raise TypeError(f"no JSON form for {type(value).__name__}")
