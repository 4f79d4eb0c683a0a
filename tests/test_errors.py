"""The registry of error codes (``fairalloc.errors.Code``) against the code base and the docs.

Every code the package can report is found by reading its source: the first argument of each
call to a function that reports one (``Diagnostic(code, ...)``, a stage's ``error(code, ...)``,
the ledger's ``_refused``/``_conflict``, the controls' ``refuse``, the expression checker's
``problem``/``Problem``, the run-time ``fail(site, code, ...)``) when it is a string, and every
``Code.NAME`` used. Each must be registered, and the registry must be the table in
``docs/cli.md``, each code linking to a section that exists.
"""

from __future__ import annotations

import ast
import copy
import json
import pickle
import re
from pathlib import Path

import pytest

from fairalloc.errors import Code, ExitCode, FairallocError, InputError, PolicyError, RefusedError, suggest

from .conftest import ROOT

PACKAGE = ROOT / "engine" / "fairalloc"
DOCS = ROOT / "docs"
_REPORTERS = {"Diagnostic", "error", "_error", "_refused", "_conflict", "refuse", "problem", "Problem", "bad"}
_CODE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)+|[a-z]+(\.[a-z0-9]+(_[a-z0-9]+)*)+")
#: Dotted codes (``forensics.missing_value``) are written once, as their ``Code`` member.
_DOTTED = {code.value for code in Code if "." in code.value}


def raised_codes() -> dict[str, set[str]]:
    """Every code written in the package's source, with the files it is written in."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            texts: list[ast.expr] = []
            if isinstance(node, ast.Call):
                function = node.func
                name = function.id if isinstance(function, ast.Name) else getattr(function, "attr", "")
                if name in _REPORTERS and node.args:
                    texts.append(node.args[0])
                if name == "fail" and len(node.args) > 1:
                    texts.append(node.args[1])
            for text in texts:
                if isinstance(text, ast.Constant) and isinstance(text.value, str) and _CODE.fullmatch(text.value):
                    found.setdefault(text.value, set()).add(str(path.relative_to(ROOT)))
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "Code" and node.attr.isupper()):
                found.setdefault(Code[node.attr].value, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_scan_finds_the_codes_of_every_stage() -> None:
    found = raised_codes()
    for code in ("yaml-syntax", "schema-unknown-key", "expr-syntax", "expr-null", "json-too-deep",
                 "trade-account-lookalike", "zero-quantity", "ledger-conflict", "policytest-cases"):
        assert code in found, code
    assert len(found) > 150


def test_the_scan_finds_dotted_codes() -> None:
    found = raised_codes()
    for code in ("forensics.missing_value", "forensics.bad_decimal", "forensics.no_usable_rows",
                 "forensics.too_large", "forensics.write_failed", "forensics.malformed_parquet"):
        assert code in found, code
    assert _CODE.fullmatch("forensics.no_usable_rows") and not _CODE.fullmatch("forensics.md.")


def test_dotted_codes_are_not_spelled_out_in_the_package() -> None:
    prefixes = {code.split(".")[0] + "." for code in _DOTTED}
    partial = re.compile("(" + "|".join(re.escape(p) for p in prefixes) + r")[a-z0-9_]*")
    spelled: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = None
            if isinstance(node, ast.Constant) and node.value in _DOTTED:
                text = str(node.value)
            elif (isinstance(node, ast.JoinedStr) and node.values  # f"forensics.bad_{kind}"
                  and isinstance(node.values[0], ast.Constant)
                  and partial.fullmatch(str(node.values[0].value))):
                text = ast.unparse(node)
            if text is not None:
                spelled.setdefault(text, set()).add(str(path.relative_to(ROOT)))
    assert not spelled, f"use the Code member instead: {spelled}"


def test_every_code_raised_anywhere_is_registered() -> None:
    registered = {code.value for code in Code}
    missing = {code: sorted(files) for code, files in raised_codes().items() if code not in registered}
    assert not missing, f"codes raised but not in fairalloc.errors.Code: {missing}"


def _registry_table() -> list[tuple[str, str, str]]:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    section = text.split("### Every error code", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9._-]+)` \| (\d+) \| \[[^\]]+\]\(([^)]+)\) \|$", section, re.MULTILINE)


def test_the_docs_list_the_registry_exactly() -> None:
    def link(anchor: str) -> str:  # links within cli.md are written as #section
        return anchor.removeprefix("cli.md")

    table = _registry_table()
    assert table == [(code.value, str(int(code.exit)), link(code.anchor)) for code in Code]


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown page."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


@pytest.mark.parametrize("anchor", sorted({code.anchor for code in Code}))
def test_every_docs_anchor_exists(anchor: str) -> None:
    page, _, section = anchor.partition("#")
    assert section in _anchors(DOCS / page), anchor


@pytest.mark.parametrize("error, status", [
    (PolicyError, ExitCode.INVALID_POLICY), (InputError, ExitCode.INVALID_INPUT),
    (RefusedError, ExitCode.REFUSED),
])
def test_codes_of_a_family_carry_the_status_their_error_exits_with(error: type[FairallocError],
                                                                   status: ExitCode) -> None:
    families = {ExitCode.INVALID_POLICY: ("yaml-", "schema-", "rule-"),
                ExitCode.INVALID_INPUT: ("json-", "trade-"), ExitCode.REFUSED: ("zero-", "pretrade-", "rotation-out-")}
    for code in Code:
        if code.value.startswith(families[status]):
            assert code.exit == status == error.exit_code, code


def test_a_code_is_its_text() -> None:
    code: str = Code.YAML_SYNTAX
    assert code == "yaml-syntax" and f"{code}" == "yaml-syntax" and json.dumps(code) == '"yaml-syntax"'
    assert Code("json-too-deep") is Code.JSON_TOO_DEEP  # type: ignore[call-arg]  # by value, as tools look codes up


def test_a_code_behaves_as_an_enumeration_member() -> None:
    code = Code.JSON_TOO_DEEP
    assert repr(code) == "<Code.JSON_TOO_DEEP: 'json-too-deep'>" and code.name == "JSON_TOO_DEEP"
    assert code.value == "json-too-deep" and type(code.value) is str and type(str(code)) is str
    assert Code["JSON_TOO_DEEP"] is code and code in list(Code) and len(Code) == len(list(Code))
    assert copy.copy(code) is code and copy.deepcopy(code) is code and pickle.loads(pickle.dumps(code)) is code
    assert isinstance(code, Code) and isinstance(code, str) and hash(code) == hash("json-too-deep")
    with pytest.raises(ValueError, match="'no-such-code' is not a valid Code"):
        Code("no-such-code")  # type: ignore[call-arg]
    assert len({code.value for code in Code}) == len(Code)


def test_one_did_you_mean() -> None:
    assert suggest("tie_brake", ["tie_break", "lot", "method"]) == "tie_break"
    assert suggest("xyz", ["tie_break", "lot"]) is None
