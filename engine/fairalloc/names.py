"""One rule for the names people and systems compare: user names, roles and account ids.

A record that decides "is the approver the requester?" or "is this the same account?" must not be
fooled by text that looks the same and is not: ``trader.kim`` followed by a zero-width space, a
Cyrillic ``а`` inside a Latin account id, a full-width digit. Every such comparison goes through
:func:`normalise`, which returns the one canonical form of a name or says why there is none:

1. Unicode NFKC (compatibility forms folded: full-width ``Ｋ`` is ``K``), then case folding —
   for user names and roles only; account ids keep their case, since OMS account ids are
   case-sensitive keys, but are NFKC-folded and checked the same way;
2. no control, format (zero-width, bidirectional override), surrogate, private-use or unassigned
   characters, and no white space at either end;
3. letters from one script only (digits and ``. _ - @ : | +`` go with any script), so a look-alike
   that mixes Latin with Cyrillic or Greek is refused instead of becoming a second identity.

The contract: ``normalise(x) == normalise(y)`` exactly when the two are meant as the same name;
a refusal is a :class:`NameProblem` with a stable code, never a silent change.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 256


class NameProblem(Exception):
    """Why a text is not an acceptable name: a stable ``code`` and a human ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


def _script(char: str) -> str | None:
    """The script of a letter, from its Unicode name's first word (LATIN, CYRILLIC, GREEK, CJK…)."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def normalise(text: str, *, fold_case: bool = True) -> str:
    """The canonical form of ``text`` as a name, or :class:`NameProblem` saying why it is not one."""
    if not text:
        raise NameProblem("name-empty", "a name must not be empty")
    if len(text) > MAX_NAME_LENGTH:
        raise NameProblem("name-too-long", f"a name is at most {MAX_NAME_LENGTH} characters")
    folded = unicodedata.normalize("NFKC", text)
    if fold_case:
        folded = unicodedata.normalize("NFKC", folded.casefold())
    if folded != folded.strip():
        raise NameProblem("name-space", f"{escape(text)} begins or ends with white space")
    scripts: set[str] = set()
    for char in folded:
        category = unicodedata.category(char)
        if category[0] == "C":  # Cc control, Cf format (zero-width), Cs, Co, Cn
            raise NameProblem(
                "name-invisible",
                f"{escape(text)} contains the invisible or control character U+{ord(char):04X}",
            )
        if category[0] == "Z" and char != " ":
            raise NameProblem("name-space", f"{escape(text)} contains the space character U+{ord(char):04X}")
        script = _script(char)
        if script is not None:
            scripts.add(script)
    if len(scripts) > 1:
        raise NameProblem(
            "name-mixed-script",
            f"{escape(text)} mixes letters of the {', '.join(sorted(scripts))} scripts (a look-alike)",
        )
    return folded


def escape(text: str) -> str:
    """``text`` quoted for a message or an export, with control and invisible characters shown as
    ``\\uXXXX`` so that what a reader sees is what is stored."""
    shown = "".join(
        char if unicodedata.category(char)[0] != "C" else f"\\u{ord(char):04x}" for char in text
    )
    return f"'{shown}'"
