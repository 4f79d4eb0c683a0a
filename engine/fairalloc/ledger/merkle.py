"""The Merkle tree of RFC 6962 / RFC 9162 (section 2.1) and its proofs, over opaque leaf data.

The ledger's hash chain proves that nothing changed *inside* a chain someone trusts; a Merkle tree
lets an outsider check two further things with a few hashes each, without a copy of the ledger:

* an **inclusion proof** (audit path) shows that one event is the ``index``-th leaf of a tree whose
  root a signed checkpoint names;
* a **consistency proof** shows that the tree of an earlier checkpoint is a prefix of the tree of a
  later one: nothing recorded before the earlier checkpoint was rewritten or cut since.

Hashes are RFC 6962's: ``MTH({}) = SHA-256()``, a leaf hashes as ``SHA-256(0x00 || data)`` and an
interior node as ``SHA-256(0x01 || left || right)``; a tree of ``n`` leaves splits at the largest
power of two below ``n``. What a leaf's data is belongs to the caller (for the ledger see
:mod:`fairalloc.ledger.tree`). Proof generation (RFC 9162 §2.1.3.1 and §2.1.4.1) reads subtree
hashes through a :class:`Hashes` source, so a big tree can answer from cached subtree roots; the
verification algorithms (§2.1.3.2 and §2.1.4.2) need nothing but the proof, and are the ones an
outsider runs. Everything is plain ``hashlib``: no dependency to trust beyond the standard library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the tree with no leaves (RFC 6962: the hash of the empty string)."""

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: ``SHA-256(0x00 || data)`` (the prefix keeps leaves and nodes apart)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size`` > 1): where RFC 6962 splits."""
    return 1 << ((size - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the leaves whose hashes are given, level by level.

    Pairing neighbours and carrying an odd last node up unchanged builds the same tree as RFC
    6962's recursive split (the left part is always a perfect subtree), in one list per level."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        upper = [_sha256(b"\x01" + level[i] + level[i + 1]).digest()
                 for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            upper.append(level[-1])
        level = upper
    return level[0]


class Frontier:
    """The perfect subtrees covering the leaves appended so far (a "compact range" from 0).

    Appending is amortised one interior hash per leaf and the memory is ``log2(size)`` hashes, so
    the root of a tree of any size can be computed while streaming its leaves once. ``on_subtree``
    is told of every perfect subtree of ``min_level`` or more as it completes, as ``(level, index,
    hash)`` (the subtree covering leaves ``index * 2**level`` up to the next such boundary), which
    is what a cache of subtree roots stores."""

    __slots__ = ("size", "_hashes", "_levels", "_on_subtree", "_min_level")

    def __init__(self, on_subtree: Callable[[int, int, bytes], None] | None = None,
                 min_level: int = 0) -> None:
        self.size = 0
        self._hashes: list[bytes] = []
        self._levels: list[int] = []
        self._on_subtree = on_subtree
        self._min_level = min_level

    def append(self, leaf: bytes) -> None:
        """Add the next leaf's hash."""
        self.push(0, leaf)

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Add many leaves' hashes. A run of a power-of-two length that starts at a multiple of
        its length is a perfect subtree: it is hashed level by level, a third faster."""
        count = len(leaves)
        if count < 2 or count & (count - 1) or self.size % count:
            for leaf in leaves:
                self.push(0, leaf)
            return
        level, hashes = 0, list(leaves)
        while len(hashes) > 1:
            hashes = [_sha256(b"\x01" + hashes[i] + hashes[i + 1]).digest()
                      for i in range(0, len(hashes), 2)]
            level += 1
            if self._on_subtree is not None and level >= self._min_level:
                base = self.size >> level
                for offset, digest in enumerate(hashes):
                    self._on_subtree(level, base + offset, digest)
        self.push(level, hashes[0])

    def push(self, level: int, digest: bytes) -> None:
        """Add the hash of the perfect subtree of ``2**level`` leaves that starts at :attr:`size`
        (which must be a multiple of ``2**level``): how a frontier is rebuilt from stored
        subtree hashes, largest first."""
        hashes, levels = self._hashes, self._levels
        self.size += 1 << level
        while levels and levels[-1] == level:
            digest = _sha256(b"\x01" + hashes.pop() + digest).digest()
            levels.pop()
            level += 1
            if self._on_subtree is not None and level >= self._min_level:
                self._on_subtree(level, (self.size >> level) - 1, digest)
        hashes.append(digest)
        levels.append(level)

    def copy(self) -> Frontier:
        """An independent frontier at the same point (without the subtree callback)."""
        twin = Frontier()
        twin.size, twin._hashes, twin._levels = self.size, list(self._hashes), list(self._levels)
        return twin

    def root(self) -> bytes:
        """MTH of the leaves appended so far: the subtrees folded from the right."""
        if not self._hashes:
            return EMPTY_ROOT
        digest = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            digest = _sha256(b"\x01" + left + digest).digest()
        return digest


class Hashes(Protocol):
    """Where proof generation reads subtree hashes from."""

    def range_hash(self, start: int, end: int) -> bytes:
        """MTH of the leaves ``start`` (inclusive) to ``end`` (exclusive); ``start < end``."""
        ...


class MemoryTree:
    """A tree held as its list of leaf hashes: small trees, tests, and reference results."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.leaves = list(leaf_hashes)

    def range_hash(self, start: int, end: int) -> bytes:
        return root_of(self.leaves[start:end])


def inclusion_proof(tree: Hashes, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaves (RFC 9162
    §2.1.3.1), ordered from the leaf's sibling up to the root's other child."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(tree.range_hash(start + k, end))
            end = start + k
        else:
            path.append(tree.range_hash(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(tree: Hashes, first: int, second: int) -> list[bytes]:
    """The proof that the tree of ``first`` leaves is a prefix of the tree of ``second`` leaves
    (RFC 9162 §2.1.4.1, ``SUBPROOF(m, D[n], true)``); empty when ``first`` is 0 or equal."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} to {second} leaves")
    if first in (0, second):
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, second, first, True
    while True:
        size = end - start
        if m == size:
            if not complete:
                proof.append(tree.range_hash(start, end))
            break
        k = split_point(size)
        if m <= k:
            proof.append(tree.range_hash(start + k, end))
            end = start + k
        else:
            proof.append(tree.range_hash(start, start + k))
            start, m, complete = start + k, m - k, False
    proof.reverse()
    return proof


def _valid(*hashes: bytes) -> bool:
    return all(len(h) == HASH_SIZE for h in hashes)


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The root an audit path leads to from ``leaf`` (RFC 9162 §2.1.3.2), or None when the path
    cannot belong to leaf ``index`` of a tree of ``size`` leaves (wrong length or position)."""
    if not 0 <= index < size or not _valid(leaf, *proof):
        return None
    fn, sn, digest = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            digest = node_hash(digest, sibling)
        fn >>= 1
        sn >>= 1
    return digest if sn == 0 else None


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True when ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``root`` of ``size``."""
    return root_from_inclusion(index, size, leaf, proof) == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """True when ``proof`` shows the tree ``first_root`` of ``first`` leaves to be a prefix of the
    tree ``second_root`` of ``second`` leaves (RFC 9162 §2.1.4.2, with its trivial cases: equal
    sizes need equal roots and an empty proof; an empty first tree is a prefix of any tree)."""
    if not 0 <= first <= second or not _valid(*proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # the first tree is a perfect subtree: the proof leaves it out
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root
