"""Network-level DRAM costs: a derived network's total (what each trial reports) and the supernet's
per-(cell, edge, candidate) table (what the search loss weighs the architecture parameters with).

Both count every kernel a network runs (stem, preprocessing, edge operators, node sums, the cells'
output concat, classifier) with the one accounting of ``cost_models.accounting``: the table's entries
are each edge's share (its operator + its share of the node's sum), its ``fixed_*`` fields the rest, so
that a derived genotype's entries plus the fixed terms equal ``network_cost`` at the same geometry.
Both take the network as a ``NetworkSpec`` (``searchspace.layout``), a profile and a batch. A trial costs
the deployed form of every operator (pools without the supernet's BN) on the deployed network
(``network_spec(config, DEPLOYMENT)``: ``deploy_layers`` x ``deploy_channels`` x ``deploy_image_size``,
each 0 = the evaluation network's, itself the search's by default): the loss and every reported cost see
what the shipped network pays, not the search's proxy, whose tensors all fit on chip; ``derived_network_cost``
and ``search_cost_table`` are that trial's view of a ``SearchConfig``. Each searched cell stands for the
deployed cells of its segment (``layout.cell_sources``, the mapping ``expand_genotype`` uses), so its
table entry is the sum over those cells at their shapes.

Both ask their ``query_fn`` once, with one batch of deduplicated operator queries, so a Tune trial talks
to the cost service actor once per table; without a ``query_fn`` they compute in process (``hwnas
trial``). Node sums and concats need no query: they follow from tensor sizes and the profile.
Shapes come from ``searchspace.layout``, the single source of every tensor shape in the project.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from searchspace.config import SearchConfig
from searchspace.genotype import Genotype, cell_edges
from searchspace.layout import (CONCAT_OP, DEPLOYMENT, NODE_SUM_OP, SEARCH, CostTable, NetworkSpec, OpInstance,
                                cell_concat_instance, cell_sources, classifier_instance, edge_input, expand_genotype,
                                network_instances, network_spec, node_sum_instance, plan_cells, preprocess_instances,
                                reduction_cells, stem_instance)
from searchspace.ops import CANDIDATES, is_identity

from .accounting import Term, concat_row, edge_row, edge_share, node_fixed, node_sum_row, op_term
from .kernels import network_rows, table_terms
from .profile import load_profile
from .query import CostQuery, QueryFn, local_query_fn
from .traffic import OpCost

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkCost:
    """Whole-network DRAM cost at batch ``batch`` on ``profile``, with one row per kernel group (an
    operator application, a node's sum, a cell's concat), in execution order."""

    profile: str
    batch: int
    dram_read_bytes: int
    dram_write_bytes: int
    dram_bytes: int
    compulsory_bytes: int
    dram_latencies: int  # DRAM latencies paid: kernels + unprefetched tile waves
    dram_time_us: float
    dram_energy_uj: float
    # OpInstance fields (op, c_in, c_out, h, w, stride, cell, edge, role, node, fan_in) + the row's
    # dram_read_bytes, dram_write_bytes, dram_bytes, compulsory_bytes, dram_latencies, dram_time_us, dram_energy_uj
    rows: tuple[dict[str, Any], ...]

    def to_dict(self, rows: bool = False) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("profile", "batch", "dram_read_bytes", "dram_write_bytes", "dram_bytes",
                                           "compulsory_bytes", "dram_latencies", "dram_time_us", "dram_energy_uj")}
        if rows:
            d["rows"] = [dict(r) for r in self.rows]
        return d


@dataclass(frozen=True, eq=False, kw_only=True)
class EdgeCostTable(CostTable):
    """The search loss's ``CostTable`` (``time_us[cell, edge, candidate]``, cell: a searched cell; the same
    for energy) with its bytes: what choosing that candidate on that edge adds to the deployed network (its
    operator and its share of the node's sum, summed over the deployed cells the searched cell stands for;
    module doc). ``fixed_*``: everything the choice does not change (stem, preprocessing, node writes,
    concats, classifier), over the whole deployed network. The fields beyond ``CostTable``'s are keywords."""

    profile: str
    batch: int
    dram_bytes: np.ndarray  # int64 [n_cells, n_edges, n_candidates]
    fixed_dram_bytes: int = 0
    geometry: NetworkSpec | None = None  # the deployed network the entries are for
    deployed_cells: tuple[int, ...] = ()  # per searched cell: how many deployed cells it stands for

    def genotype_cost(self, genotype: Genotype, nodes: int) -> tuple[float, float, int]:
        """(time_us, energy_uj, dram_bytes) of a searched genotype's deployed network: its edges' entries + fixed."""
        index = {e: i for i, e in enumerate(cell_edges(nodes))}
        t, e, b = self.fixed_time_us, self.fixed_energy_uj, self.fixed_dram_bytes
        for cell, cg in enumerate(genotype.cells):
            for op, src, dst in cg.edges:
                k = (cell, index[(src, dst)], self.candidates.index(op))
                t, e, b = t + float(self.time_us[k]), e + float(self.energy_uj[k]), b + int(self.dram_bytes[k])
        return t, e, b


