"""Signed checkpoints of the ledger: the size and Merkle root of its events, signed with Ed25519.

A checkpoint is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) — a C2SP signed note
(https://c2sp.org/signed-note) whose text is three lines: the ledger's *origin* (its name), the
number of events, and the base64 RFC 6962 root of the events' tree (:mod:`fairalloc.ledger.tree`)::

    example.com/fairalloc/ledger
    1024
    2B0gQx…base64…=

    — example.com/fairalloc/ledger 9Lu3…base64(key ID || Ed25519 signature)…

The signature line is an em dash, the key's name, and the base64 of the key ID (4 bytes) followed
by the 64-byte Ed25519 signature of the text above the blank line. The key ID is
``SHA-256(name || 0x0A || 0x01 || public key)[:4]``. Keys use the signed-note encodings, so any
tool that reads those (for example Go's ``golang.org/x/mod/sumdb/note``) reads ours:

* verifier (public) key: ``<name>+<key ID hex>+<base64(0x01 || 32-byte public key)>``;
* signing (private) key: ``PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || 32-byte seed)>``,
  written with mode 0600.

The ledger's origin is its key's name: a checkpoint whose origin is not the verifier key's name,
or which carries no valid signature by that key, is refused. A published checkpoint lets anyone
holding the verifier key prove later that no event before it was rewritten, removed or reordered,
even by someone able to rewrite the database and every hash in it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fairalloc.errors import (
    Diagnostic,
    ExitCode,
    FairallocError,
    FileAccessError,
    InputError,
    Location,
)
from fairalloc.ledger import merkle, tree
from fairalloc.ledger.chain import Event, recompute
from fairalloc.ledger.store import Ledger, Session

ED25519 = b"\x01"
"""The signed-note signature type of Ed25519."""

MAX_NOTE_BYTES = 64 * 1024
"""Checkpoints and keys are a few hundred bytes; anything far larger is not one."""

_NAME = re.compile(r"[!-*,-~]{1,200}")  # printable ASCII without space or '+'
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_DASH = "\u2014 "


class CheckpointRejected(FairallocError):
    """A checkpoint does not hold: wrong key, bad signature, or a ledger that does not match it."""

    exit_code = ExitCode.CHECK_FAILED


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def key_id(name: str, public: bytes) -> bytes:
    """The signed-note key ID: ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
    return hashlib.sha256(name.encode("ascii") + b"\n" + ED25519 + public).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def check_name(name: str, file: str | None = None) -> str:
    """A key name (the ledger's origin): printable ASCII, no spaces, no ``+``, 1-200 characters."""
    if not _NAME.fullmatch(name):
        raise InputError(Diagnostic(
            "bad-key-name", f"not a usable key name: {name!r}", Location(file=file),
            hint="use printable ASCII without spaces or '+', e.g. example.com/fairalloc/ledger"))
    return name


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public key that checks checkpoints: its name, key ID and Ed25519 public key."""

    name: str
    id: bytes
    public: bytes

    def text(self) -> str:
        return f"{self.name}+{self.id.hex()}+{_b64(ED25519 + self.public)}\n"

    @classmethod
    def parse(cls, text: str, file: str | None = None) -> VerifierKey:
        parts = text.strip().split("+", 2)  # base64 may hold '+'; a name and an ID never do
        raw = _b64decode(parts[2]) if len(parts) == 3 else None
        if raw is None or len(raw) != 33 or raw[:1] != ED25519 or not _NAME.fullmatch(parts[0]) \
                or parts[1] != key_id(parts[0], raw[1:]).hex():
            raise InputError(Diagnostic(
                "bad-verifier-key", "not an Ed25519 signed-note verifier key "
                "(NAME+KEYID+BASE64, as written by: fairalloc ledger keygen)", Location(file=file)))
        return cls(parts[0], bytes.fromhex(parts[1]), raw[1:])

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key that signs checkpoints, with the name it signs under."""

    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        return cls(check_name(name), private.private_bytes_raw())

    @property
    def verifier(self) -> VerifierKey:
        public = _raw_public(Ed25519PrivateKey.from_private_bytes(self.seed).public_key())
        return VerifierKey(self.name, key_id(self.name, public), public)

    def text(self) -> str:
        return f"PRIVATE+KEY+{self.name}+{self.verifier.id.hex()}+{_b64(ED25519 + self.seed)}\n"

    @classmethod
    def parse(cls, text: str, file: str | None = None) -> SigningKey:
        parts = text.strip().split("+", 4)
        raw = _b64decode(parts[4]) if len(parts) == 5 else None
        if raw is None or parts[:2] != ["PRIVATE", "KEY"] or len(raw) != 33 or raw[:1] != ED25519 \
                or not _NAME.fullmatch(parts[2]):
            raise InputError(Diagnostic(
                "bad-signing-key", "not an Ed25519 signed-note private key "
                "(PRIVATE+KEY+NAME+KEYID+BASE64, as written by: fairalloc ledger keygen)",
                Location(file=file)))
        key = cls(parts[2], raw[1:])
        if key.verifier.id.hex() != parts[3]:
            raise InputError(Diagnostic("bad-signing-key", "the key ID does not match the key",
                                        Location(file=file)))
        return key

    def sign(self, text: str) -> str:
        """``text`` as a signed note with this key's signature line."""
        signature = Ed25519PrivateKey.from_private_bytes(self.seed).sign(text.encode("utf-8"))
        return f"{text}\n{_DASH}{self.name} {_b64(self.verifier.id + signature)}\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The signed statement: the ledger named ``origin`` held ``size`` events with tree ``root``."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{_b64(self.root)}\n"

    def sign(self, key: SigningKey) -> str:
        return key.sign(self.text())


