"""The ``fairalloc`` command as users run it: formats, files, exit statuses."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
import tomllib
from decimal import Decimal
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc.cli import COMMANDS, build_parser, main
from fairalloc.cli._extras import COMMAND_EXTRAS, declared_extras, extra_providing, missing, require_extras
from fairalloc.cli._files import POLICY_KEY, TEST_KEY, find_files

from . import cli_reference
from .conftest import EXAMPLES, POLICIES, ROOT

EQUITY = str(POLICIES / "us-equity-pro-rata.yaml")
TRADE = str(EXAMPLES / "us-equity-pro-rata.trade.json")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fairalloc", *args], capture_output=True, text=True)


def test_validate_prints_identity_of_each_policy(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in POLICIES.glob("*.yaml"))
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(files)
    assert all(line.startswith("ok  ") and "sha256:" in line for line in out)


def test_validate_json_report_mixes_valid_and_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("fairalloc: 1\n")
    assert main(["validate", "--format", "json", EQUITY, str(bad)]) == 3
    report = json.loads(capsys.readouterr().out)
    assert [entry["valid"] for entry in report] == [True, False]
    assert report[1]["errors"][0]["code"] == "schema-missing-key"


def test_allocate_json_with_explanation_is_deterministic(tmp_path: Path) -> None:
    first = run("allocate", "--policy", EQUITY, "--trade", TRADE, "--explain")
    second = run("allocate", "--policy", EQUITY, "--trade", TRADE, "--explain")
    assert first.returncode == 0 and first.stdout == second.stdout
    document = json.loads(first.stdout)
    assert all("explain" in entry for entry in document["allocations"])


def test_allocate_table_for_people() -> None:
    done = run("allocate", "--policy", EQUITY, "--trade", TRADE, "--format", "table")
    assert done.returncode == 0
    assert "CLIENT-A" in done.stdout and "15000" in done.stdout and "us-equity-pro-rata@1" in done.stdout


def test_table_never_wraps_the_digest(tmp_path: Path) -> None:
    """Short account ids and no rule firing make a table narrower than the digest."""
    trade = json.loads(Path(TRADE).read_text())
    trade["order"]["quantity"] = 40000
    trade["statement"]["accounts"] = [dict(a, account=a["account"][-1]) for a in trade["statement"]["accounts"][:3]]
    (tmp_path / "t.json").write_text(json.dumps(trade))
    done = run("allocate", "--policy", EQUITY, "--trade", str(tmp_path / "t.json"), "--format", "table")
    assert done.returncode == 0, done.stderr
    digest = json.loads(run("validate", "--format", "json", EQUITY).stdout)[0]["digest"]
    assert digest in [line.strip() for line in done.stdout.splitlines()], done.stdout


def test_table_shows_the_notes_and_explain_speaks_policy_words(tmp_path: Path) -> None:
    text = Path(EQUITY).read_text().replace("absolute: 100\n", "absolute: 100000\n").replace(
        "rules:\n", "rules:\n  - {id: big-cap, when: 'account.intended > 20000', action: cap, quantity: 20000, "
        "reason: cap}\n", 1)
    policy = tmp_path / "p.yaml"
    policy.write_text(text)
    done = run("allocate", "--policy", str(policy), "--trade", TRADE, "--format", "table", "--explain")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note: ")]
    assert notes and "not applied" in notes[0]
    for name in ("us-equity-pro-rata", "limit-order-price-time", "new-issue-ipo"):
        done = run("allocate", "--policy", str(POLICIES / f"{name}.yaml"), "--trade",
                   str(EXAMPLES / f"{name}.trade.json"), "--format", "table", "--explain")
        explanations = done.stdout.split("\n\n", 1)[1]
        assert not [w for w in ("True", "False", "None", "['", "{'", "[]") if w in explanations], explanations
    explained = run("allocate", "--policy", EQUITY, "--trade", TRADE, "--format", "table", "--explain").stdout
    assert "  capped_in_water_filling: false" in explained
    assert "\nbackend: used: records, why: " in explained


def test_rotation_state_round_trip_through_files(tmp_path: Path) -> None:
    policy = str(POLICIES / "fixed-income-rotation.yaml")
    trade = str(EXAMPLES / "fixed-income-rotation.trade.json")
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"group": "fixed-income-rotation/core", "position": 0, "day": None}))
    leaders = []
    for _ in range(4):
        done = run("allocate", "--policy", policy, "--trade", trade, "--rotation", str(state),
                   "--rotation-out", str(state), "--explain")
        assert done.returncode == 0, done.stderr
        allocations = json.loads(done.stdout)["allocations"]
        leaders.append(next(a["account"] for a in allocations if a["explain"].get("rotation_position") == 0))
    assert leaders == ["FI-PENSION-1", "FI-ENDOW-2", "FI-INSUR-3", "FI-FOUND-4"]


def test_bad_rotation_state_is_an_input_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"group": "fixed-income-rotation/core", "position": -1}))
    done = run("allocate", "--policy", str(POLICIES / "fixed-income-rotation.yaml"),
               "--trade", str(EXAMPLES / "fixed-income-rotation.trade.json"), "--rotation", str(state))
    assert done.returncode == 4
    assert "error[rotation-state]" in done.stderr and "#/position" in done.stderr


@pytest.mark.parametrize("name", ["policy", "trade", "allocation"])
def test_schema_export_is_a_valid_json_schema(name: str, tmp_path: Path) -> None:
    target = tmp_path / f"{name}.json"
    assert main(["schema", name, "-o", str(target)]) == 0
    jsonschema.Draft202012Validator.check_schema(json.loads(target.read_text()))


def test_errors_as_json_for_machines() -> None:
    done = run("--error-format", "json", "allocate", "--policy", EQUITY, "--trade", "/no/such/file.json")
    assert done.returncode == 7
    payload = json.loads(done.stderr)
    assert payload["exit_code"] == 7 and payload["errors"][0]["code"] == "file-not-found"


def test_usage_errors_exit_2() -> None:
    done = run("allocate", "--policy", EQUITY)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_a_command_imports_only_what_it_needs() -> None:
    code = (
        "import sys; from fairalloc.cli import main; main(['validate', %r]);"
        "heavy = [m for m in ('sqlalchemy', 'polars', 'pydantic', 'numpy') if m in sys.modules];"
        "print('HEAVY=' + ','.join(heavy))"
    ) % EQUITY
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "HEAVY="


def test_help_lists_every_command_without_importing_them() -> None:
    code = ("import sys; from fairalloc.cli import main; main(['--help'])")
    done = subprocess.run([sys.executable, "-c", code + "\n"], capture_output=True, text=True)
    assert done.returncode == 0
    for name in COMMANDS:
        assert f"    {name}" in done.stdout
    code = ("import sys, contextlib, io\nfrom fairalloc.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: main(['--help'])\n    except SystemExit: pass\n"
            "print([m for m in sys.modules if m.startswith('fairalloc.cli.') and m.count('.') == 2])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert eval(done.stdout) == ["fairalloc.cli._extras", "fairalloc.cli._io"], done.stderr


@pytest.mark.parametrize("columns", [None, "", "x", "0", "-3", "1", "57", "200"])
def test_help_is_as_wide_as_argparse_makes_it(columns: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    from fairalloc.cli import _HelpFormatter, terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns
    assert _HelpFormatter("fairalloc")._width == argparse.HelpFormatter("fairalloc")._width  # type: ignore[attr-defined]


@pytest.mark.parametrize("before", [["-h"], ["--help"], ["--he"], ["--debug", "-h"], ["--error-format", "json", "--help"]])
def test_help_asked_before_a_command_lists_every_command(before: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A command named after the top-level --help does not shorten the listing (the other commands
    are left out of the parser only when nothing before the command can print it)."""
    with pytest.raises(SystemExit):
        main([*before, "allocate", "--policy", EQUITY, "--trade", TRADE])
    assert capsys.readouterr().out == build_parser().format_help()