def _answer(queries: list[CostQuery], query_fn: QueryFn | None) -> dict[CostQuery, OpCost]:
    """One batched call for the distinct queries; a dict back."""
    unique = list(dict.fromkeys(queries))
    costs = (query_fn or local_query_fn)(unique)
    if len(costs) != len(unique):
        raise RuntimeError(f"query_fn answered {len(costs)} costs for {len(unique)} queries")
    return dict(zip(unique, costs))


def _instance_query(inst: OpInstance, profile: str, batch: int) -> CostQuery:
    return CostQuery(profile, inst.op, inst.c_in, inst.c_out, inst.h, inst.w, inst.stride, batch)


def _is_operator(inst: OpInstance) -> bool:
    return inst.op not in (NODE_SUM_OP, CONCAT_OP)


def network_cost(genotype: Genotype, spec: NetworkSpec, profile_name: str, batch: int,
                 query_fn: QueryFn | None = None) -> NetworkCost:
    """DRAM bytes, time and energy of every kernel of the network ``spec`` of ``genotype`` (one cell per
    layer), one inference of ``batch`` images on the processor ``profile_name`` (a profile name or file);
    ``derived_network_cost`` costs a trial's deployed network."""
    profile = load_profile(profile_name)
    plans = plan_cells(spec)
    instances = network_instances(genotype, spec)
    queries = {i: _instance_query(inst, profile_name, batch) for i, inst in enumerate(instances) if _is_operator(inst)}
    answers = _answer(list(queries.values()), query_fn)
    costs = {i: answers[q] for i, q in queries.items()}
    if profile.fused:  # the kernels it runs, under the profile's rule between kernels (cost_models.kernels)
        terms = network_rows(profile, batch, instances, plans, spec.nodes, costs)
    else:
        terms = [(t, 0, 0) for t in _unfused_rows(profile, batch, instances, costs)]
    rows, total = [], Term()
    for inst, (term, onchip, spilled) in zip(instances, terms):
        total = total + term
        rows.append({"op": inst.op, "c_in": inst.c_in, "c_out": inst.c_out, "h": inst.h, "w": inst.w,
                     "stride": inst.stride, "cell": inst.cell, "edge": inst.edge, "role": inst.role,
                     "node": inst.node, "fan_in": inst.fan_in, **term.to_dict(profile), "onchip_bytes": onchip,
                     "spilled_bytes": spilled})
    result = NetworkCost(
        profile=profile_name, batch=batch, dram_read_bytes=total.dram_read_bytes,
        dram_write_bytes=total.dram_write_bytes, dram_bytes=total.dram_bytes, compulsory_bytes=total.compulsory_bytes,
        dram_latencies=total.dram_latencies, dram_time_us=float(sum(r["dram_time_us"] for r in rows)),
        dram_energy_uj=float(sum(r["dram_energy_uj"] for r in rows)), rows=tuple(rows))
    log.debug("network cost on %s (%d cells, C=%d, %dx%d): %d B, %.2f us, %.3f uJ over %d rows", profile_name,
              spec.layers, spec.channels, spec.image_size, spec.image_size, result.dram_bytes, result.dram_time_us,
              result.dram_energy_uj, len(rows))
    return result


def _unfused_rows(profile, batch: int, instances: list[OpInstance], costs: dict[int, OpCost]) -> list[Term]:
    """Every kernel as an eager runtime runs it (``cost_models.accounting``): operators, adds, concat copies."""
    identities: dict[tuple[int, int], int] = {}  # identity inputs per (cell, node)
    for inst in instances:
        if inst.role == "edge" and is_identity(inst.op, inst.c_in, inst.c_out, inst.stride):
            identities[(inst.cell, inst.node)] = identities.get((inst.cell, inst.node), 0) + 1
    terms = []
    for i, inst in enumerate(instances):
        if inst.role == "edge":
            terms.append(edge_row(profile, batch, inst, costs[i]))
        elif inst.role == "node_sum":
            terms.append(node_sum_row(profile, batch, inst, identities.get((inst.cell, inst.node), 0)))
        elif inst.role == "cell_concat":
            terms.append(concat_row(profile, batch, inst))
        else:  # stem, preprocess0/1, classifier: the operator as it runs
            terms.append(op_term(costs[i]))
    return terms


def derived_network_cost(genotype: Genotype, config: SearchConfig, query_fn: QueryFn | None = None) -> NetworkCost:
    """The cost a trial reports: the searched ``genotype`` mapped onto the deployed network
    (``network_spec(config, DEPLOYMENT)``: deploy_* keys, 0 = the evaluation network's, itself the
    search's by default) and costed there, on ``config.profile`` at ``config.cost_batch``."""
    spec = network_spec(config, DEPLOYMENT)
    return network_cost(expand_genotype(genotype, spec.layers), spec, config.profile, config.cost_batch, query_fn)


