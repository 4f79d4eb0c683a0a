"""``fairalloc policy``: the registry of published policy versions in the ledger."""

from __future__ import annotations

import argparse

from fairalloc import load_policy
from fairalloc.cli._ledger import acting, add_format_option, add_ledger_option, add_user_option, emit_json, open_ledger
from fairalloc.errors import ExitCode
from fairalloc.ledger import workflow


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("policy", help="publish policy versions and read the registry")
    sub = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)

    publish = sub.add_parser("publish", help="publish a policy file as an immutable version")
    publish.add_argument("file", help="the policy YAML file")
    add_user_option(publish)
    add_ledger_option(publish)
    publish.set_defaults(handler=_publish)

    history = sub.add_parser("history", help="published versions, oldest first")
    history.add_argument("id", nargs="?", help="only this policy id")
    add_ledger_option(history)
    add_format_option(history)
    history.set_defaults(handler=_history)

    show = sub.add_parser("show", help="print a published version's source (or canonical form)")
    show.add_argument("ref", metavar="ID[@VERSION]", help="policy id, optionally @version")
    show.add_argument("--canonical", action="store_true", help="print the canonical JSON instead")
    add_ledger_option(show)
    show.set_defaults(handler=_show)


def _publish(args: argparse.Namespace) -> int:
    policy = load_policy(args.file)
    with open_ledger(args) as ledger:
        record, created = workflow.publish_policy(ledger, acting(args, ledger), policy)
    state = "published" if created else "already published (identical content)"
    print(f"{record.id}@{record.version} {state}: {record.digest}")
    return int(ExitCode.OK)


def _history(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        records = workflow.policy_history(ledger, args.id)
    if args.format == "json":
        emit_json([{"id": r.id, "version": r.version, "digest": r.digest,
                    "effective_date": r.effective_date, "published_by": r.published_by,
                    "published_at": r.published_at, "event": r.seq} for r in records])
        return int(ExitCode.OK)
    for r in records:
        print(f"{r.id}@{r.version}  effective {r.effective_date}  {r.digest}  "
              f"published {r.published_at} by {r.published_by}")
    return int(ExitCode.OK)


def _show(args: argparse.Namespace) -> int:
    with open_ledger(args) as ledger:
        record = workflow.find_policy(ledger, args.ref)
    if args.canonical:
        print(record.canonical)
        return int(ExitCode.OK)
    print(f"# {record.id}@{record.version} {record.digest}\n"
          f"# effective {record.effective_date}; published {record.published_at} "
          f"by {record.published_by} (event {record.seq})")
    print(record.source, end="" if record.source.endswith("\n") else "\n")
    return int(ExitCode.OK)
