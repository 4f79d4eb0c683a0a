"""The canonical text of a policy's strings, which policy digests are taken over, stays the same."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fairalloc.compile import canonical_json


def escaped(text: str) -> str:
    """The canonical form's rule, character by character: quote and backslash escaped, control
    characters as ``\\u00XX``, every other character as it is."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@given(st.text(alphabet=st.characters(codec=None) | st.sampled_from('"\\\x00\x1f\x7f\x85\xa0\u2028\U0001f600')))
def test_strings(text: str) -> None:
    assert canonical_json(text) == escaped(text)


@given(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=4))
def test_mappings_sorted_by_key(mapping: dict[str, str]) -> None:
    items = ",".join(f"{escaped(k)}:{escaped(v)}" for k, v in sorted(mapping.items()))
    assert canonical_json(mapping) == "{" + items + "}"
