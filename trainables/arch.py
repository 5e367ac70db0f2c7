"""Architecture parameters of one stage, the expected DRAM cost under them, and the derivation of a cell.

``ArchSpace`` holds, per alpha set (one per cell, or two when ``share_alphas``: normal, reduction) and
per edge, the candidate operator names of the current stage; alphas are one tensor
(n_sets, n_edges, K_max) whose padded slots are masked to -inf before the softmax, so every stage's
mixing weights come out of one softmax call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from searchspace.genotype import CellGenotype, Genotype, cell_edges


@dataclass(frozen=True)
class ArchSpace:
    candidates: tuple[tuple[tuple[str, ...], ...], ...]  # [set][edge] -> candidate names
    set_of_cell: tuple[int, ...]  # cell index -> alpha set index
    reduction_of_cell: tuple[bool, ...]
    nodes: int

    @property
    def k_max(self) -> int:
        return max(len(c) for row in self.candidates for c in row)

    @property
    def n_edges(self) -> int:
        return len(self.candidates[0])

    def edge_spec(self) -> list[list[tuple[str, ...]]]:
        """Per cell, per edge candidates (what ``Network`` builds)."""
        return [list(self.candidates[s]) for s in self.set_of_cell]

    def mask(self) -> torch.Tensor:
        """(n_sets, n_edges, K_max) bool: True where a candidate exists."""
        m = torch.zeros(len(self.candidates), self.n_edges, self.k_max, dtype=torch.bool)
        for s, row in enumerate(self.candidates):
            for e, cands in enumerate(row):
                m[s, e, :len(cands)] = True
        return m

    def cost_tensor(self, table: np.ndarray, candidate_order: tuple[str, ...]) -> torch.Tensor:
        """Gather a per-(cell, edge, registry candidate) cost table into (cells, n_edges, K_max)."""
        pos = {name: i for i, name in enumerate(candidate_order)}
        out = torch.zeros(len(self.set_of_cell), self.n_edges, self.k_max, dtype=torch.float64)
        for cell, s in enumerate(self.set_of_cell):
            for e, cands in enumerate(self.candidates[s]):
                for k, name in enumerate(cands):
                    out[cell, e, k] = float(table[cell, e, pos[name]])
        return out.float()


def make_space(per_edge: list[list[tuple[str, ...]]] | tuple[str, ...], reductions: tuple[bool, ...], nodes: int,
               share: bool) -> ArchSpace:
    """A space whose sets hold ``per_edge`` candidates; a flat tuple puts the same candidates everywhere."""
    n_edges = len(cell_edges(nodes))
    set_of_cell = tuple((1 if r else 0) for r in reductions) if share else tuple(range(len(reductions)))
    n_sets = max(set_of_cell) + 1
    if isinstance(per_edge, tuple):
        per_edge = [[per_edge] * n_edges for _ in range(n_sets)]
    return ArchSpace(tuple(tuple(tuple(c) for c in row) for row in per_edge), set_of_cell, tuple(reductions), nodes)


def mixing_weights(alpha: torch.Tensor, mask: torch.Tensor, set_of_cell: torch.Tensor) -> torch.Tensor:
    """softmax over each edge's candidates, expanded to cells: (n_sets, E, K) -> (cells, E, K)."""
    return torch.softmax(alpha.masked_fill(~mask, float("-inf")), dim=-1).index_select(0, set_of_cell)


def alpha_entropy(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the per-edge softmax; falls as the search commits to operators."""
    p = torch.softmax(alpha.masked_fill(~mask, float("-inf")), dim=-1)
    return -(p * torch.log(p.clamp_min(1e-12))).sum(-1).mean()


def argmax_names(space: ArchSpace, alpha: torch.Tensor) -> list[list[str]]:
    """[set][edge] -> name of the strongest candidate."""
    a = alpha.detach().masked_fill(~space.mask(), float("-inf")).argmax(-1).tolist()
    return [[space.candidates[s][e][k] for e, k in enumerate(row)] for s, row in enumerate(a)]


def derive_genotype(space: ArchSpace, op_weight: np.ndarray, edge_strength: np.ndarray, max_skip_per_cell: int) -> Genotype:
    """Per node the two strongest incoming edges, per edge the strongest operator (seed 1, step 5).

    ``op_weight`` (n_sets, E, K): stage-2 mixing weights (which operator within the winning group);
    ``edge_strength`` (n_sets, E): how strongly stage 1 chose the edge's group (comparable across edges,
    unlike stage-2 weights, which are 1.0 on every single-operator group). A cap on skip_connects per
    cell (-1: none) drops the weakest skip edges and takes the node's next-best edge instead (P-DARTS).
    """
    edges = cell_edges(space.nodes)
    cells = []
    for cell, s in enumerate(space.set_of_cell):
        banned: set[int] = set()
        while True:
            chosen = _choose(space.candidates[s], op_weight[s], edge_strength[s], edges, banned)
            skips = [(edge_strength[s][e], e) for e, op in chosen if op == "skip_connect"]
            bannable = [x for x in skips if x[1] not in banned]
            if max_skip_per_cell < 0 or len(skips) <= max_skip_per_cell or not bannable:
                break  # within the cap, or every remaining skip is a node's only way to two inputs
            banned.add(min(bannable)[1])
        picked = [(op, edges[e][0], edges[e][1]) for e, op in sorted(chosen)]
        cells.append(CellGenotype(space.reduction_of_cell[cell], tuple(picked)))
    return Genotype(tuple(cells))


def _choose(cands, weights, strength, edges, banned: set[int]) -> list[tuple[int, str]]:
    chosen = []
    for dst in sorted({d for _, d in edges}):
        incoming = [e for e, (_s, d) in enumerate(edges) if d == dst]
        scored = []
        for e in incoming:
            order = sorted(range(len(cands[e])), key=lambda k: -weights[e][k])
            ops = [cands[e][k] for k in order if not (e in banned and cands[e][k] == "skip_connect")]
            if ops:
                scored.append((e in banned and cands[e] == ("skip_connect",), -strength[e], e, ops[0]))
        # a banned skip-only edge is used only if the node has no other way to get two inputs
        pool = [x for x in scored] + [(True, -strength[e], e, "skip_connect") for e in incoming
                                      if e in banned and all(e != x[2] for x in scored)]
        pool.sort()
        chosen.extend((e, op) for _b, _s, e, op in pool[:2])
    return chosen
