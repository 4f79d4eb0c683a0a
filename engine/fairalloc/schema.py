"""Stage 2 — schema: check the loaded policy's structure against the shipped JSON Schema.

The schema (``engine/fairalloc/schemas/policy.schema.json``) is the single description of the policy's keys;
editors can use it too (``fairalloc schema policy``). This stage turns every jsonschema error into a
:class:`Diagnostic` located at the offending key or value, with a hint ("did you mean ...?" for a
misspelt key, the allowed values for an enum), sorted by position so the user reads them in order.

The validator reads a schema as JSON Schema means it, whatever Python's ``re`` would do: a
``pattern`` is an ECMA-262 expression, whose ``$`` matches only at the very end of the text (Python's
also before a final newline, which let ``id: "us-equity-pro-rata\\n"`` through), and ``date-time`` is
checked as RFC 3339 — the same rules the engine applies to trades (``fairalloc.trade``).
"""

from __future__ import annotations

import datetime as dt
import json
import numbers
import os
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from fairalloc.errors import Code, Diagnostic, suggest
from fairalloc.load import Path, SourceDocument

if TYPE_CHECKING:
    import jsonschema

SCHEMAS = ("policy", "trade", "allocation")


@cache
def schema_text(name: str) -> str:
    """The text of a shipped JSON Schema: ``policy``, ``trade`` or ``allocation``."""
    if name not in SCHEMAS:
        raise ValueError(f"unknown schema {name!r}")
    beside = os.path.join(os.path.dirname(__file__), "schemas", f"{name}.schema.json")
    if os.path.isfile(beside):  # the package is a folder (importlib.resources would import zipfile to say so)
        with open(beside, encoding="utf-8") as file:  # not pathlib: its import costs every start-up
            return file.read()
    from importlib import resources

    return (resources.files("fairalloc") / "schemas" / f"{name}.schema.json").read_text("utf-8")


@cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_text(name))
    return loaded


RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
"""An RFC 3339 ``date-time`` (JSON Schema's format), fractions of a second to the microsecond."""


def is_timestamp(text: str) -> bool:
    """Whether ``text`` is an RFC 3339 date-time that names a real instant."""
    if not RFC3339.fullmatch(text):
        return False
    try:
        dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@cache
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled with ECMA-262's meaning of ``$`` (the very end: Python's ``\\Z``)."""
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            out.append("\\Z")
            continue
        out.append(char)
    return re.compile("".join(out))


def _pattern(
    validator: jsonschema.protocols.Validator, pattern: str, instance: Any, _schema: Any
) -> Iterator[jsonschema.ValidationError]:
    import jsonschema

    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for the shipped schema ``name``, with JSON Schema's semantics (see above)."""
    return validator_for_schema(json.dumps(schema(name)))


@cache
def validator_for_schema(text: str) -> jsonschema.protocols.Validator:
    """A validator for any JSON Schema ``text`` (the shared contract's, too) with the same semantics."""
    import jsonschema  # its import costs more than the rest of a small allocation: only errors pay

    document = json.loads(text)
    base = jsonschema.validators.validator_for(document)
    cls = jsonschema.validators.extend(base, {"pattern": _pattern})  # type: ignore[no-untyped-call]
    formats = jsonschema.FormatChecker()
    formats.checks("date-time")(lambda value: not isinstance(value, str) or is_timestamp(value))
    checker: jsonschema.protocols.Validator = cls(document, format_checker=formats)
    return checker


