"""Architecture parameters of one stage, the expected DRAM cost under them, and the derivation of a cell.

``ArchSpace`` holds, per alpha set (one per cell, or two when ``share_alphas``: normal, reduction) and
per edge, the candidate operator names of the current stage; alphas are one tensor
(n_sets, n_edges, K_max) whose padded slots are masked to -inf before the softmax, so every stage's
mixing weights come out of one softmax call.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from searchspace.genotype import CellGenotype, Genotype, cell_edges
from searchspace.groups import Groups

log = logging.getLogger(__name__)


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


RANKS = ("both", "stage1")  # config.derive_rank
Option = tuple[float, float, str]  # (edge score, tie-break: the operator's own weight, operator name)


def derive_genotype(space: ArchSpace, op_weight: np.ndarray, edge_strength: np.ndarray, max_skip_per_cell: int, *,
                    alternatives: Sequence[Sequence[Sequence[tuple[str, float]]]] | None = None,
                    rank: str = "both") -> Genotype:
    """Per node the two strongest incoming edges, per edge the strongest operator (the search patent, step 5).

    ``space``: the stage-2 space (each edge's winning-group operators); ``op_weight`` (n_sets, E, K):
    stage-2 mixing weights; ``edge_strength`` (n_sets, E): the stage-1 weight of the edge's winning group.

    The rule (``rank``): an edge whose winning group g (K operators) put weight p on operator o scores
    ``s1[g] * K * p`` with ``"both"`` (stage-1 group weight x stage-2 operator weight relative to
    uniform, so a one-operator group such as skip is not favoured for having no sibling to share its weight
    with, and a one-group spec, where every s1 is 1.0, still ranks edges by what stage 2 learned), or
    ``s1[g]`` with ``"stage1"`` (the rule before issue 16). Each node keeps its two best-scoring edges.

    The cap: while a cell holds more than ``max_skip_per_cell`` skip_connects (-1: no cap), the weakest
    chosen skip edge is barred from skip and takes its next option: another operator of its own group,
    or ``alternatives[s][e]`` = the other stage-1 groups as (their operator, stage-1 weight), scoring their
    weight; then the nodes choose again. A barred edge with no other operator is used only when its node has
    no other way to two inputs; only then can a cell stay over the cap (logged), and only without
    ``alternatives`` or with a spec whose only group is skip.
    """
    if rank not in RANKS:
        raise ValueError(f"derive rank {rank!r}: expected one of {', '.join(RANKS)}")
    edges = cell_edges(space.nodes)
    cells = []
    for cell, s in enumerate(space.set_of_cell):
        options = [_options(space.candidates[s][e], op_weight[s][e], float(edge_strength[s][e]),
                            alternatives[s][e] if alternatives is not None else (), rank)
                   for e in range(len(edges))]
        banned: set[int] = set()  # edges barred from skip_connect
        while True:
            chosen = _choose(options, edges, banned)  # [(edge, option)]
            skips = [(opt[0], e) for e, opt in chosen if opt[2] == "skip_connect"]
            if max_skip_per_cell < 0 or len(skips) <= max_skip_per_cell:
                break
            bannable = [x for x in skips if x[1] not in banned]
            if not bannable:  # every skip left is a node's only way to two inputs
                log.warning("cell %d: %d skip_connects over the cap %d: their nodes have no other operator", cell,
                            len(skips), max_skip_per_cell)
                break
            banned.add(min(bannable)[1])
        picked = [(opt[2], edges[e][0], edges[e][1]) for e, opt in sorted(chosen)]
        cells.append(CellGenotype(space.reduction_of_cell[cell], tuple(picked)))
    return Genotype(tuple(cells))


def _options(cands: tuple[str, ...], weights, strength: float, others, rank: str) -> list[Option]:
    """An edge's operators, best first: its winning group's (scored by the rule), then the other groups'."""
    k = len(cands)
    opts = [(strength * (k * float(weights[i]) if rank == "both" else 1.0), float(weights[i]), op)
            for i, op in enumerate(cands)]
    opts += [(float(w), 0.0, op) for op, w in others if op not in cands]
    return sorted(opts, key=lambda o: (-o[0], -o[1]))


def _choose(options: list[list[Option]], edges, banned: set[int]) -> list[tuple[int, Option]]:
    chosen = []
    for dst in sorted({d for _, d in edges}):
        scored = []
        for e, (_src, d) in enumerate(edges):
            if d != dst:
                continue
            usable = [o for o in options[e] if not (e in banned and o[2] == "skip_connect")]
            if usable:
                scored.append((-usable[0][0], e, usable[0]))
        scored.sort(key=lambda x: (x[0], x[1]))
        if len(scored) < 2:  # a barred skip-only edge is used only if the node has no other way to two inputs
            forced = sorted((-options[e][0][0], e, options[e][0]) for e, (_s, d) in enumerate(edges)
                            if d == dst and e in banned and all(e != x[1] for x in scored) and options[e])
            scored += forced[:2 - len(scored)]
        chosen.extend((e, opt) for _s, e, opt in scored[:2])
    return chosen


def stage1_alternatives(stage1: ArchSpace, stage1_weight: np.ndarray, groups: Groups, stage2: ArchSpace,
                        op_weight: np.ndarray) -> list[list[list[tuple[str, float]]]]:
    """[set][edge] -> every stage-1 group but the edge's winner as (operator, stage-1 weight), strongest first.

    ``stage1_weight`` (n_sets, E, K1): stage-1 mixing weights over ``stage1``'s representatives. A group's
    operator is the one stage 2 weighted highest on average over the set's edges where that group won
    (stage 2 never saw it on this edge), else its stage-1 representative.
    """
    out = []
    for s, row in enumerate(stage1.candidates):
        best: dict[str, str] = {}
        for name, ops in groups.items:
            won = [e for e, c in enumerate(stage2.candidates[s]) if c == ops]
            if len(ops) > 1 and won:
                mean = np.mean([op_weight[s][e][:len(ops)] for e in won], axis=0)
                best[name] = ops[int(np.argmax(mean))]
        alts = []
        for e, reps in enumerate(row):
            winner = groups.group_of(stage2.candidates[s][e][0])
            pairs = [(best.get(groups.group_of(rep), rep), float(stage1_weight[s][e][k]))
                     for k, rep in enumerate(reps) if groups.group_of(rep) != winner]
            alts.append(sorted(pairs, key=lambda x: -x[1]))
        out.append(alts)
    return out
