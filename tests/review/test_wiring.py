"""The pre-commit hooks and the example CI workflow call commands and options that exist."""

from __future__ import annotations

import shlex

import yaml

from fairalloc.cli import COMMANDS, build_parser

from ..conftest import ROOT


def _parses(command: str) -> None:
    words = shlex.split(command)
    assert words[0] == "fairalloc" and words[1] in COMMANDS, command
    args = ["policies/x.yaml" if "$" in w or "*" in w else w for w in words[1:]]  # shell variables, globs
    if words[1] in ("validate", "fmt") and all(w.startswith("-") for w in args[1:]):
        args.append("policies/x.yaml")  # pre-commit passes the file names
    build_parser([words[1]]).parse_args(args)


def test_pre_commit_hooks() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {hook["id"] for hook in hooks} == {"fairalloc-validate", "fairalloc-fmt", "fairalloc-fmt-check", "fairalloc-test"}
    for hook in hooks:
        assert {"id", "name", "entry", "language"} <= set(hook)
        _parses(hook["entry"])


def test_example_ci_workflow() -> None:
    workflow = yaml.safe_load((ROOT / "docs" / "ci" / "policy-review.yml").read_text())
    runs = [step["run"] for step in workflow["jobs"]["review"]["steps"] if "run" in step]
    commands = [line.strip().rstrip("\\").strip() for run in runs for line in run.replace("\\\n", " ").splitlines()
                if line.strip().startswith("fairalloc ")]
    assert {c.split()[1] for c in commands} == {"validate", "fmt", "test", "diff"}
    for command in commands:
        _parses(command)