def search_cost_table(config: SearchConfig, query_fn: QueryFn | None = None) -> EdgeCostTable:
    """The table a trial's loss weighs: ``edge_cost_table`` of its deployed network, over its searched
    cells, on ``config.profile`` at ``config.cost_batch``."""
    return edge_cost_table(network_spec(config, DEPLOYMENT), config.profile, config.cost_batch, query_fn,
                           searched=network_spec(config, SEARCH))


def edge_cost_table(spec: NetworkSpec, profile_name: str, batch: int, query_fn: QueryFn | None = None, *,
                    searched: NetworkSpec | None = None) -> EdgeCostTable:
    """Each candidate's share on every edge of every searched cell, in ``CANDIDATES`` order, and the
    network's fixed terms, for the network ``spec`` (one inference of ``batch`` on ``profile_name``)
    built from the cells of a search of ``searched`` (default: ``spec`` itself).

    Searched cell i's entry is the sum of its share over the cells of ``spec`` that take cell i
    (``layout.cell_sources``), each at its own shapes; so entries + fixed of a searched genotype equal
    ``network_cost`` of its expansion onto ``spec``. Shape [searched cells, edges, candidates], whatever
    the depth of ``spec``. One batched query (distinct operator shapes only) for the whole table."""
    searched = searched or spec
    profile, nodes = load_profile(profile_name), spec.nodes
    reductions = reduction_cells(searched.layers)
    sources = cell_sources([i in reductions for i in range(searched.layers)], spec.layers)
    plans = plan_cells(spec)
    edges = cell_edges(nodes)
    cells = [[OpInstance(op, c, c, h, h, s, plan.index, e, node=dst)
              for e, (src, dst) in enumerate(edges) for (c, h, s) in [edge_input(plan, src)] for op in CANDIDATES]
             for plan in plans]
    fixed_ops = [stem_instance(spec), *(p for plan in plans for p in preprocess_instances(plan)),
                 classifier_instance(spec, plans)]
    ops = [inst for row in cells for inst in row] + fixed_ops
    queries = [_instance_query(inst, profile_name, batch) for inst in ops]
    answers = _answer(queries, query_fn)
    deployed = (len(plans), len(edges), len(CANDIDATES))
    n_share = len(plans) * len(edges) * len(CANDIDATES)
    if profile.fused:  # the reference schedule under the profile's rule between kernels (cost_models.kernels)
        costs = [answers[q] for q in queries]
        per_edge = np.array(costs[:n_share], dtype=object).reshape(deployed).tolist()
        fixed_costs = list(zip(fixed_ops, costs[n_share:]))
        cell_shares, fixed_term = table_terms(profile, batch, plans, nodes, CANDIDATES, fixed_costs[0],
                                              fixed_costs[1:-1], fixed_costs[-1], per_edge)
        shares = [t for cell in cell_shares for row in cell for t in row]
        fixed = [fixed_term]
    else:
        shares = [edge_share(profile, batch, inst, answers[q]) for inst, q in zip(ops, queries)]
        # fixed: stem, preprocessing, classifier as they run; per node its write + kernel; per cell the concat
        fixed = [op_term(answers[q]) for q in queries[n_share:]]
        for plan in plans:
            fixed += [node_fixed(profile, batch, node_sum_instance(plan, dst, 2)) for dst in range(2, nodes + 2)]
            fixed.append(concat_row(profile, batch, cell_concat_instance(plan, nodes)))
    # [deployed cells, E, K] -> [searched cells, E, K]: each deployed cell adds into the cell it takes
    index = np.asarray(sources, dtype=np.int64)

    def fold(values: list, dtype: type) -> np.ndarray:
        out = np.zeros((searched.layers, len(edges), len(CANDIDATES)), dtype=dtype)
        np.add.at(out, index, np.array(values, dtype=dtype).reshape(deployed))
        return out

    time_us = fold([t.dram_time_us(profile) for t in shares[:n_share]], np.float64)
    energy_uj = fold([t.dram_energy_uj(profile) for t in shares[:n_share]], np.float64)
    dram_bytes = fold([t.dram_bytes for t in shares[:n_share]], np.int64)
    counts = tuple(int(n) for n in np.bincount(index, minlength=searched.layers))
    log.debug("edge cost table on %s: %d searched cells (standing for %s deployed cells of %d, C=%d, %dx%d) x %d "
              "edges x %d candidates from %d distinct queries", profile_name, searched.layers, counts, spec.layers,
              spec.channels, spec.image_size, spec.image_size, len(edges), len(CANDIDATES), len(answers))
    return EdgeCostTable(CANDIDATES, time_us, energy_uj, profile=profile_name, batch=batch, dram_bytes=dram_bytes,
                         fixed_time_us=float(sum(t.dram_time_us(profile) for t in fixed)),
                         fixed_energy_uj=float(sum(t.dram_energy_uj(profile) for t in fixed)),
                         fixed_dram_bytes=int(sum(t.dram_bytes for t in fixed)), geometry=spec, deployed_cells=counts)
