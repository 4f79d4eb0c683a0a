"""``fairalloc diff OLD NEW [--impact TRADES | --impact-ledger]``: what changed, and for whom.

OLD and NEW are policy files, ``REV:path`` (a file at a git revision) or ``ledger:ID@VERSION``
(a version published in the ledger). The semantic diff is printed in words; with ``--impact`` the
trades in a folder, or with ``--impact-ledger`` the orders allocated in the ledger, are replayed
under both versions (``--from``/``--to`` limit the trade dates) and every changed order and
account is reported (tables on the terminal; ``--markdown-file FILE`` for a pull request,
``--json-file FILE`` for tools). Exit status 0, or with ``--exit-code`` 1 when the
versions differ in meaning (with ``--impact``: when an allocation would change).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fairalloc.cli._io import argparse_date, dump_json, print_table, write_output
from fairalloc.cli._extras import require_extras
from fairalloc.errors import ExitCode
from fairalloc.review.diff import PolicyDiff, diff_policies
from fairalloc.review.impact import (
    CAUSE_COLUMNS,
    CLIENT_COLUMNS,
    ImpactReport,
    Period,
    account_rows,
    cause_rows,
    client_rows,
    impact_json,
    impact_markdown,
    impact_of,
    impact_of_recorded,
    summary_rows,
    trade_files,
)
from fairalloc.review.sources import LEDGER_PREFIX, ledger_trades, load_source

PROGRESS_FROM = 200  # trade files: below this a replay is too quick for a progress bar to help


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "diff",
        help="semantic diff of two policy versions, with impact on recorded trades",
        description="Describe what changed between two policy versions (files, REV:path in git, or "
        "ledger:ID@VERSION) and, with --impact or --impact-ledger, replay recorded trades under both and "
        "report every allocation that would change.",
    )
    parser.add_argument("old", metavar="OLD", help="the old version: a policy file, REV:path or ledger:ID@VERSION")
    parser.add_argument("new", metavar="NEW", help="the new version: a policy file, REV:path or ledger:ID@VERSION")
    replay_from = parser.add_mutually_exclusive_group()
    replay_from.add_argument("--impact", metavar="TRADES", help="folder of recorded trade documents (*.json) to replay")
    replay_from.add_argument("--impact-ledger", action="store_true",
                             help="replay the orders allocated in the ledger (of the --from/--to trade dates)")
    # not the ledger commands' option helper: that imports the ledger, which diffing files does not need
    parser.add_argument("--ledger", metavar="URL", default=None,
                        help="the ledger of ledger: sources and --impact-ledger, as for the ledger commands "
                        "(default: $FAIRALLOC_LEDGER, else the ledger commands' default file)")
    parser.add_argument("--from", dest="first", type=argparse_date, metavar="DATE",
                        help="replay only trades on or after this trade date (YYYY-MM-DD)")
    parser.add_argument("--to", dest="last", type=argparse_date, metavar="DATE",
                        help="replay only trades on or before this trade date (YYYY-MM-DD)")
    parser.add_argument("--markdown-file", metavar="FILE", help="also write the report as Markdown (for a pull request)")
    parser.add_argument("--json-file", metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--format", choices=("table", "markdown", "json"), default="table",
                        help="what to print on stdout (default: table)")
    parser.add_argument("--limit", type=int, default=50, metavar="N",
                        help="changed accounts listed in tables and Markdown (0: all; JSON lists all)")
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.add_argument("--exit-code", action="store_true",
                        help="exit 1 when the versions differ in meaning (with --impact: when an allocation changes)")
    parser.set_defaults(handler=run)


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A tick callback that drives a progress bar on stderr (reading, then replaying) when enabled."""
    if not enabled:
        yield lambda _: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("replaying trades", total=total)
        yield lambda step: bar.advance(task, step)


def _print_tables(diff: PolicyDiff, report: ImpactReport | None, limit: int) -> None:
    sys.stdout.write(diff.text())
    if report is None:
        return
    print()
    print_table(f"Impact on {report.replayed} recorded orders", ("", "count"), summary_rows(report), right=(1,))
    if report.orders:
        print_table("By cause", CAUSE_COLUMNS, cause_rows(report), right=(1, 2, 3, 4))
        clients = client_rows(report, limit)
        print_table(f"By account ({len(clients)} of {len(report.by_account)} shown)", CLIENT_COLUMNS, clients,
                    right=(1, 2, 3, 4))
        shown = account_rows(report, limit)
        # six columns fit a terminal: old → new together, the attribution beside the cause
        narrow = [(order, account, f"{old} → {new}", change, value, f"{cause} ({how})")
                  for order, _, account, old, new, change, value, cause, how in shown]
        print_table(f"Changed allocations ({len(shown)} of {len(report.rows)} shown)",
                    ("order", "account", "old → new", "change", "value", "cause (attribution)"), narrow,
                    right=(2, 3, 4))
    for problem in report.unreadable[:10]:
        print(f"unreadable: {problem.render()}", file=sys.stderr)


def _impact(args: argparse.Namespace, diff: PolicyDiff) -> ImpactReport | None:
    """Replay the trades the options name: a folder, the ledger, or none."""
    period = Period(args.first, args.last)
    if args.impact_ledger:
        trades, states = ledger_trades(args.ledger, period)
        with _progress(len(trades), _show_progress(args, len(trades))) as tick:
            return impact_of_recorded(diff, trades, states, tick)
    if args.impact:
        total = len(trade_files(args.impact))
        with _progress(2 * total, _show_progress(args, total)) as tick:
            return impact_of(diff, args.impact, tick, period=period)
    return None


def _show_progress(args: argparse.Namespace, trades: int) -> bool:
    return not args.no_progress and trades >= PROGRESS_FROM and sys.stderr.isatty()


def run(args: argparse.Namespace) -> int:
    if args.impact_ledger or any(source.startswith(LEDGER_PREFIX) for source in (args.old, args.new)):
        require_extras("'fairalloc diff' with the ledger", "ledger")
    old, new = load_source(args.old, args.ledger), load_source(args.new, args.ledger)
    diff = diff_policies(old.policy, new.policy, old_note=old.provenance, new_note=new.provenance)
    report = _impact(args, diff)

    def markdown() -> str:
        return diff.markdown() + ("\n" + impact_markdown(report, args.limit) if report else "")

    def document() -> str:
        return dump_json({"diff": diff.to_json(), "impact": impact_json(report) if report else None})

    if args.format == "table":
        _print_tables(diff, report, args.limit)
    else:
        write_output(markdown() if args.format == "markdown" else document(), None)
    if args.markdown_file:
        write_output(markdown(), args.markdown_file)
    if args.json_file:
        write_output(document(), args.json_file)
    changed = bool(report.orders) if report is not None else not diff.same_meaning
    return int(ExitCode.CHECK_FAILED if args.exit_code and changed else ExitCode.OK)