@pytest.mark.parametrize("before", [[], ["--debug"], ["--error-format", "json"], ["--error-format=json"],
                                    ["--debug", "--error-format", "text"]])
def test_a_command_runs_the_same_after_the_plain_global_options(before: list[str],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*before, "allocate", "--policy", EQUITY, "--trade", TRADE]) == 0
    out = capsys.readouterr().out
    assert main(["allocate", "--policy", EQUITY, "--trade", TRADE]) == 0
    assert capsys.readouterr().out == out
    with pytest.raises(SystemExit):
        main(["allocate", "--help"])
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: fairalloc allocate ")
    with pytest.raises(SystemExit):
        main([*before, "allocate", "--help"])
    assert capsys.readouterr().out == help_text


# --- files and folders ---------------------------------------------------------------------------

POLICY_TEXT = (POLICIES / "us-equity-pro-rata.yaml").read_text()


def _policy_folder(tmp_path: Path) -> Path:
    """A folder as users keep one: policies, their tests, CI configuration, hidden editor files."""
    (tmp_path / "tests").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a.yaml").write_text(POLICY_TEXT)
    (tmp_path / "b.yml").write_text("# quoted key, flow of the rest\n'fairalloc': 1\nid: broken\n")
    (tmp_path / "ci.yaml").write_text("jobs:\n  check: {runs-on: ubuntu}\n")
    (tmp_path / "notes.txt").write_text("fairalloc: 1\n")
    (tmp_path / ".hidden" / "c.yaml").write_text(POLICY_TEXT)
    (tmp_path / "tests" / "t.yaml").write_text(
        f"policy: ../a.yaml\ncases:\n  - name: full\n    trade: {EXAMPLES / 'us-equity-pro-rata.trade.json'}\n"
        "    expect:\n      allocations: {CLIENT-A: 15000, CLIENT-B: 6000, CLIENT-C: 3000, PROPRIETARY: 6000}\n")
    return tmp_path


