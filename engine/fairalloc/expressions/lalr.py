"""The expression parser at run time: Lark's LALR(1) tables and contextual lexer, driven without
importing Lark.

Importing Lark (its grammar loader, Earley and CYK parsers, logging, pickle, tempfile ...) cost a
``fairalloc allocate`` process a sixth of its start-up, for a parser whose every table
Lark computes once from the grammar. :func:`.grammar.tables` takes those tables out of the Lark
parser built from ``grammar/fairalloc.lark``, as plain data: the terminals' patterns; per parser
state, the lexer Lark would use there (its terminals in Lark's order of preference) and the parse
actions; per rule, how Lark would build its tree (``keep_all_tokens``, rules named ``_x``
inlined, ``?rule`` expanded when it has one child). :class:`Parser` runs them with Lark's
semantics: the tokens, the tree and, on failure, where it stopped and which terminals the parser
would accept there (Lark's ``interactive_parser.accepts()``). ``tests/expressions/test_lalr.py``
holds it to Lark's own parser on generated texts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

END = "$END"
"""The terminal fed after the last token."""


class Token:
    """A token: its terminal's name, its text and the offset where it starts."""

    __slots__ = ("type", "value", "start_pos")

    def __init__(self, type: str, value: str, start_pos: int) -> None:
        self.type = type
        self.value = value
        self.start_pos = start_pos

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {self.value!r}, {self.start_pos})"


class Tree:
    """A node: the rule's name (its alias if it has one) and its children, trees and tokens."""

    __slots__ = ("data", "children")

    def __init__(self, data: str, children: list[Tree | Token]) -> None:
        self.data = data
        self.children = children

    def __repr__(self) -> str:
        return f"Tree({self.data!r}, {self.children!r})"


class UnexpectedInput(Exception):
    """Parsing stopped at ``pos``: on a character no terminal matches (``token`` is None), or on a
    ``token`` the grammar does not allow there (of type :data:`END` at the end of the text).
    ``accepted`` are the terminals the parser would have taken instead."""

    def __init__(self, pos: int, token: Token | None, accepted: set[str]) -> None:
        super().__init__(f"unexpected {'character' if token is None else token.type} at {pos}")
        self.pos = pos
        self.token = token
        self.accepted = accepted


class _Lexer:
    """One state's lexer: the first of its terminals, in Lark's order, that matches (as Lark's
    scanner, one alternation of them all, finds it), then the string terminal the text spells if
    the terminal stands for some (Lark's "unless" callbacks), then the user's callback.

    Each terminal's pattern is compiled once per process, when a lexer first tries it: compiling
    the alternation of every lexer a policy's expressions pass through, as Lark does, was most of
    the time spent parsing them. A pattern that spells one string (``and``, ``\\(``) is not compiled
    at all: it matches where the text continues with that string."""

    __slots__ = ("order", "ignore", "unless", "_patterns")

    def __init__(self, order: list[str], ignore: list[str], unless: Mapping[str, Mapping[str, str]],
                 patterns: _Patterns) -> None:
        self.order = order
        self.ignore = frozenset(ignore)
        self.unless = unless
        self._patterns = patterns

    def next_token(self, text: str, pos: int, callbacks: Mapping[str, Callable[[Token], Token]]) -> Token | None:
        """The next token from ``pos``, ignored text skipped; None at the end of the text."""
        while pos < len(text):
            for kind in self.order:
                value = self._patterns.match(kind, text, pos)
                if value is not None:
                    break
            else:
                raise _NoMatch(pos)
            if kind in self.ignore:
                pos += len(value)
                continue
            token = Token(kind, value, pos)
            strings = self.unless.get(kind)
            if strings is not None:
                token.type = strings.get(value, kind)
            callback = callbacks.get(kind)
            if callback is not None and token.type == kind:
                token = callback(token)
            return token
        return None


_META = frozenset(".^$*+?{}[]|()")


