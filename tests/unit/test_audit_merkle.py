"""RFC 6962 tree heads, audit paths and consistency proofs.

Every proof is built from stored perfect-subtree nodes and checked against a
tree head computed the slow, textbook way; tampered proofs must fail.
"""

from __future__ import annotations

import hashlib

import pytest

from strongroom.services.audit import merkle

SIZES = range(1, 34)


def _leaves(count: int) -> list[bytes]:
    return [merkle.leaf_hash(f"entry {n}".encode()) for n in range(count)]


def _textbook_head(leaves: list[bytes]) -> bytes:
    """MTH as RFC 6962 section 2.1 writes it, recursively."""
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.split_point(len(leaves))
    return merkle.node_hash(_textbook_head(leaves[:k]), _textbook_head(leaves[k:]))


def _stored_nodes(leaves: list[bytes]) -> merkle.NodeLookup:
    frontier = merkle.Frontier()
    nodes: dict[tuple[int, int], bytes] = {}
    for leaf in leaves:
        for level, position, value in frontier.add(leaf):
            nodes[(level, position)] = value
    return lambda level, position: nodes[(level, position)]


def test_empty_tree_head_is_the_hash_of_nothing() -> None:
    assert merkle.tree_head([]) == hashlib.sha256(b"").digest()


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert merkle.leaf_hash(b"a") == hashlib.sha256(b"\x00a").digest()
    assert merkle.node_hash(b"l", b"r") == hashlib.sha256(b"\x01lr").digest()


@pytest.mark.parametrize("size", SIZES)
def test_incremental_head_matches_the_textbook_definition(size: int) -> None:
    leaves = _leaves(size)
    frontier = merkle.Frontier()
    for leaf in leaves:
        frontier.add(leaf)

    assert frontier.root() == _textbook_head(leaves)
    restored = merkle.Frontier.restore(size, _stored_nodes(leaves))
    assert restored.root() == frontier.root()


@pytest.mark.parametrize("size", SIZES)
def test_every_leaf_has_an_audit_path_to_the_head(size: int) -> None:
    leaves = _leaves(size)
    lookup = _stored_nodes(leaves)
    root = _textbook_head(leaves)

    for index, leaf in enumerate(leaves):
        path = merkle.audit_path(index, size, lookup)

        assert merkle.verify_inclusion(index, size, leaf, path, root)
        assert not merkle.verify_inclusion(index, size, bytes(32), path, root)
        assert not merkle.verify_inclusion(index, size, leaf, path, bytes(32))
        if path:
            forged = [bytes(32), *path[1:]]
            assert not merkle.verify_inclusion(index, size, leaf, forged, root)
            assert not merkle.verify_inclusion(index, size, leaf, path[:-1], root)
        assert not merkle.verify_inclusion(size, size, leaf, path, root)


@pytest.mark.parametrize("second", SIZES)
def test_every_earlier_head_is_consistent_with_a_later_one(second: int) -> None:
    leaves = _leaves(second)
    lookup = _stored_nodes(leaves)
    second_root = _textbook_head(leaves)

    for first in range(1, second + 1):
        first_root = _textbook_head(leaves[:first])
        proof = merkle.consistency_proof(first, second, lookup)

        assert merkle.verify_consistency(first, second, first_root, second_root, proof)
        if first < second:
            assert not merkle.verify_consistency(
                first, second, bytes(32), second_root, proof
            )
            assert not merkle.verify_consistency(
                first, second, first_root, bytes(32), proof
            )


def test_a_rewritten_history_is_not_consistent() -> None:
    leaves = _leaves(10)
    rewritten = [*leaves[:3], merkle.leaf_hash(b"forged"), *leaves[4:]]
    proof = merkle.consistency_proof(6, 10, _stored_nodes(rewritten))

    assert not merkle.verify_consistency(
        6, 10, _textbook_head(leaves[:6]), _textbook_head(rewritten), proof
    )


def test_proofs_refuse_sizes_outside_the_tree() -> None:
    lookup = _stored_nodes(_leaves(4))
    with pytest.raises(ValueError):
        merkle.audit_path(4, 4, lookup)
    with pytest.raises(ValueError):
        merkle.consistency_proof(5, 4, lookup)
