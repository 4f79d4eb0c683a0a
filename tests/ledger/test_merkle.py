"""The Merkle tree and its proofs against the published RFC 6962 test vectors, and as properties.

The vectors are the eight-leaf test data of the RFC 6962 reference tests as published by the
transparency-dev project (github.com/transparency-dev/merkle, ``proof/verify_test.go``: ``leaves``,
``roots``, ``inclusionProofs``, ``consistencyProofs``), also used by Certificate Transparency's
reference implementation. Their leaf indices there count from 1.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairalloc.ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    root_of,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
# (leaf number counting from 1, tree size, audit path)
INCLUSION = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
# (first size, second size, consistency proof)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
TREE = MemoryTree([leaf_hash(data) for data in LEAVES])


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962's definition, written as recursively as the RFC states it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def test_empty_tree_root() -> None:
    assert root_of([]) == EMPTY_ROOT == Frontier().root()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_vectors(size: int) -> None:
    hashes = TREE.leaves[:size]
    frontier = Frontier()
    frontier.extend(hashes)
    assert root_of(hashes) == frontier.root() == _mth(LEAVES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_vectors(leaf: int, size: int, path: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in path]
    assert inclusion_proof(TREE, leaf - 1, size) == expected
    assert verify_inclusion(leaf - 1, size, TREE.leaves[leaf - 1], expected, ROOTS[size - 1])


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_vectors(first: int, second: int, path: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in path]
    assert consistency_proof(TREE, first, second) == expected
    assert verify_consistency(first, second, ROOTS[first - 1], ROOTS[second - 1], expected)


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION[1:])
def test_corrupted_inclusion_proofs_fail(leaf: int, size: int, path: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in path]
    index, root, hashed = leaf - 1, ROOTS[size - 1], TREE.leaves[leaf - 1]
    other = bytes(32)
    assert not verify_inclusion(index + 1, size, hashed, proof, root)
    assert not verify_inclusion(index ^ 2, size, hashed, proof, root)
    assert not verify_inclusion(index, size * 2, hashed, proof, root)
    assert not verify_inclusion(index, size // 2, hashed, proof, root)
    assert not verify_inclusion(index, size, leaf_hash(b"WrongLeaf"), proof, root)
    assert not verify_inclusion(index, size, hashed, proof, EMPTY_ROOT)
    assert not verify_inclusion(index, size, hashed, [*proof, root], root)
    assert not verify_inclusion(index, size, hashed, [root, *proof], root)
    assert not verify_inclusion(index, size, hashed, [*proof, b""], root)
    assert not verify_inclusion(index, size, hashed, proof[:-1], root)
    assert not verify_inclusion(index, size, hashed, [proof[0], other, *proof[1:]], root)


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY[1:])
def test_corrupted_consistency_proofs_fail(first: int, second: int, path: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in path]
    r1, r2 = ROOTS[first - 1], ROOTS[second - 1]
    assert not verify_consistency(first - 1, second, r1, r2, proof)
    assert not verify_consistency(first + 1, second, r1, r2, proof)
    assert not verify_consistency(first ^ 2, second, r1, r2, proof)
    assert not verify_consistency(first, second * 2, r1, r2, proof)
    assert not verify_consistency(first, second // 2, r1, r2, proof)
    assert not verify_consistency(first, second, r2, r1, proof)
    assert not verify_consistency(first, second, r1, r2, [])
    assert not verify_consistency(first, second, r1, r2, [*proof, r1])
    assert not verify_consistency(first, second, r1, r2, [r2, *proof])
    assert not verify_consistency(first, second, r1, r2, [proof[0], *proof])
    assert not verify_consistency(first, second, r1, r2, proof[:-1])


def test_trivial_consistency() -> None:
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, ROOTS[4], [])
    assert verify_consistency(3, 3, ROOTS[2], ROOTS[2], [])
    assert not verify_consistency(3, 3, ROOTS[2], ROOTS[3], [])
    assert not verify_consistency(3, 3, ROOTS[2], ROOTS[2], [ROOTS[2]])
    assert not verify_consistency(4, 3, ROOTS[3], ROOTS[2], [])
    assert root_from_inclusion(0, 0, TREE.leaves[0], []) is None


def _flip(value: bytes, at: int) -> bytes:
    return value[:at] + bytes([value[at] ^ 0x01]) + value[at + 1:]


_data = st.lists(st.binary(max_size=12), min_size=1, max_size=70)


@settings(max_examples=60, deadline=None)
@given(_data, st.data())
def test_every_inclusion_proof_verifies_and_any_flipped_byte_fails(
        leaves: list[bytes], data: st.DataObject) -> None:
    tree = MemoryTree([leaf_hash(d) for d in leaves])
    size = data.draw(st.integers(1, len(leaves)), "size")
    root = _mth(leaves[:size])
    assert root_of(tree.leaves[:size]) == root
    index = data.draw(st.integers(0, size - 1), "index")
    proof = inclusion_proof(tree, index, size)
    assert verify_inclusion(index, size, tree.leaves[index], proof, root)
    position = data.draw(st.integers(0, 32 * (len(proof) + 2) - 1), "byte")
    part, at = divmod(position, 32)
    leaf, bad_root = tree.leaves[index], root
    if part < len(proof):
        proof[part] = _flip(proof[part], at)
    elif part == len(proof):
        leaf = _flip(leaf, at)
    else:
        bad_root = _flip(root, at)
    assert not verify_inclusion(index, size, leaf, proof, bad_root)


@settings(max_examples=60, deadline=None)
@given(_data, st.data())
def test_consistency_between_any_sizes_and_any_flipped_byte_fails(
        leaves: list[bytes], data: st.DataObject) -> None:
    tree = MemoryTree([leaf_hash(d) for d in leaves])
    second = data.draw(st.integers(1, len(leaves)), "second")
    first = data.draw(st.integers(0, second), "first")
    r1, r2 = _mth(leaves[:first]), _mth(leaves[:second])
    proof = consistency_proof(tree, first, second)
    assert verify_consistency(first, second, r1, r2, proof)
    if 0 < first < second:
        position = data.draw(st.integers(0, 32 * (len(proof) + 2) - 1), "byte")
        part, at = divmod(position, 32)
        if part < len(proof):
            proof[part] = _flip(proof[part], at)
        elif part == len(proof):
            r1 = _flip(r1, at)
        else:
            r2 = _flip(r2, at)
        assert not verify_consistency(first, second, r1, r2, proof)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=4), max_size=300), st.integers(0, 4),
       st.lists(st.integers(1, 64), max_size=20))
def test_frontier_reports_every_perfect_subtree(leaves: list[bytes], min_level: int,
                                               runs: list[int]) -> None:
    """Fed leaf by leaf or in runs of any length (aligned powers of two take the fast path),
    the frontier has the RFC root and reports each perfect subtree exactly once."""
    seen: dict[tuple[int, int], bytes] = {}

    def report(level: int, index: int, digest: bytes) -> None:
        assert (level, index) not in seen
        seen[(level, index)] = digest

    frontier = Frontier(report, min_level=max(min_level, 1))
    hashes = [leaf_hash(d) for d in leaves]
    at = 0
    for run in runs:
        frontier.extend(hashes[at:at + run])
        at = min(len(hashes), at + run)
        assert frontier.size == at and frontier.copy().root() == _mth(leaves[:at])
    frontier.extend(hashes[at:])
    assert frontier.root() == _mth(leaves)
    expected = {}
    level = max(min_level, 1)
    while (1 << level) <= len(leaves):
        for index in range(len(leaves) >> level):
            expected[(level, index)] = _mth(leaves[index << level:(index + 1) << level])
        level += 1
    assert seen == expected
