"""Merkle tree hashing of the audit chain, as RFC 6962 defines it.

Leaves are chain entries; a checkpoint signs the tree head over the first
``tree_size`` of them. Two proofs follow from the tree: that one entry is
included under a signed head (an audit path), and that a later head extends
an earlier one without changing it (a consistency proof). Both can be checked
by anyone holding the signed heads, with no access to the chain itself.

Subtree hashes come from a ``NodeLookup``: the hash of the perfect subtree at
``level`` (0 for leaves) and ``position`` (counted from the left at that
level). Stores keep those nodes, so every proof needs only O(log² n) lookups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

NodeLookup = Callable[[int, int], bytes]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two smaller than ``size`` (which is at least 2)."""
    return 1 << ((size - 1).bit_length() - 1)


class Frontier:
    """The roots of the perfect subtrees that make up a growing tree.

    Adding a leaf costs one hash amortised; the tree head of everything added
    so far folds the at most log2(n) roots from the right.
    """

    def __init__(self) -> None:
        self.size = 0
        self._roots: list[tuple[int, bytes]] = []

    def add(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the nodes completed, as (level, position, hash)."""
        completed = [(0, self.size, leaf)]
        level, current = 0, leaf
        self.size += 1
        while self._roots and self._roots[-1][0] == level:
            _, left = self._roots.pop()
            current = node_hash(left, current)
            level += 1
            completed.append((level, (self.size >> level) - 1, current))
        self._roots.append((level, current))
        return completed

    def root(self) -> bytes:
        if not self._roots:
            return EMPTY_ROOT
        current = self._roots[-1][1]
        for _, left in reversed(self._roots[:-1]):
            current = node_hash(left, current)
        return current

    @classmethod
    def restore(cls, size: int, lookup: NodeLookup) -> Frontier:
        """Rebuild the frontier of a tree of ``size`` leaves from stored nodes."""
        frontier = cls()
        frontier.size = size
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size & (1 << level):
                frontier._roots.append((level, lookup(level, start >> level)))
                start += 1 << level
        return frontier


def tree_head(leaves: Iterable[bytes]) -> bytes:
    frontier = Frontier()
    for leaf in leaves:
        frontier.add(leaf)
    return frontier.root()


def subtree_hash(start: int, size: int, lookup: NodeLookup) -> bytes:
    """Hash of the subtree over leaves [start, start + size)."""
    if size & (size - 1) == 0 and start % size == 0:
        return lookup(size.bit_length() - 1, start // size)
    k = split_point(size)
    return node_hash(
        subtree_hash(start, k, lookup), subtree_hash(start + k, size - k, lookup)
    )


def audit_path(index: int, tree_size: int, lookup: NodeLookup) -> list[bytes]:
    """The inclusion proof of leaf ``index`` (0-based) in a tree of ``tree_size``."""
    if not 0 <= index < tree_size:
        raise ValueError("the leaf lies outside the tree")
    path: list[bytes] = []
    start, size, m = 0, tree_size, index
    while size > 1:
        k = split_point(size)
        if m < k:
            path.append(subtree_hash(start + k, size - k, lookup))
            size = k
        else:
            path.append(subtree_hash(start, k, lookup))
            start, size, m = start + k, size - k, m - k
    path.reverse()
    return path


def consistency_proof(first: int, second: int, lookup: NodeLookup) -> list[bytes]:
    """The proof that the tree of ``second`` leaves extends that of ``first``."""
    if not 0 < first <= second:
        raise ValueError("a consistency proof needs 0 < first <= second")
    proof: list[bytes] = []
    start, size, m, is_whole = 0, second, first, True
    while m != size:
        k = split_point(size)
        if m <= k:
            proof.append(subtree_hash(start + k, size - k, lookup))
            size = k
        else:
            proof.append(subtree_hash(start, k, lookup))
            start, size, m, is_whole = start + k, size - k, m - k, False
    if not is_whole:
        proof.append(subtree_hash(start, m, lookup))
    proof.reverse()
    return proof


def verify_inclusion(
    index: int, tree_size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    """Check an audit path against a tree head (RFC 9162, 2.1.3.2)."""
    if not 0 <= index < tree_size:
        return False
    fn, sn, result = index, tree_size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == root


def verify_consistency(
    first: int,
    second: int,
    first_root: bytes,
    second_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Check that ``second_root`` extends ``first_root`` (RFC 9162, 2.1.4.2)."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    nodes = list(proof)
    if first & (first - 1) == 0:
        nodes.insert(0, first_root)
    if not nodes:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first_result = second_result = nodes[0]
    for node in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first_result = node_hash(node, first_result)
            second_result = node_hash(node, second_result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            second_result = node_hash(second_result, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and first_result == first_root and second_result == second_root
