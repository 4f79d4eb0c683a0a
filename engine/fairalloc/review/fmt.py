"""``fairalloc fmt``: one canonical layout for policy files, so that a diff shows meaning only.

The file is read twice: once by the engine's own loader (:func:`fairalloc.load.load_yaml`), which
gives the data whose canonical JSON is the policy digest and refuses every plain scalar on whose
meaning YAML 1.1 and 1.2 disagree (so ruamel.yaml, a YAML 1.2 reader, sees the same values), and
once by ruamel.yaml's round-trip
loader, which keeps comments, key order and block scalars. The round-trip tree is normalised and
written back with these rules:

* indentation: two spaces per mapping level, sequence items as ``  - `` under their key;
* sequences of scalars (``values``, ``sequence``) in flow style ``[a, b]`` unless comments sit
  between their items; other sequences in block style; in a policy (a document with the ``fairalloc:`` key) every mapping in block
  style, while other documents — policy test files — keep the style of each mapping as written,
  so that a test's trade can stay compact in flow style;
* expressions (``applies_to``, ``when``, ``quantity``, ``weight``, ``priority``, ``order_by``,
  ``group``, ``minimum.expression``, ``odd_lots.recipient.expression``) single-quoted, as the shipped policies write them;
* every other string plain where every YAML reader reads the plain text back as the same string
  (:func:`fairalloc.load.plain_is_text`, the loader's own rule), otherwise single-quoted
  (``time: '23:59:59'`` would otherwise become a number, ``'yes'`` a boolean);
* literal (``|``) and folded (``>``) block scalars, comments and key order stay as written.

Contract: :func:`format_text` never changes meaning. It re-loads its own output with the engine's
loader and compares canonical JSON; if they differ it refuses (``fmt-meaning-changed``) rather than
return a text whose digest differs. ``format_text(format_text(x)) == format_text(x)``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RoundTripError
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString, SingleQuotedScalarString

from fairalloc.compile import canonical_json
from fairalloc.errors import Code, Diagnostic, FairallocError, Location, PolicyError
from fairalloc.load import load_yaml, plain_is_text, read_text

Path = tuple[str | int, ...]

# Policy keys whose string values are expressions (docs/policy-language.md).
_EXPRESSION_PATHS: frozenset[Path] = frozenset({
    ("applies_to",),
    ("pro_rata", "weight"),
    ("pro_rata", "priority"),
    ("odd_lots", "recipient", "expression"),
    ("rotation", "order_by"),
    ("rotation", "group"),
    ("fairness", "group"),
    ("minimum", "expression"),
})
_RULE_EXPRESSION_KEYS = frozenset({"when", "quantity"})


@dataclass(frozen=True, slots=True)
class Formatted:
    """One file's text before and after formatting."""

    file: str
    original: str
    text: str

    @property
    def changed(self) -> bool:
        return self.original != self.text


def _round_trip() -> YAML:
    """A ruamel.yaml instance configured for the canonical layout (built per call: not thread-safe)."""
    handler = YAML(typ="rt", pure=True)
    handler.indent(mapping=2, sequence=4, offset=2)
    handler.width = 4096  # never re-wrap an author's lines
    handler.preserve_quotes = False
    return handler


def is_expression(path: Path, value: str) -> bool:
    """Whether the string at ``path`` of a policy is written in the expression language."""
    if path == ("pro_rata", "weight") and value in ("intended", "equal"):
        return False
    if path in _EXPRESSION_PATHS:
        return True
    return len(path) == 3 and path[0] == "rules" and path[2] in _RULE_EXPRESSION_KEYS


def _scalar(path: Path, value: Any) -> Any:
    """The canonical representation of a scalar at ``path``."""
    if not isinstance(value, str) or isinstance(value, (LiteralScalarString, FoldedScalarString)):
        return value
    if is_expression(path, value) or not plain_is_text(value):
        return SingleQuotedScalarString(value)
    return str(value)


def _has_item_comments(node: CommentedSeq, entry: list[Any] | None) -> bool:
    """Whether comments sit between the items of a block sequence (a flow style would lose them)."""
    inside = entry[3] if entry is not None and len(entry) > 3 else None
    return bool(inside) or any(token is not None for tokens in node.ca.items.values() for token in tokens)


def _sequence_style(node: CommentedSeq, entry: list[Any] | None) -> None:
    """Flow style for a list of scalars without comments between its items; block style otherwise.

    ``entry`` is the parent's comment record for this value; its slot for comments before the first
    item must be emptied when the list becomes flow, or ruamel.yaml emits the next key on the same
    line as the previous value.
    """
    scalars = all(not isinstance(item, (CommentedMap, CommentedSeq)) for item in node)
    if scalars and not _has_item_comments(node, entry):
        node.fa.set_flow_style()
        if entry is not None and len(entry) > 3:
            entry[3] = None
    else:
        node.fa.set_block_style()


def _normalise(node: Any, path: Path, block_mappings: bool) -> None:
    """Apply the layout rules to ``node``'s children in place (quoting, flow/block style)."""
    if isinstance(node, CommentedMap):
        if block_mappings:
            node.fa.set_block_style()
        keys: list[Any] = list(node.keys())
    elif isinstance(node, CommentedSeq):
        keys = list(range(len(node)))
    else:
        return
    for key in keys:
        child = node[key]
        where = path + (key if isinstance(key, int) else str(key),)
        _normalise(child, where, block_mappings)
        if isinstance(child, CommentedSeq):
            _sequence_style(child, node.ca.items.get(key))
        node[key] = _scalar(where, child)


def _meaning(text: str, file: str) -> str:
    return canonical_json(load_yaml(text, file).data)


def format_text(text: str, file: str = "<policy>") -> str:
    """The canonical layout of the YAML ``text``; raise :class:`PolicyError` if it is not loadable YAML."""
    before = _meaning(text, file)
    handler = _round_trip()
    try:
        tree = handler.load(text)
    except RoundTripError as error:
        mark = getattr(error, "problem_mark", None)
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise PolicyError(Diagnostic(Code.YAML_SYNTAX, f"YAML syntax error: {error}", where)) from None
    _normalise(tree, (), block_mappings=isinstance(tree, CommentedMap) and "fairalloc" in tree)
    if isinstance(tree, CommentedSeq):
        _sequence_style(tree, None)
    buffer = io.StringIO()
    handler.dump(tree, buffer)
    result = buffer.getvalue()
    try:
        after = _meaning(result, file)
    except PolicyError:
        after = None  # the emitter produced YAML that does not load: treat as a change of meaning
    if after != before:
        raise FairallocError(Diagnostic(
            Code.FMT_MEANING_CHANGED,
            "formatting would change what this file means; it was left as it is",
            Location(file),
            "this is a defect in fairalloc fmt: please report it with the file",
        ))
    return result


def format_file(path: str) -> Formatted:
    """Read and format the file at ``path`` (nothing is written)."""
    text = read_text(path)
    return Formatted(path, text, format_text(text, path))