def literal(pattern: str) -> str | None:
    """The one string ``pattern`` matches, if it is a plain string (metacharacters escaped)."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            if char.isalnum():
                return None  # a class or an anchor such as \\d, \\b
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in _META:
            return None
        else:
            out.append(char)
    return None if escaped or not out else "".join(out)


class _Patterns:
    """The terminals' patterns, each made when first asked for: a plain string as itself, any
    other pattern compiled."""

    __slots__ = ("sources", "made")

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = sources
        self.made: dict[str, str | re.Pattern[str]] = {}

    def match(self, name: str, text: str, pos: int) -> str | None:
        """The text terminal ``name`` matches at ``pos``, or None."""
        pattern = self.made.get(name)
        if pattern is None:
            source = self.sources[name]
            pattern = self.made[name] = literal(source) or re.compile(source)
        if isinstance(pattern, str):
            return pattern if text.startswith(pattern, pos) else None
        found = pattern.match(text, pos)
        return None if found is None else found.group(0)


class _NoMatch(Exception):
    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.pos = pos


class Parser:
    """The parser of :func:`.grammar.tables`' data, with ``callbacks`` by terminal name (applied to
    each token of that terminal, as Lark's ``lexer_callbacks``)."""

    def __init__(self, tables: Mapping[str, Any], callbacks: Mapping[str, Callable[[Token], Token]]) -> None:
        patterns = _Patterns(tables["terminals"])
        self._lexers = [_Lexer(order, ignore, unless, patterns) for order, ignore, unless in tables["lexers"]]
        self._root = self._lexers[tables["root_lexer"]]
        self._state_lexer: list[int] = tables["state_lexer"]
        self._actions: list[dict[str, int]] = tables["actions"]
        self._rules: list[tuple[str, str, bool, tuple[bool, ...]]] = tables["rules"]
        self._start: int = tables["start"]
        self._end: int = tables["end"]
        self._callbacks = callbacks

    def parse(self, text: str) -> Tree | Token:
        """The tree of ``text``; :class:`UnexpectedInput` where it cannot be parsed."""
        states = [self._start]
        values: list[Tree | Token] = []
        pos = 0
        token: Token | None = None
        while True:
            lexer = self._lexers[self._state_lexer[states[-1]]]
            try:
                following = lexer.next_token(text, pos, self._callbacks)
            except _NoMatch as error:
                # as Lark's contextual lexer: a terminal of another state is an unexpected token
                try:
                    other = self._root.next_token(text, error.pos, self._callbacks)
                except _NoMatch:
                    raise UnexpectedInput(error.pos, None, self._accepts(states)) from None
                assert other is not None
                raise UnexpectedInput(other.start_pos, other, self._accepts(states)) from None
            if following is None:
                break
            token = following
            pos = token.start_pos + len(token.value)
            self._feed(states, values, token)
        end = Token(END, "", token.start_pos if token is not None else 0)
        self._feed(states, values, end)
        return values[-1]

    def _feed(self, states: list[int], values: list[Tree | Token] | None, token: Token) -> None:
        """Feed one token: reduce as the tables say, then shift it (or, at the end, stop in the end
        state). ``values`` None: only the states move (what :meth:`_accepts` tries)."""
        actions, rules = self._actions, self._rules
        is_end = token.type == END
        while True:
            action = actions[states[-1]].get(token.type)
            if action is None:
                if values is None:
                    raise _NoMatch(token.start_pos)
                raise UnexpectedInput(token.start_pos, token, self._accepts(states))
            if action >= 0:
                assert not is_end
                states.append(action)
                if values is not None:
                    values.append(token)
                return
            name, origin, expand1, inlined = rules[-action - 1]
            size = len(inlined)
            if values is not None:
                children: list[Tree | Token] = []
                if size:
                    for child, inline in zip(values[-size:], inlined):
                        if inline:
                            assert isinstance(child, Tree)
                            children.extend(child.children)
                        else:
                            children.append(child)
                    del values[-size:]
                values.append(children[0] if expand1 and len(children) == 1 else Tree(name, children))
            if size:
                del states[-size:]
            states.append(actions[states[-1]][origin])
            if is_end and states[-1] == self._end:
                return

    def _accepts(self, states: list[int]) -> set[str]:
        """The terminals the parser would take in the state ``states`` ends in (each tried on a
        copy of the stack, through the reductions it causes)."""
        accepted = set()
        for kind in self._actions[states[-1]]:
            if kind.isupper():
                try:
                    self._feed(list(states), None, Token(kind, "", 0))
                except _NoMatch:
                    continue
                accepted.add(kind)
        return accepted