def json_compatible(value: Any) -> Any:
    """Dates become ISO strings; everything else is kept (Decimal counts as a JSON number)."""
    if isinstance(value, dict):
        return {key: json_compatible(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_compatible(item) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def check_policy_structure(doc: SourceDocument) -> list[Diagnostic]:
    """Every structural error in ``doc``, located and ordered by position in the file."""
    data = json_compatible(doc.data)
    if conforms(data, schema("policy")):
        return []
    found: list[tuple[tuple[int, int], Diagnostic]] = []
    for error in validator("policy").iter_errors(data):
        for diagnostic in _diagnostics(doc, error):
            loc = diagnostic.location
            found.append(((loc.line or 0, loc.column or 0), diagnostic))
    found.sort(key=lambda pair: (pair[0], pair[1].code, pair[1].message))
    unique: list[Diagnostic] = []
    for _, diagnostic in found:
        if diagnostic not in unique:
            unique.append(diagnostic)
    return unique


def conforms(instance: Any, part: Any, root: Any | None = None) -> bool:
    """Whether ``instance`` is valid under the schema ``part`` (of ``root``), as jsonschema decides
    with this module's semantics (ECMA ``pattern``, RFC 3339 ``date-time``); the errors are left
    to jsonschema (:func:`check_policy_structure`), whose import costs a process's start-up more
    than the rest of a small allocation, so a valid policy is checked without it.

    It knows exactly the keywords the shipped schemas use and refuses a schema with any other
    (``tests/test_agreement.py`` holds it to jsonschema on every policy the tests write)."""
    root = part if root is None else root
    if part is True:
        return True
    if part is False:
        return False
    for keyword, value in part.items():
        check = _KEYWORDS.get(keyword)
        if check is None:
            if keyword in _ANNOTATIONS:
                continue
            raise ValueError(f"schema keyword {keyword!r} is not known to conforms()")
        if not check(instance, value, part, root):
            return False
    return True


def _is_type(instance: Any, name: str) -> bool:
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "string":
        return isinstance(instance, str)
    if name == "boolean":
        return isinstance(instance, bool)
    if name == "null":
        return instance is None
    if isinstance(instance, bool):
        return False
    if name == "integer":
        return isinstance(instance, int) or (isinstance(instance, float) and instance.is_integer())
    if name == "number":
        return isinstance(instance, numbers.Number)
    raise ValueError(f"unknown JSON Schema type {name!r}")


def _equal(one: Any, two: Any) -> bool:
    """JSON's equality: ``true`` is not ``1``; ``1`` is ``1.0``."""
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(map(_equal, one, two))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_equal(one[key], two[key]) for key in one)
    if isinstance(one, bool) or isinstance(two, bool):
        return one is two
    return bool(one == two)


def _date(text: str) -> bool:
    try:
        return bool(_DATE.fullmatch(text)) and bool(dt.date.fromisoformat(text))
    except ValueError:
        return False


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_FORMATS: dict[str, Callable[[str], bool]] = {"date": _date, "date-time": lambda text: is_timestamp(text)}


def _properties(instance: Any, value: Any, part: Any, root: Any) -> bool:
    return not isinstance(instance, dict) or all(
        conforms(instance[key], sub, root) for key, sub in value.items() if key in instance)


def _additional(instance: Any, value: Any, part: Any, root: Any) -> bool:
    if not isinstance(instance, dict):
        return True
    known = part.get("properties", {})
    return all(conforms(item, value, root) for key, item in instance.items() if key not in known)


def _ref(instance: Any, value: str, part: Any, root: Any) -> bool:
    if not value.startswith("#/"):
        raise ValueError(f"only local references are known to conforms(), not {value!r}")
    target = root
    for name in value[2:].split("/"):
        target = target[name]
    return conforms(instance, target, root)


def _unique(items: list[Any]) -> bool:
    return all(not _equal(items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items)))


def _format(instance: Any, value: str, part: Any, root: Any) -> bool:
    check = _FORMATS.get(value)
    if check is None:
        raise ValueError(f"format {value!r} is not known to conforms()")
    return not isinstance(instance, str) or check(instance)


_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "default", "examples"})
_KEYWORDS: dict[str, Any] = {
    "type": lambda i, v, p, r: any(_is_type(i, name) for name in ([v] if isinstance(v, str) else v)),
    "enum": lambda i, v, p, r: any(_equal(i, option) for option in v),
    "const": lambda i, v, p, r: _equal(i, v),
    "required": lambda i, v, p, r: not isinstance(i, dict) or all(key in i for key in v),
    "properties": _properties,
    "additionalProperties": _additional,
    "propertyNames": lambda i, v, p, r: not isinstance(i, dict) or all(conforms(key, v, r) for key in i),
    "$ref": _ref,
    "items": lambda i, v, p, r: not isinstance(i, list) or all(conforms(item, v, r) for item in i),
    "minItems": lambda i, v, p, r: not isinstance(i, list) or len(i) >= v,
    "uniqueItems": lambda i, v, p, r: not v or not isinstance(i, list) or _unique(i),
    "minLength": lambda i, v, p, r: not isinstance(i, str) or len(i) >= v,
    "pattern": lambda i, v, p, r: not isinstance(i, str) or bool(ecma_pattern(v).search(i)),
    "format": _format,
    "minimum": lambda i, v, p, r: not _is_type(i, "number") or i >= v,
    "maximum": lambda i, v, p, r: not _is_type(i, "number") or i <= v,
    "exclusiveMinimum": lambda i, v, p, r: not _is_type(i, "number") or i > v,
    "exclusiveMaximum": lambda i, v, p, r: not _is_type(i, "number") or i < v,
    "oneOf": lambda i, v, p, r: sum(conforms(i, sub, r) for sub in v) == 1,
    "anyOf": lambda i, v, p, r: any(conforms(i, sub, r) for sub in v),
    "not": lambda i, v, p, r: not conforms(i, v, r),
}


def _describe(path: Path) -> str:
    if not path:
        return "the policy"
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"'{text}'"