def test_folders_yield_files_by_their_top_level_key(tmp_path: Path) -> None:
    folder = _policy_folder(tmp_path)
    assert find_files([str(folder)], POLICY_KEY) == [str(folder / "a.yaml"), str(folder / "b.yml")]
    assert find_files([str(folder)], TEST_KEY) == [str(folder / "tests" / "t.yaml")]
    assert find_files([str(folder / "ci.yaml")], POLICY_KEY) == [str(folder / "ci.yaml")]  # named: as given


def test_validate_a_folder_checks_its_policies_only(tmp_path: Path) -> None:
    folder = _policy_folder(tmp_path)
    done = run("validate", "--format", "json", str(folder))
    assert done.returncode == 3, done.stderr
    assert [(Path(e["file"]).name, e["valid"]) for e in json.loads(done.stdout)] == [("a.yaml", True), ("b.yml", False)]


def test_validate_a_folder_without_policies_fails(tmp_path: Path) -> None:
    (tmp_path / "ci.yaml").write_text("jobs: {}\n")
    done = run("validate", str(tmp_path))
    assert done.returncode == 1 and "no policy files found" in done.stderr


def test_test_a_folder_runs_test_files_not_policies(tmp_path: Path) -> None:
    folder = _policy_folder(tmp_path)
    (folder / "b.yml").unlink()
    done = run("test", "--no-coverage", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 ok, 0 failing, 0 error(s) in 1 file(s)" in done.stdout


def test_test_and_fmt_of_the_shipped_folder() -> None:
    assert run("test", "--no-coverage", str(POLICIES)).returncode == 0
    done = run("fmt", "--check", str(POLICIES))
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_fmt_a_folder_formats_policies_and_tests(tmp_path: Path) -> None:
    folder = _policy_folder(tmp_path)
    (folder / "b.yml").unlink()
    (folder / "tests" / "t.yaml").write_text((folder / "tests" / "t.yaml").read_text().replace("cases:", "cases:   "))
    (folder / "ci.yaml").write_text("jobs:   {}\n")
    done = run("fmt", "--check", str(folder))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [f"would reformat {folder / 'tests' / 't.yaml'}"]


# --- eval ----------------------------------------------------------------------------------------

def eval_(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["eval", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(("expression", "value"), [
    ("2 * 3 + 1", "7"),
    ("7 / 2", "3.5"),
    ("1 / 3", "0.3333333333333333333333333333333333"),
    ("0.1 + 0.2", "0.3"),
    ("2.5% * 1000", "25"),
    ("0.1 + 0.2 == 0.3", "true"),
    ("round(2.675, 2)", "2.68"),
    ("'caf\u00e9'", '"café"'),
    ("coalesce(null, null, 3)", "3"),
    ("[1, 2, 3]", "[1, 2, 3]"),
    ("date(\"2026-03-02\")", '"2026-03-02"'),
    ("days_between(date(\"2026-03-02\"), timestamp(\"2026-03-09T01:00:00+05:00\"))", "6"),
])
def test_eval_prints_the_value_as_json(capsys: pytest.CaptureFixture[str], expression: str, value: str) -> None:
    assert eval_(capsys, expression) == (0, value + "\n", "")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.decimals(min_value=-10**12, max_value=10**12, places=6), min_size=1, max_size=6))
def test_eval_sums_and_products_exactly(numbers: list[Decimal]) -> None:
    text = " + ".join(f"({n}) * {i + 1}" for i, n in enumerate(numbers))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["eval", text]) == 0
    assert Decimal(out.getvalue()) == sum((n * (i + 1) for i, n in enumerate(numbers)), Decimal(0))


