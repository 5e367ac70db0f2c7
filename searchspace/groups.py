"""Operator groups (the search patent, CN112561027A, claims 2 and 5): candidate operators clustered into
groups of one kind.

* ``default``: the patent's four groups: pools, skip, separable convs, dilated separable convs.
* ``learned:K``: groups computed by clustering the operators (claim 2): every candidate runs on the
  same batch through a briefly warmed-up uniform supernet; operators whose outputs agree (cosine
  similarity, averaged over all edges) are merged by average-linkage agglomerative clustering into K.
* an explicit spec ``name=op,op;name=op``: the user's own grouping.

A ``Groups`` value maps group name -> operator names, in registry order; it is part of the result.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ops import CANDIDATES, get_op

DEFAULT_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pool", ("max_pool_3x3", "avg_pool_3x3")),
    ("skip", ("skip_connect",)),
    ("sep_conv", ("sep_conv_3x3", "sep_conv_5x5")),
    ("dil_conv", ("dil_conv_3x3", "dil_conv_5x5")),
)


@dataclass(frozen=True)
class Groups:
    items: tuple[tuple[str, tuple[str, ...]], ...]  # ((group name, (op, ...)), ...)

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        if not self.items:
            raise ValueError("no operator groups given")
        for name, ops in self.items:
            if not ops:
                raise ValueError(f"operator group {name!r} is empty")
            for op in ops:
                if get_op(op).searchable is False:
                    raise ValueError(f"operator {op!r} (group {name!r}) is structural, not an edge candidate; "
                                     f"candidates: {', '.join(CANDIDATES)}")
                if op in seen:
                    raise ValueError(f"operator {op!r} is in two groups: {seen[op]!r} and {name!r}")
                seen[op] = name
        if len({n for n, _ in self.items}) != len(self.items):
            raise ValueError(f"duplicate group names in {[n for n, _ in self.items]}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.items)

    def ops(self, name: str) -> tuple[str, ...]:
        for n, ops in self.items:
            if n == name:
                return ops
        raise ValueError(f"unknown operator group {name!r}; groups: {', '.join(self.names)}")

    def group_of(self, op: str) -> str:
        for n, ops in self.items:
            if op in ops:
                return n
        raise ValueError(f"operator {op!r} is in no group ({self.to_dict()})")

    def representatives(self, preferred: tuple[str, ...] = ()) -> tuple[str, ...]:
        """One operator per group for stage 1: the one named in ``preferred``, else the group's first."""
        for op in preferred:
            get_op(op)  # unknown operator -> ValueError
            self.group_of(op)
        reps = []
        for name, ops in self.items:
            chosen = [op for op in preferred if op in ops]
            if len(chosen) > 1:
                raise ValueError(f"representatives name {chosen} for group {name!r}: at most one per group")
            reps.append(chosen[0] if chosen else ops[0])
        return tuple(reps)

    def to_dict(self) -> dict[str, list[str]]:
        return {n: list(ops) for n, ops in self.items}

    @classmethod
    def from_dict(cls, d: dict[str, list[str]]) -> "Groups":
        return cls(tuple((str(n), tuple(ops)) for n, ops in d.items()))


def parse_groups(spec: str) -> Groups | int:
    """``default`` -> Groups; ``learned:K`` -> K (the caller clusters); ``a=op,op;b=op`` -> Groups."""
    spec = spec.strip()
    if spec == "default":
        return Groups(DEFAULT_GROUPS)
    if spec.startswith("learned:"):
        try:
            k = int(spec.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"groups {spec!r}: expected learned:K with an integer K") from None
        if not 1 <= k <= len(CANDIDATES):
            raise ValueError(f"groups {spec!r}: K must be between 1 and {len(CANDIDATES)} (the candidate count)")
        return k
    if "=" not in spec:
        raise ValueError(f"unknown groups {spec!r}: expected 'default', 'learned:K' or 'name=op,op;name=op'")
    items = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, _, ops = part.partition("=")
        items.append((name.strip(), tuple(o.strip() for o in ops.split(",") if o.strip())))
    return Groups(tuple(items))


def cluster_operators(similarity: np.ndarray, ops: tuple[str, ...], k: int) -> Groups:
    """Average-linkage agglomerative clustering of operators into ``k`` groups.

    ``similarity`` is (n_ops, n_ops), symmetric, higher = more alike. Ties break by registry order so
    the grouping is deterministic. Groups are named ``cluster0..`` in order of their first operator.
    """
    n = len(ops)
    if similarity.shape != (n, n):
        raise ValueError(f"similarity matrix {similarity.shape} does not match {n} operators")
    clusters: list[list[int]] = [[i] for i in range(n)]
    while len(clusters) > k:
        best, pair = -np.inf, (0, 1)
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                s = float(np.mean([similarity[i, j] for i in clusters[a] for j in clusters[b]]))
                if s > best + 1e-12:
                    best, pair = s, (a, b)
        a, b = pair
        clusters[a] = sorted(clusters[a] + clusters[b])
        del clusters[b]
    clusters.sort(key=lambda c: c[0])
    return Groups(tuple((f"cluster{g}", tuple(ops[i] for i in c)) for g, c in enumerate(clusters)))