def _malformed(message: str, file: str | None) -> InputError:
    return InputError(Diagnostic("checkpoint-malformed", f"not a signed checkpoint: {message}",
                                 Location(file=file)))


def parse_note(note: str, file: str | None = None) -> tuple[Checkpoint, list[tuple[str, bytes]]]:
    """The checkpoint a signed note states, and its signature lines as ``(name, signature)``.

    Nothing here is trusted yet: :func:`open_checkpoint` checks the signature."""
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise _malformed(f"larger than {MAX_NOTE_BYTES} bytes", file)
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise _malformed("it contains control characters", file)
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise _malformed("no blank line before the signatures", file)
    body, signatures = note[:split + 1], note[split + 2:]
    lines = body[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise _malformed("the text must be origin, size and root hash lines", file)
    origin, size, root_text = lines[:3]
    root = _b64decode(root_text)
    if not _SIZE.fullmatch(size) or root is None or len(root) != 32:
        raise _malformed("the second line must be the size and the third a base64 SHA-256 hash",
                         file)
    signed: list[tuple[str, bytes]] = []
    for line in signatures[:-1].split("\n"):
        parts = line[len(_DASH):].split(" ") if line.startswith(_DASH) else []
        raw = _b64decode(parts[1]) if len(parts) == 2 else None
        if raw is None or len(raw) < 5 or not parts[0]:
            raise _malformed(f"not a signature line: {line[:80]!r}", file)
        signed.append((parts[0], raw))
    if len(lines) > 3 or body != Checkpoint(origin, int(size), root).text():
        raise _malformed("extension lines are not used by fairalloc checkpoints", file)
    return Checkpoint(origin, int(size), root), signed


def open_checkpoint(note: str, key: VerifierKey, file: str | None = None) -> Checkpoint:
    """The checkpoint ``note`` states, once its signature by ``key`` is checked.

    As the signed-note rules say: signatures by other keys are ignored, one by ``key`` that fails
    to verify rejects the note (``checkpoint-signature-invalid``: the note was edited), and a note
    with no signature by ``key`` is rejected (``checkpoint-unknown-key``)."""
    checkpoint, signatures = parse_note(note, file)
    where = Location(file=file)
    ours = [sig for name, sig in signatures if name == key.name and sig[:4] == key.id]
    if not ours:
        names = ", ".join(sorted({name for name, _ in signatures}))
        raise CheckpointRejected(Diagnostic(
            "checkpoint-unknown-key",
            f"the checkpoint is not signed by the key {key.name}+{key.id.hex()} (signed by: {names})",
            where, hint="check it with the verifier key of the ledger that signed it"))
    message = checkpoint.text().encode("utf-8")
    if not all(key.verify(sig[4:], message) for sig in ours):
        raise CheckpointRejected(Diagnostic(
            "checkpoint-signature-invalid",
            "the checkpoint's signature does not verify: its text was changed after signing", where))
    if checkpoint.origin != key.name:
        raise CheckpointRejected(Diagnostic(
            "checkpoint-origin-mismatch",
            f"the checkpoint is of the ledger {checkpoint.origin!r}, not {key.name!r}", where))
    return checkpoint


def read_small(path: Path, what: str, code: str) -> str:
    """A key or checkpoint file's text, bounded in size; a clear error when it cannot be read
    (``file-unreadable``), or ``code`` when it is too large or not text."""
    where = Location(file=str(path))
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_NOTE_BYTES + 1)
    except OSError as error:
        raise FileAccessError(Diagnostic("file-unreadable", f"cannot read the {what} {path}: "
                                         f"{error.strerror}", where)) from error
    if len(data) > MAX_NOTE_BYTES:
        raise InputError(Diagnostic(code, f"{path} is too large to be a {what}", where))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(Diagnostic(code, f"{path} is not UTF-8 text", where)) from error