def test_eval_errors_are_those_of_validate(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = eval_(capsys, "account.tpye == 'retail' and")
    assert (status, out) == (3, "")
    assert err.startswith("<expr>:1:29: error[expr-syntax]")
    status, _, err = eval_(capsys, "account.id")
    assert status == 3 and "<expr>:1:1: error[expr-unknown-root]" in err and "--context" in err


def test_eval_reads_the_roots_from_the_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    context = tmp_path / "context.json"
    context.write_text(json.dumps({
        "order": {"trade_date": "2026-03-02", "entered_at": "2026-03-02T14:30:00Z", "limit_price": "100.25"},
        "account": {"id": "A", "intended": 2500, "type": "retail", "assets": 1.5, "tags": ["x"]},
        "allocation": 1200,
    }))
    at = ("--context", str(context))
    assert eval_(capsys, *at, "allocation < 1% * account.intended or account.type == 'retail'")[:2] == (0, "true\n")
    assert eval_(capsys, *at, "order.limit_price * 2 + account.assets")[:2] == (0, "202\n")
    assert eval_(capsys, *at, "days_between(order.entered_at, order.trade_date)")[:2] == (0, "0\n")
    assert eval_(capsys, *at, "len(account.tags)")[:2] == (0, "1\n")
    status, _, err = eval_(capsys, *at, "account.tpye")
    assert status == 3 and "did you mean 'account.type'?" in err
    status, _, err = eval_(capsys, *at, "account.limit_price")
    assert status == 4 and "error[expr-missing-field]" in err
    status, _, err = eval_(capsys, *at, "allocation / (account.intended - 2500)")
    assert status == 4 and "<expr>:1:12: error[expr-division-by-zero]" in err


def test_eval_types_attributes_as_a_policy_declares_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = str(POLICIES / "intraday-fill-monotone.yaml")  # declares account.assets: number
    context = tmp_path / "context.json"
    context.write_text(json.dumps({"account": {"id": "M", "intended": 10, "assets": "2000000.00"}}))
    at = ("--policy", policy, "--context", str(context))
    assert eval_(capsys, *at, "account.assets / 3")[:2] == (0, "666666.6666666666666666666666666667\n")
    # without the policy the same text is a string, and arithmetic on it a type error
    assert eval_(capsys, "--context", str(context), "account.assets / 3")[0] == 3
    context.write_text(json.dumps({"account": {"proprietary": True}}))
    equity = ("--policy", str(POLICIES / "us-equity-pro-rata.yaml"), "--context", str(context))
    assert eval_(capsys, *equity, "account.fee_basis")[:2] == (0, '"standard"\n')  # the declared default
    context.write_text(json.dumps({"account": {"fee_basis": "hourly", "proprietary": "yes", "nick": 1}}))
    status, _, err = eval_(capsys, *equity, "1")
    assert status == 4 and err.count("error[") == 3
    assert "'hourly' is not one of standard, performance" in err and "'account' has no field 'nick'" in err


def test_eval_refuses_a_malformed_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    context = tmp_path / "context.json"
    context.write_text(json.dumps({"acount": {}, "order": {"trade_date": 5, "id": None, "nickname": "x"},
                                   "account": {"nested": {"a": 1}}, "allocation": "many"}))
    status, _, err = eval_(capsys, "--context", str(context), "1")
    assert status == 4
    assert [line.split(": ")[1] for line in err.splitlines() if "error[" in line] == [
        "error[context-unknown-root]", "error[context-value]", "error[context-value]",
        "error[context-unknown-field]", "error[context-value]", "error[context-value]"]
    assert f"{context}#/acount:" in err and "did you mean 'account'?" in err and f"{context}#/order/trade_date:" in err
    context.write_text("[1, 2]")
    assert eval_(capsys, "--context", str(context), "1")[0] == 4


@pytest.mark.parametrize("text", ["1e999999999", "1e-999999999", "9" * 31, "1" * 101, "NaN", "-Infinity", "sNaN",
                                  " 5", "1_000", "\uff15", "0x10"])
def test_eval_holds_a_context_number_text_to_the_input_limits(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    # '1e999999999' was taken as a number: 'allocation * 2' then overflowed (exit 70) and
    # 'floor(allocation)' built a billion-digit integer. Number texts are bounded as in a trade.
    context = tmp_path / "context.json"
    context.write_text(json.dumps({"allocation": text}))
    status, out, err = eval_(capsys, "--context", str(context), "allocation * 2")
    assert (status, out) == (4, "")
    assert err.startswith(f"{context}#/allocation: error[context-value]: ")


def test_eval_context_numbers_in_range_are_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    context = tmp_path / "context.json"
    context.write_text(json.dumps({"allocation": "-1.5E+3", "account": {"assets": "0.125"}}))
    assert eval_(capsys, "--context", str(context), "allocation")[:2] == (0, "-1500\n")
    policy = str(POLICIES / "intraday-fill-monotone.yaml")
    assert eval_(capsys, "--policy", policy, "--context", str(context), "account.assets * 8")[:2] == (0, "1\n")


def test_eval_refuses_context_text_that_cannot_be_printed(tmp_path: Path) -> None:
    # A lone surrogate escape in the context became text that no UTF-8 stream can carry:
    # printing 'account.type' ended in a UnicodeEncodeError (exit 70).
    context = tmp_path / "context.json"
    context.write_text('{"account": {"type": "\\ud800", "\\udfffx": 1, "ok": "\\ud83d\\ude00"}}')
    done = run("eval", "--context", str(context), "account.type")
    assert done.returncode == 4, done.stderr
    assert f"{context}#/account/type: error[context-value]" in done.stderr
    assert done.stderr.count("error[context-value]") == 2 and "Traceback" not in done.stderr
    done = run("eval", "'\\ud800'")
    assert done.returncode == 3 and "<expr>:1:2: error[expr-syntax]" in done.stderr


# --- conventions ---------------------------------------------------------------------------------

def _parsers(parser: argparse.ArgumentParser, path: str = "fairalloc") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for name, child in cli_reference._subcommands(parser).items():
        found += _parsers(child, f"{path} {name}")
    return found


def test_json_output_is_spelled_format_json_everywhere() -> None:
    for path, parser in _parsers(build_parser(COMMANDS)):
        options = {option for action in parser._actions for option in action.option_strings}
        assert "--json" not in options, path
        for action in parser._actions:
            if action.choices and "json" in action.choices and path != "fairalloc":
                assert action.option_strings == ["--format"], path


def test_version_is_the_installed_distributions() -> None:
    done = run("--version")
    assert (done.returncode, done.stdout) == (0, f"fairalloc {metadata.version('fairalloc')}\n")


def test_bash_completion_is_a_valid_script_of_every_command(tmp_path: Path) -> None:
    done = run("completion", "bash")
    assert done.returncode == 0, done.stderr
    script = tmp_path / "fairalloc.bash"
    script.write_text(done.stdout)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    for name in COMMANDS:
        assert name in done.stdout
    assert "--error-format" in done.stdout and "--check" in done.stdout and "--impact-ledger" in done.stdout
    # completing after 'fairalloc fmt --' offers fmt's options, from the generated script
    probe = (f"source {script}; COMP_WORDS=(fairalloc fmt --); COMP_CWORD=2; COMP_LINE='fairalloc fmt --'; "
             "COMP_POINT=${#COMP_LINE}; _shtab_fairalloc; printf '%s\\n' \"${COMPREPLY[@]}\"")
    offered = subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout.split()
    assert {"--check", "--diff"} <= set(offered), offered


def test_zsh_completion_names_every_command() -> None:
    done = run("completion", "zsh")
    assert done.returncode == 0 and done.stdout.startswith("#compdef fairalloc")
    assert all(name in done.stdout for name in COMMANDS)
    if shutil.which("zsh"):
        assert subprocess.run(["zsh", "-n"], input=done.stdout, text=True).returncode == 0


def test_every_command_with_an_extra_is_a_command_and_every_extra_is_declared() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(COMMAND_EXTRAS) <= set(COMMANDS)
    assert {extra for extras in COMMAND_EXTRAS.values() for extra in extras} <= set(declared)
    # the check reads only 'extra == ...' markers: another environment marker would be ignored by it
    assert not [r for extra in declared.values() for r in extra if ";" in r]


def test_missing_extra_names_what_to_install() -> None:
    requirements = ["pyyaml>=6", "no-such-distribution-x>=1; extra == 'x'", "pyyaml; extra == 'x'",
                    "fairalloc[x,z]; extra == 'y'", "also-absent[binary]>=3; extra == 'z'"]
    declared = declared_extras(requirements)
    assert set(declared) == {"x", "y", "z"}  # the core's requirement (no marker) is no extra's
    assert declared["y"] == [("fairalloc", ("x", "z"))] and declared["z"] == [("also-absent", ("binary",))]
    assert missing(declared, "x") == ["no-such-distribution-x"]
    assert missing(declared, "y") == ["no-such-distribution-x", "also-absent"]
    assert missing(declared, "undeclared") == []
    require_extras("the ledger", "ledger", "review", "postgres")  # all installed here: no error
    # the refusal itself, from an installation without the extras: tests/test_packaging.py


@pytest.mark.parametrize(("module", "extra"), [
    ("polars", "review"), ("sqlalchemy.orm", "ledger"), ("alembic", "ledger"), ("psycopg", "postgres"),
    ("yaml", None), ("fairalloc.nothing", None), (None, None),
])
def test_the_smallest_extra_bringing_a_module(module: str | None, extra: str | None) -> None:
    assert extra_providing(module) == extra


def test_an_extra_needed_by_one_option_is_named_when_its_import_fails() -> None:
    """The ledger on PostgreSQL with only fairalloc[ledger] installed: psycopg cannot be imported."""
    code = ("import sys; sys.modules['psycopg'] = None\nfrom fairalloc.cli import main\n"
            "sys.exit(main(['ledger', 'verify', '--ledger', 'postgresql://nobody@127.0.0.1:1/none']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 69, done.stderr
    assert done.stderr.splitlines() == [
        "error[missing-extra]: 'fairalloc ledger' needs the optional extra 'postgres', not installed (missing: psycopg)",
        "  hint: pip install 'fairalloc[postgres]'"]


def test_docs_cli_reference_is_the_help_of_every_command() -> None:
    """docs/cli.md ends with every command's --help; regenerate: python -m tests.cli_reference"""
    with contextlib.redirect_stdout(io.StringIO()):
        reference = cli_reference.render()
    page = cli_reference.PAGE.read_text(encoding="utf-8")
    assert cli_reference.page_with(reference) == page, "docs/cli.md is stale: run python -m tests.cli_reference"
    for path, _ in _parsers(build_parser(COMMANDS)):
        assert f"$ {path} --help\n" in page
