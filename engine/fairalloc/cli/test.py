"""``fairalloc test [PATH...]``: run policy test files; print results, rule coverage, JUnit XML.

Exit status: 0 when every case passed, 1 (``CHECK_FAILED``) when a case failed or a test file or
its policy could not be loaded (each is reported with its location and still counted in JUnit).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from fairalloc.cli._files import TEST_KEY, find_files
from fairalloc.cli._io import dump_json, print_table, write_output
from fairalloc.errors import ExitCode
from fairalloc.review.coverage import PolicyCoverage, measure
from fairalloc.review.junit import junit_xml
from fairalloc.review.policytest import SuiteResult, run_file

DEFAULT_PATH = "policies/tests"


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "test",
        help="run policy tests, with rule coverage",
        description="Run policy test files (YAML: trade, optional rotation state, expected allocations and "
        "exceptions). Folders are searched for test files: YAML files with a top-level 'cases' key.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", default=[DEFAULT_PATH],
                        help=f"test files or directories (default: {DEFAULT_PATH})")
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML here (for CI systems)")
    parser.add_argument("--coverage-json", metavar="FILE", help="write rule coverage as JSON here")
    parser.add_argument("--no-coverage", action="store_true", help="do not print the coverage table")
    parser.set_defaults(handler=run)


def coverage_by_policy(results: Sequence[SuiteResult]) -> dict[str, PolicyCoverage]:
    """Coverage of each tested policy (keyed by its file) over all cases that test it."""
    grouped: dict[str, list[SuiteResult]] = {}
    for result in results:
        if result.policy is not None:
            grouped.setdefault(result.policy.file, []).append(result)
    coverage = {}
    for file, suites in grouped.items():
        outcomes = [outcome for suite in suites for outcome in suite.results]
        allocations = [o.allocation for o in outcomes if o.allocation is not None]
        refusals = [o.refused for o in outcomes if o.refused]
        policy = suites[0].policy
        assert policy is not None
        coverage[file] = measure(policy, allocations, refusals)
    return coverage


def _print_results(results: Sequence[SuiteResult]) -> None:
    for suite in results:
        for diagnostic in suite.errors:
            print(f"ERROR {diagnostic.render()}")
        for outcome in suite.results:
            label = {"passed": "ok   ", "failed": "FAIL ", "error": "ERROR"}[outcome.status]
            print(f"{label} {suite.path} :: {outcome.case.name}")
            for message in outcome.messages:
                print(f"      {message}")


def _print_coverage(coverage: dict[str, PolicyCoverage]) -> None:
    rows = []
    for item in coverage.values():
        for branch in item.branches:
            rows.append((item.policy, branch.target, branch.branch, str(branch.cases) if branch.covered else "NOT COVERED"))
    print_table("Rule coverage", ("policy", "target", "branch", "cases"), rows, right=(3,))
    for item in coverage.values():
        if item.untested_rules:
            print(f"{item.policy}: rule(s) no test fired: {', '.join(item.untested_rules)}")


def run(args: argparse.Namespace) -> int:
    results = [run_file(path) for path in find_files(args.paths, TEST_KEY)]
    coverage = coverage_by_policy(results)
    _print_results(results)
    cases = sum(len(r.results) for r in results)
    failed = sum(r.count("failed") for r in results)
    errors = sum(r.count("error") + (1 if r.errors else 0) for r in results)
    seconds = sum(r.seconds for r in results)
    if not args.no_coverage and coverage:
        _print_coverage(coverage)
    print(f"policy tests: {cases - failed - sum(r.count('error') for r in results)} ok, {failed} failing, "
          f"{errors} error(s) in {len(results)} file(s), {seconds:.2f}s")
    if args.junit:
        write_output(junit_xml(results, coverage), args.junit)
    if args.coverage_json:
        write_output(dump_json([item.to_json() for item in coverage.values()]), args.coverage_json)
    if not results:
        print(f"no test files found in {', '.join(args.paths)}")
    return int(ExitCode.CHECK_FAILED if failed or errors or not results else ExitCode.OK)
