"""Genotypes: the searched cell structure, a small frozen value used as the key of Parquet rows and
cost queries alike.

Nodes are numbered 0 and 1 for a cell's two inputs (the outputs of the two previous cells) and
2 .. nodes+1 for its intermediate nodes. Edges are numbered in the usual DARTS order: node by node,
each node's inputs in order (14 per cell with 4 intermediate nodes).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Sequence


def cell_edges(nodes: int = 4) -> tuple[tuple[int, int], ...]:
    """(from, to) for every edge of a cell, in DARTS order: ((0, 2), (1, 2), (0, 3), (1, 3), (2, 3), ...)."""
    return tuple((src, dst) for dst in range(2, nodes + 2) for src in range(dst))


@dataclass(frozen=True)
class CellGenotype:
    reduction: bool
    edges: tuple[tuple[str, int, int], ...]  # (op name, from node, to node), sorted by to, then from

    def ops(self) -> tuple[str, ...]:
        return tuple(op for op, _, _ in self.edges)

    def skip_count(self) -> int:
        return sum(op == "skip_connect" for op, _, _ in self.edges)


@dataclass(frozen=True)
class Genotype:
    """One entry per cell of the network (per-cell architecture parameters give per-cell genotypes)."""

    cells: tuple[CellGenotype, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"cells": [{"reduction": c.reduction, "edges": [list(e) for e in c.edges]} for c in self.cells]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Genotype":
        try:
            cells = tuple(
                CellGenotype(bool(c["reduction"]), tuple((str(op), int(a), int(b)) for op, a, b in c["edges"]))
                for c in d["cells"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a genotype dict ({exc!r}): expected {{'cells': [{{'reduction', 'edges'}}]}}") from None
        return cls(cells)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Genotype":
        return cls.from_dict(json.loads(text))

    def skip_counts(self) -> tuple[int, ...]:
        return tuple(c.skip_count() for c in self.cells)


def random_genotype(reductions: Sequence[bool], nodes: int, rng: random.Random, candidates: Sequence[str],
                    op_probs: Sequence[float] | None = None) -> Genotype:
    """A DARTS-style random genotype: per node two distinct inputs drawn uniformly, each edge's operator
    uniform over ``candidates`` or drawn with ``op_probs``. One cell per entry of ``reductions``."""
    cells = []
    for red in reductions:
        edges = []
        for dst in range(2, nodes + 2):
            for src in sorted(rng.sample(range(dst), 2)):
                op = rng.choices(candidates, weights=op_probs)[0] if op_probs is not None else rng.choice(candidates)
                edges.append((op, src, dst))
        cells.append(CellGenotype(red, tuple(edges)))
    return Genotype(tuple(cells))
