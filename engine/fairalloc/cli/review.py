"""``fairalloc review``: forensic review of allocation history for unfair patterns.

Thin shell over :mod:`fairalloc.forensics`: reads the history files, runs the review, prints the
ranked findings, and writes the findings JSON and the HTML report (each all-or-nothing).
Exit status: 0 clean (every test ran, nothing flagged), 1 at least one finding flagged, 8 nothing
flagged but a test could not run (never a clean bill), 2 bad command line, 3 invalid --policy,
4 malformed input, 7 unreadable or unwritable file.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fairalloc.errors import ExitCode
from fairalloc.forensics import groups
from fairalloc.forensics.review import STAGES, ReviewConfig, run
from fairalloc.forensics.summary import print_summary
from fairalloc.forensics.tests_stats import DEFAULT_WORK_BUDGET
from fairalloc.forensics.write import write_outputs


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "review",
        help="find cherry-picking and unfair allocation patterns in allocation history",
        description="Forensic review of allocation history (see docs/forensics.md).",
    )
    parser.add_argument("history", type=pathlib.Path, nargs="?", default=None,
                        help="folder with allocations.csv, prices.csv and optional overrides.csv "
                        "(or the same names as .parquet)")
    parser.add_argument("--allocations", type=pathlib.Path, help="allocations file")
    parser.add_argument("--prices", type=pathlib.Path, help="closing prices file")
    parser.add_argument("--overrides", type=pathlib.Path, help="overrides and memos file")
    parser.add_argument("--favoured", default=groups.EACH_ACCOUNT,
                        help="favoured group, e.g. 'attr.fee_basis == \"performance\"', "
                        "'attr.proprietary', or each-account (default: each-account)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--draws", type=int, default=100_000,
                        help="Monte Carlo re-allocations (default 100000)")
    parser.add_argument("--alpha", type=float, default=0.001,
                        help="flag threshold on p (or q for scans) (default 0.001)")
    parser.add_argument("--work-budget", type=int, default=DEFAULT_WORK_BUDGET,
                        help="most Monte Carlo element operations per test")
    parser.add_argument("--market-timezone", default="America/New_York")
    parser.add_argument("--market-close", default="16:00", help="local close time HH:MM")
    parser.add_argument("--policy", type=pathlib.Path,
                        help="policy file whose deadline the records are judged against "
                        "(default deadline: the market close)")
    parser.add_argument("--grace-minutes", type=int, default=30,
                        help="minutes after the deadline before a record counts as late "
                        "(default 30)")
    parser.add_argument("--strict", action="store_true",
                        help="refuse the run (exit 4) on any bad row instead of counting it")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("fairalloc-review"),
                        help="folder for findings.json and report.html")
    parser.add_argument("--progress", action="store_true",
                        help="show a progress bar even when stderr is not a terminal")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.set_defaults(handler=handle)


def _path(explicit: pathlib.Path | None, folder: pathlib.Path | None, name: str,
          optional: bool = False) -> pathlib.Path | None:
    """The file given, else ``folder/name.csv``, else ``folder/name.parquet`` if only it exists."""
    if explicit is not None:
        return explicit
    if folder is None:
        return None
    candidate = folder / f"{name}.csv"
    parquet = folder / f"{name}.parquet"
    if not candidate.exists() and parquet.exists():
        return parquet
    if optional and not candidate.exists():
        return None
    return candidate


def handle(args: argparse.Namespace) -> int:
    allocations = _path(args.allocations, args.history, "allocations")
    prices = _path(args.prices, args.history, "prices")
    if allocations is None or prices is None:
        print("fairalloc review: give a history folder or --allocations and --prices",
              file=sys.stderr)
        return int(ExitCode.USAGE)
    if (args.draws < 0 or not 0.0 < args.alpha < 1.0 or args.work_budget < 1
            or args.grace_minutes < 0):
        print("fairalloc review: --draws and --grace-minutes must be >= 0, --alpha between 0 "
              "and 1, --work-budget positive", file=sys.stderr)
        return int(ExitCode.USAGE)
    config = ReviewConfig(
        allocations=allocations,
        prices=prices,
        overrides=_path(args.overrides, args.history, "overrides", optional=True),
        favoured=args.favoured,
        seed=args.seed,
        draws=args.draws,
        alpha=args.alpha,
        strict=args.strict,
        market_timezone=args.market_timezone,
        market_close=args.market_close,
        grace_minutes=args.grace_minutes,
        work_budget=args.work_budget,
        policy=args.policy,
    )
    show = (args.progress or sys.stderr.isatty()) and not args.quiet
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), disable=not show, transient=True) as progress:
        task = progress.add_task("reviewing", total=len(STAGES))
        review = run(config, lambda stage: progress.update(task, advance=1, description=stage))
    json_path, html_path = write_outputs(review, args.out)
    if not args.quiet:
        console = Console()
        print_summary(review, console)
        console.print(f"findings: {json_path}\nreport:   {html_path}")
    status = ExitCode(review.exit_code)
    if status == ExitCode.NOT_TESTED:
        untested = ", ".join(f.id for f in review.findings if not f.tested)
        print(f"fairalloc review: warning: nothing flagged, but these tests could not run: "
              f"{untested}; this is not a clean result", file=sys.stderr)
    return int(status)
