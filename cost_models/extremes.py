"""The cheap end of the search space: the genotype the DRAM term would reach if it alone decided.

``cheapest_genotype`` reads an ``EdgeCostTable`` (each candidate's share on every edge of every searched cell)
and picks, per cell, the derivation the search itself could produce that costs least: per intermediate node
two distinct incoming edges, one operator each, at most ``max_skip_per_cell`` skip_connects per cell (the
cap derivation always enforces). Costed with ``derived_network_cost`` it is E_min, the bottom of the range a
lambda scan can span (``benchmarks/front_range.py``: coverage = how much of E(lambda 0) - E_min a scan reaches).

The pick is exact for the table's additive model (entries + fixed terms, ``EdgeCostTable.genotype_cost``): per
node the cheapest pair for 0, 1 and 2 skips, then a small knapsack over the nodes on the cell's skip count.
Where the network cost is not additive in the table's entries the pick is the table's argmin, which
``derived_network_cost`` then prices exactly.
"""
from __future__ import annotations

import itertools
from typing import Sequence

from searchspace.genotype import CellGenotype, Genotype, cell_edges
from searchspace.layout import reduction_cells

from .network import EdgeCostTable

SKIP = "skip_connect"
METRICS = {"energy": "energy_uj", "time": "time_us", "bytes": "dram_bytes"}


def cheapest_genotype(table: EdgeCostTable, nodes: int, max_skip_per_cell: int, metric: str = "energy",
                      operators: Sequence[str] | None = None) -> Genotype:
    """The genotype of least ``metric`` (``energy``, ``time`` or ``bytes`` of the table) whose cells keep two
    incoming edges per node and at most ``max_skip_per_cell`` skip_connects (-1: no cap); ``operators``: the
    operators the search space holds (default every candidate of the table). One cell per searched cell,
    reduction cells where ``searchspace.layout.reduction_cells`` puts them."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}")
    values = getattr(table, METRICS[metric])
    allowed = list(table.candidates if operators is None else operators)
    unknown = [op for op in allowed if op not in table.candidates]
    if unknown or not allowed:
        raise ValueError(f"operators {unknown or allowed}: not candidates of the cost table "
                         f"({', '.join(table.candidates)})")
    n_cells, n_edges, _ = values.shape
    edges = cell_edges(nodes)
    if n_edges != len(edges):
        raise ValueError(f"the cost table has {n_edges} edges per cell, {nodes} nodes have {len(edges)}")
    cap = 2 * nodes if max_skip_per_cell < 0 else max_skip_per_cell
    reductions = set(reduction_cells(n_cells))
    cells = []
    for cell in range(n_cells):
        # per edge: its cheapest non-skip operator and the skip's cost (None when not allowed)
        options = []
        for e in range(n_edges):
            costs = {op: float(values[cell, e, table.candidates.index(op)]) for op in allowed}
            plain = min((op for op in allowed if op != SKIP), key=lambda op: costs[op], default=None)
            options.append((plain, costs.get(plain), costs.get(SKIP)))
        picks = _cheapest_cell(edges, nodes, options, cap)
        if picks is None:
            raise ValueError(f"cell {cell}: no derivation with two inputs per node under {cap} skips from "
                             f"operators {allowed}")
        cells.append(CellGenotype(cell in reductions, tuple(sorted(picks, key=lambda x: (x[2], x[1])))))
    return Genotype(tuple(cells))


def _cheapest_cell(edges, nodes: int, options, cap: int) -> list[tuple[str, int, int]] | None:
    """Per node the cheapest two-edge choice for each skip count, then the cheapest combination over the
    nodes whose skips stay within ``cap`` (a knapsack on the skip count)."""
    per_node = []  # per node: {skips: (cost, [(op, src, dst), ...])}
    for dst in range(2, nodes + 2):
        incoming = [(e, src) for e, (src, d) in enumerate(edges) if d == dst]
        best: dict[int, tuple[float, list]] = {}
        for (e1, s1), (e2, s2) in itertools.combinations(incoming, 2):
            for use1, use2 in itertools.product((False, True), repeat=2):
                choice = []
                for e, src, use_skip in ((e1, s1, use1), (e2, s2, use2)):
                    plain, plain_cost, skip_cost = options[e]
                    op, cost = (SKIP, skip_cost) if use_skip else (plain, plain_cost)
                    if op is None or cost is None:
                        break
                    choice.append((op, src, dst, cost))
                else:
                    skips, cost = use1 + use2, sum(c for *_, c in choice)
                    if skips not in best or cost < best[skips][0]:
                        best[skips] = (cost, [(op, src, d) for op, src, d, _ in choice])
        if not best:
            return None
        per_node.append(best)
    # knapsack: states = skips used so far -> (cost, picks)
    states: dict[int, tuple[float, list]] = {0: (0.0, [])}
    for best in per_node:
        nxt: dict[int, tuple[float, list]] = {}
        for used, (cost, picks) in states.items():
            for skips, (c, p) in best.items():
                total = used + skips
                if total <= cap and (total not in nxt or cost + c < nxt[total][0]):
                    nxt[total] = (cost + c, picks + p)
        states = nxt
    if not states:
        return None
    return min(states.values(), key=lambda s: s[0])[1]


__all__ = ["METRICS", "cheapest_genotype"]
