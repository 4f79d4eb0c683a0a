"""``fairalloc ledger keygen | checkpoint | prove`` and ``ledger verify --checkpoint``: signed
checkpoints of the ledger and the proofs an outsider checks against them."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fairalloc.cli._ledger import add_ledger_option, emit_json, open_ledger
from fairalloc.errors import Diagnostic, ExitCode, InputError
from fairalloc.ledger import checkpoint as cp
from fairalloc.ledger.store import Session

LATEST = "latest"
"""In a checkpoint folder, the copy of the newest checkpoint (the file other systems watch)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keygen = sub.add_parser("keygen", help="make an Ed25519 key pair for signing checkpoints")
    keygen.add_argument("--name", required=True,
                        help="the ledger's name, also every checkpoint's origin "
                        "(e.g. example.com/fairalloc/ledger)")
    keygen.add_argument("--key", required=True, type=Path,
                        help="private key file to create (mode 0600; never overwritten)")
    keygen.add_argument("--verifier-key", type=Path,
                        help="public verifier key file to create (default: KEY.pub)")
    keygen.set_defaults(handler=_keygen)

    take = sub.add_parser("checkpoint", help="sign a checkpoint: the events' count and Merkle root")
    add_ledger_option(take)
    take.add_argument("--key", required=True, type=Path, help="private key (from ledger keygen)")
    take.add_argument("--out", metavar="FILE|DIR",
                      help="write the checkpoint to FILE, or into folder DIR (an existing "
                      "directory or a path ending in /) as SIZE and latest; default: print it")
    take.set_defaults(handler=_checkpoint)

    prove = sub.add_parser("prove", help="inclusion proof of an event, or consistency proof "
                           "between two checkpoints (JSON)")
    add_ledger_option(prove)
    prove.add_argument("--event", type=int, metavar="SEQ", help="the event to prove included")
    prove.add_argument("--checkpoint", type=Path, help="prove --event in this checkpoint's tree "
                       "(default: the ledger as it stands)")
    prove.add_argument("--from", dest="first", type=Path, metavar="CHECKPOINT_A",
                       help="the earlier checkpoint of a consistency proof")
    prove.add_argument("--to", dest="second", type=Path, metavar="CHECKPOINT_B",
                       help="the later checkpoint of a consistency proof")
    prove.add_argument("--verifier-key", type=Path,
                       help="also check the checkpoints' signatures with this key")
    prove.set_defaults(handler=_prove)


def add_verify_options(parser: argparse.ArgumentParser) -> None:
    """``ledger verify --checkpoint FILE --verifier-key KEY``."""
    parser.add_argument("--checkpoint", type=Path,
                        help="a signed checkpoint: also find any rewrite or cut before it")
    parser.add_argument("--verifier-key", type=Path, help="the verifier key of --checkpoint")


def verify_findings(args: argparse.Namespace, session: Session) -> list[Diagnostic]:
    """What the checkpoint of ``ledger verify --checkpoint`` finds; nothing without one.

    A checkpoint signed by another key, or edited, is rejected before the ledger is read."""
    if args.checkpoint is None and args.verifier_key is None:
        return []
    if args.checkpoint is None or args.verifier_key is None:
        raise InputError(Diagnostic("checkpoint-needs-key",
                                    "--checkpoint and --verifier-key go together"))
    checkpoint = _open(args.checkpoint, _verifier(args.verifier_key))
    return cp.check_ledger(session, checkpoint, str(args.checkpoint))


def signing_key(path: Path) -> cp.SigningKey:
    return cp.SigningKey.parse(cp.read_small(path, "signing key", "bad-signing-key"), str(path))


def _verifier(path: Path) -> cp.VerifierKey:
    return cp.VerifierKey.parse(cp.read_small(path, "verifier key", "bad-verifier-key"), str(path))


def _open(path: Path, key: cp.VerifierKey | None) -> cp.Checkpoint:
    note = cp.read_small(path, "checkpoint", "checkpoint-malformed")
    if key is None:
        return cp.parse_note(note, str(path))[0]
    return cp.open_checkpoint(note, key, str(path))


def _keygen(args: argparse.Namespace) -> int:
    key = cp.SigningKey.generate(args.name)
    public: Path = args.verifier_key or args.key.with_name(args.key.name + ".pub")
    cp.write_new(args.key, key.text(), 0o600)
    cp.write_new(public, key.verifier.text(), 0o644)
    print(f"signing key {args.key} (keep it secret); verifier key {public}: "
          f"{key.verifier.text().strip()}")
    return int(ExitCode.OK)


def _checkpoint(args: argparse.Namespace) -> int:
    key = signing_key(args.key)
    out = Path(args.out) if args.out is not None else None
    folder = out is not None and (out.is_dir() or args.out.endswith(os.sep))
    previous_file = (out / LATEST) if folder and out is not None else out
    previous = None
    if previous_file is not None and previous_file.exists():
        previous = _open(previous_file, key.verifier)
    with open_ledger(args) as ledger:
        checkpoint, note = cp.take(ledger, key, previous)
    if out is None:
        sys.stdout.write(note)
        return int(ExitCode.OK)
    if folder:
        out.mkdir(parents=True, exist_ok=True)
        cp.write_replace(out / str(checkpoint.size), note)
        cp.write_replace(out / LATEST, note)
        where = f"{out / str(checkpoint.size)} and {out / LATEST}"
    else:
        cp.write_replace(out, note)
        where = str(out)
    print(f"checkpoint of {checkpoint.size} events signed by {key.name}: {where}")
    return int(ExitCode.OK)


def _prove(args: argparse.Namespace) -> int:
    key = _verifier(args.verifier_key) if args.verifier_key is not None else None
    consistency = args.first is not None or args.second is not None
    if consistency == (args.event is not None) or (consistency and None in (args.first, args.second)):
        raise InputError(Diagnostic("proof-arguments", "give --event SEQ [--checkpoint FILE], "
                                    "or --from CHECKPOINT_A --to CHECKPOINT_B"))
    if consistency:
        first, second = _open(args.first, key), _open(args.second, key)
        with open_ledger(args) as ledger, ledger.read() as session:
            emit_json(cp.consistency(session, first, second))
        return int(ExitCode.OK)
    checkpoint = _open(args.checkpoint, key) if args.checkpoint is not None else None
    with open_ledger(args) as ledger, ledger.read() as session:
        emit_json(cp.inclusion(session, args.event, checkpoint))
    return int(ExitCode.OK)