def _diagnostics(doc: SourceDocument, error: jsonschema.ValidationError) -> list[Diagnostic]:
    path: Path = tuple(error.absolute_path)
    kind = error.validator
    schema_part: Any = error.schema
    value: Any = error.validator_value
    where = doc.locate(path)
    described = _describe(path)
    if kind == "additionalProperties":
        allowed = sorted((schema_part.get("properties") or {}).keys())
        extras = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        result = []
        for extra in extras:
            close = suggest(extra, allowed)
            hint = f"did you mean '{close}'?" if close else f"allowed keys: {', '.join(allowed)}"
            result.append(
                Diagnostic(
                    Code.SCHEMA_UNKNOWN_KEY,
                    f"unknown key '{extra}' in {described}",
                    doc.locate(path + (extra,), key=True),
                    hint,
                )
            )
        return result
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "?"
        return [
            Diagnostic(
                Code.SCHEMA_MISSING_KEY,
                f"{described} is missing the required key '{missing}'",
                where,
                f"add '{missing}:' (see docs/policy-language.md)",
            )
        ]
    if kind in ("enum", "const"):
        options = value if kind == "enum" else [value]
        shown = ", ".join(json.dumps(option) for option in options)
        close = suggest(str(error.instance), [str(o) for o in options])
        hint = f"did you mean {json.dumps(close)}?" if close else f"use one of: {shown}"
        return [
            Diagnostic(
                Code.SCHEMA_VALUE,
                f"{described} must be one of {shown}, not {json.dumps(_plain(error.instance))}",
                where,
                hint,
            )
        ]
    if kind == "type":
        expected_text = " or ".join(value) if isinstance(value, list) else str(value)
        return [
            Diagnostic(
                Code.SCHEMA_TYPE,
                f"{described} must be {_article(expected_text)}, not {_type_name(error.instance)}",
                where,
                _type_hint(expected_text),
            )
        ]
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bound = error.validator_value
        relation = {
            "minimum": f"at least {bound}",
            "exclusiveMinimum": f"greater than {bound}",
            "maximum": f"at most {bound}",
            "exclusiveMaximum": f"less than {bound}",
        }[kind]
        return [
            Diagnostic(
                Code.SCHEMA_RANGE,
                f"{described} must be {relation}, not {_plain(error.instance)}",
                where,
            )
        ]
    if kind == "oneOf" and path[-1:] == ("recipient",):
        # an account id or {expression: ...}: report what is wrong within the form written
        branch = 1 if isinstance(error.instance, dict) else 0
        inner = [e for e in error.context or () if e.relative_schema_path[0] == branch]
        if isinstance(error.instance, (dict, str)) and inner:
            return [d for e in inner for d in _diagnostics(doc, e)]
        return [
            Diagnostic(
                Code.SCHEMA_TYPE,
                f"{described} must be an account id or {{expression: ...}}, not {_type_name(error.instance)}",
                where,
                "write the account id, or 'expression:' with a string expression over the order",
            )
        ]
    if kind == "oneOf" and path and path[-1] == "minimum":
        return [
            Diagnostic(
                Code.SCHEMA_MINIMUM_KIND,
                "'minimum' needs exactly one of 'absolute', 'relative_to_intended', 'expression' (and may add 'value')",
                where,
                "choose one way of stating the threshold",
            )
        ]
    if kind == "pattern":
        return [
            Diagnostic(
                Code.SCHEMA_FORMAT,
                f"{described} has an invalid form: {json.dumps(_plain(error.instance))}",
                where,
                f"it must match {error.validator_value}",
            )
        ]
    if kind == "format":
        return [
            Diagnostic(
                Code.SCHEMA_FORMAT,
                f"{described} is not a valid {error.validator_value}: {json.dumps(_plain(error.instance))}",
                where,
                "write dates as YYYY-MM-DD" if error.validator_value == "date" else None,
            )
        ]
    if kind in ("minItems", "minLength"):
        return [Diagnostic(Code.SCHEMA_EMPTY, f"{described} must not be empty", where)]
    if kind == "uniqueItems":
        return [Diagnostic(Code.SCHEMA_DUPLICATE, f"{described} lists a value twice", where)]
    return [Diagnostic(Code.SCHEMA, f"{described}: {error.message}", where)]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dict, list)):
        return type(value).__name__
    return value


def _article(text: str) -> str:
    return f"an {text}" if text[:1] in "aeiou" else f"a {text}"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, Decimal)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _type_hint(expected: str) -> str | None:
    if expected == "string":
        return "quote the value"
    if expected == "object":
        return "write a mapping of 'key: value' lines indented under this key"
    if expected == "array":
        return "write a list, one '- item' per line"
    return None