def write_new(path: Path, text: str, mode: int) -> None:
    """Create ``path`` with ``text`` and permission ``mode``; never overwrite an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as error:
        raise FileAccessError(Diagnostic("key-file-exists", f"{path} exists; a key is never "
                                         "overwritten", Location(file=str(path)))) from error
    except OSError as error:
        raise FileAccessError(Diagnostic("key-file-write", f"cannot create {path}: "
                                         f"{error.strerror}", Location(file=str(path)))) from error
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_replace(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file renamed into place (a watcher never sees half)."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        raise FileAccessError(Diagnostic("checkpoint-write", f"cannot write {path}: "
                                         f"{error.strerror}", Location(file=str(path)))) from error


def _truncated(size: int, found: int, file: str | None) -> Diagnostic:
    return Diagnostic(
        "checkpoint-ledger-truncated",
        f"the checkpoint covers {size} events but the ledger holds only {found}: "
        f"events after {found} were removed", Location(file=file, pointer=f"/events/{found + 1}"),
        hint="the tail of the ledger was cut after the checkpoint was signed")


def take(ledger: Ledger, key: SigningKey, previous: Checkpoint | None = None) -> tuple[Checkpoint, str]:
    """Sign a checkpoint of the ledger as it stands; also cache its subtree hashes for proofs.

    After a checkpoint whose tree the cache rebuilds, only the events since are read
    (:func:`fairalloc.ledger.tree.resume`); otherwise every event's stored hash is.

    A log must never sign a checkpoint inconsistent with one it signed before: with
    ``previous`` (the last checkpoint, already verified), a ledger now shorter than it
    (``checkpoint-ledger-truncated``) or whose first ``previous.size`` events no longer hash to
    its root (``checkpoint-inconsistent``) is refused, and so is a chain whose numbers or links
    are broken."""
    with ledger.read() as session:
        built = tree.resume(session, previous.size, previous.root) if previous else None
        if built is None:
            built = tree.build(session, at=[previous.size] if previous else [])
    if built.finding is not None:
        raise CheckpointRejected(built.finding)
    if previous is not None:
        if built.size < previous.size:
            raise CheckpointRejected(_truncated(previous.size, built.size, None))
        if built.roots_at[previous.size] != previous.root:
            raise CheckpointRejected(Diagnostic(
                "checkpoint-inconsistent",
                f"the ledger's first {previous.size} events no longer match the last checkpoint: "
                "they were rewritten since it was signed; no new checkpoint is signed",
                hint="run: fairalloc ledger verify --checkpoint LAST --verifier-key KEY"))
    with ledger.write() as session:
        tree.remember(session, built.nodes)
    checkpoint = Checkpoint(key.name, built.size, built.root)
    return checkpoint, checkpoint.sign(key)


def sign_snapshot(session: Session, key: SigningKey) -> tuple[Checkpoint, str]:
    """A signed checkpoint of the snapshot a read session sees (an export's), without caching."""
    built = tree.build(session)
    if built.finding is not None:
        raise CheckpointRejected(built.finding)
    checkpoint = Checkpoint(key.name, built.size, built.root)
    return checkpoint, checkpoint.sign(key)


def check_ledger(session: Session, checkpoint: Checkpoint, file: str | None = None) -> list[Diagnostic]:
    """What the events, rehashed from their content alone, say against a verified checkpoint:
    nothing, a cut tail (``checkpoint-ledger-truncated``), or events before the checkpoint's size
    rewritten, removed, inserted or reordered (``checkpoint-root-mismatch``) — even when every
    hash in the database was recomputed to agree."""
    found, root = tree.recomputed_root(session, checkpoint.size)
    if found < checkpoint.size:
        return [_truncated(checkpoint.size, found, file)]
    if root != checkpoint.root:
        return [Diagnostic(
            "checkpoint-root-mismatch",
            f"the ledger's first {checkpoint.size} events do not hash to the checkpoint's root: "
            "events it covers were rewritten, removed, inserted or reordered after it was signed",
            Location(file=file),
            hint="compare with the export taken at that checkpoint; `ledger verify` locates "
            "breaks the chain itself shows")]
    return []


def _proof_json(hashes: list[bytes]) -> list[str]:
    return [_b64(h) for h in hashes]


def _unverified(message: str) -> CheckpointRejected:
    return CheckpointRejected(Diagnostic(
        "checkpoint-root-mismatch", message,
        hint="the ledger was rewritten after the checkpoint: run fairalloc ledger verify "
        "--checkpoint FILE --verifier-key KEY"))


def inclusion(session: Session, seq: int, checkpoint: Checkpoint | None) -> dict[str, Any]:
    """An inclusion proof of event ``seq`` in the tree of ``checkpoint`` (or of the whole ledger
    now), as JSON: the event's fields, its leaf hash, the audit path and the root it leads to.

    The event's leaf is recomputed from its content, and the proof is checked before it is
    given: a proof that would not convince an outsider is refused here instead."""
    source = tree.LedgerTree(session)
    size = checkpoint.size if checkpoint is not None else source.size()
    row = source.event(seq) if 0 < seq <= size else None
    if row is None:
        raise InputError(Diagnostic(
            "proof-event-unknown", f"event {seq} is not in the ledger's first {size} events",
            Location(pointer=f"/events/{seq}")))
    event = Event(int(row[0]), *row[1:])
    leaf = tree.event_leaf(recompute(event))
    source.prepare(lambda hashes: merkle.inclusion_proof(hashes, seq - 1, size))
    proof = merkle.inclusion_proof(source, seq - 1, size)
    root = checkpoint.root if checkpoint is not None else merkle.root_from_inclusion(
        seq - 1, size, tree.stored_leaf(seq, event.hash), proof)
    if root is None or not merkle.verify_inclusion(seq - 1, size, leaf, proof, root):
        raise _unverified(f"event {seq} as stored is not the leaf the tree of {size} events holds")
    return {
        "event": event._asdict(), "leaf_index": seq - 1, "tree_size": size,
        "leaf_hash": _b64(leaf), "root": _b64(root), "proof": _proof_json(proof),
    }


def consistency(session: Session, first: Checkpoint, second: Checkpoint) -> dict[str, Any]:
    """A consistency proof that ``first``'s tree is a prefix of ``second``'s, checked before it is
    given, as JSON."""
    if first.size > second.size:
        raise InputError(Diagnostic(
            "proof-checkpoint-order",
            f"--from covers {first.size} events, more than --to ({second.size})",
            hint="give the earlier checkpoint as --from"))
    source = tree.LedgerTree(session)
    if source.size() < second.size:
        raise CheckpointRejected(_truncated(second.size, source.size(), None))
    source.prepare(lambda hashes: merkle.consistency_proof(hashes, first.size, second.size))
    proof = merkle.consistency_proof(source, first.size, second.size)
    if not merkle.verify_consistency(first.size, second.size, first.root, second.root, proof):
        raise _unverified(f"the ledger does not prove the checkpoint of {first.size} events a "
                          f"prefix of the one of {second.size}")
    return {
        "first": {"tree_size": first.size, "root": _b64(first.root)},
        "second": {"tree_size": second.size, "root": _b64(second.root)},
        "proof": _proof_json(proof),
    }
