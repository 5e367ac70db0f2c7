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


def _flag(value: Any, cell: int) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"genotype cell {cell}: 'reduction' must be true or false, got {value!r}")
    return value


def _node(value: Any, cell: int, edge: int, which: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):  # 1.7 is not node 1
        raise ValueError(f"genotype cell {cell} edge {edge}: the {which} node must be a whole number, got {value!r}")
    return value


def _edge(e: Any, cell: int, edge: int) -> tuple[str, int, int]:
    from .ops import CANDIDATES, OPS

    if not isinstance(e, (list, tuple)) or len(e) != 3:
        raise ValueError(f"genotype cell {cell} edge {edge}: expected [operator, from node, to node], got {e!r}")
    op, a, b = e[0], _node(e[1], cell, edge, "from"), _node(e[2], cell, edge, "to")
    if op not in CANDIDATES:
        what = "is not an edge operator of the search space" if op in OPS else "is an unknown operator"
        raise ValueError(f"genotype cell {cell} edge {edge}: {op!r} {what} (edge operators: {', '.join(CANDIDATES)})")
    if not 0 <= a < b or b < 2:
        raise ValueError(f"genotype cell {cell} edge {edge}: nodes {a} -> {b} are not an edge of a cell (inputs are "
                         "nodes 0 and 1, intermediate nodes 2, 3, ...; an edge goes from a lower node to a higher one)")
    return str(op), a, b


@dataclass(frozen=True)
class Genotype:
    """One entry per cell of the network (per-cell architecture parameters give per-cell genotypes)."""

    cells: tuple[CellGenotype, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"cells": [{"reduction": c.reduction, "edges": [list(e) for e in c.edges]} for c in self.cells]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Genotype":
        """Checked, not coerced: every edge is [an edge operator, from node, to node] with whole-number node
        indices, from < to and to >= 2 (a ValueError naming the cell and edge otherwise)."""
        try:
            cells = tuple(
                CellGenotype(_flag(c["reduction"], i), tuple(_edge(e, i, j) for j, e in enumerate(c["edges"])))
                for i, c in enumerate(d["cells"])
            )
        except (KeyError, TypeError) as exc:
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
