"""Network-level DRAM costs: a derived network's total (what each trial reports) and the supernet's
per-(cell, edge, candidate) table (what the search loss weighs the architecture parameters with).

Both count every kernel a network runs (stem, preprocessing, edge operators, node sums, the cells'
output concat, classifier) with the one accounting of ``cost_models.accounting``: the table's entries
are each edge's share (its operator + its share of the node's sum), its ``fixed_*`` fields the rest, so
that a derived genotype's entries plus the fixed terms equal ``network_cost`` at the same geometry.
Both cost the deployed form of every operator (pools without the supernet's BN).

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
from searchspace.genotype import Genotype
from searchspace.genotype import cell_edges
from searchspace.layout import (CONCAT_OP, NODE_SUM_OP, OpInstance, cell_concat_instance, classifier_instance,
                                edge_input, expand_genotype, network_instances, node_sum_instance, plan_cells,
                                preprocess_instances, stem_instance)
from searchspace.ops import CANDIDATES, is_identity

from .accounting import Term, concat_row, edge_row, edge_share, node_fixed, node_sum_row, op_term
from .query import CostQuery, QueryFn, get_profile, local_query_fn
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


@dataclass(frozen=True)
class EdgeCostTable:
    """Expected-cost inputs of the supernet loss: ``time_us[cell, edge, candidate]``, same for energy and
    bytes: what choosing that candidate on that edge adds to the deployed network (its operator and its
    share of the node's sum; module doc). ``fixed_*``: everything the choice does not change (stem,
    preprocessing, node writes, concats, classifier), over the whole network."""

    profile: str
    batch: int
    candidates: tuple[str, ...]
    time_us: np.ndarray  # float64 [n_cells, n_edges, n_candidates]
    energy_uj: np.ndarray  # float64 [n_cells, n_edges, n_candidates]
    dram_bytes: np.ndarray  # int64 [n_cells, n_edges, n_candidates]
    fixed_time_us: float = 0.0
    fixed_energy_uj: float = 0.0
    fixed_dram_bytes: int = 0

    def genotype_cost(self, genotype: Genotype, nodes: int) -> tuple[float, float, int]:
        """(time_us, energy_uj, dram_bytes) of a genotype on this table's network: its edges' entries + fixed."""
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


def network_cost(genotype: Genotype, config: SearchConfig, query_fn: QueryFn | None = None,
                 layers: int | None = None, channels: int | None = None) -> NetworkCost:
    """DRAM bytes, time and energy of every kernel of the derived network of ``genotype``.

    The geometry is the search's (``config.layers`` x ``config.channels``) unless ``layers`` /
    ``channels`` override it (a derived network trained at eval_layers / eval_channels); the genotype
    must then have one cell per layer. Batch ``config.cost_batch``, processor ``config.profile``.
    """
    layers = layers or config.layers
    channels = channels or config.channels
    profile, batch = get_profile(config.profile), config.cost_batch
    plans = plan_cells(layers, channels, config.nodes, config.image_size, config.stem_multiplier)
    instances = network_instances(genotype, plans, config.nodes, config.in_channels, config.image_size,
                                  config.num_classes, config.stem_multiplier)
    queries = {i: _instance_query(inst, config.profile, batch) for i, inst in enumerate(instances) if _is_operator(inst)}
    answers = _answer(list(queries.values()), query_fn)
    # identity inputs per (cell, node): a fused node's kernel reads them itself
    identities: dict[tuple[int, int], int] = {}
    for inst in instances:
        if inst.role == "edge" and is_identity(inst.op, inst.c_in, inst.c_out, inst.stride):
            identities[(inst.cell, inst.node)] = identities.get((inst.cell, inst.node), 0) + 1
    rows, total = [], Term()
    for i, inst in enumerate(instances):
        if inst.role == "edge":
            term = edge_row(profile, batch, inst, answers[queries[i]])
        elif inst.role == "node_sum":
            term = node_sum_row(profile, batch, inst, identities.get((inst.cell, inst.node), 0))
        elif inst.role == "cell_concat":
            term = concat_row(profile, batch, inst)
        else:  # stem, preprocess0/1, classifier: the operator as it runs
            term = op_term(answers[queries[i]])
        total = total + term
        rows.append({"op": inst.op, "c_in": inst.c_in, "c_out": inst.c_out, "h": inst.h, "w": inst.w,
                     "stride": inst.stride, "cell": inst.cell, "edge": inst.edge, "role": inst.role,
                     "node": inst.node, "fan_in": inst.fan_in, **term.to_dict(profile)})
    result = NetworkCost(
        profile=config.profile, batch=batch, dram_read_bytes=total.dram_read_bytes,
        dram_write_bytes=total.dram_write_bytes, dram_bytes=total.dram_bytes, compulsory_bytes=total.compulsory_bytes,
        dram_latencies=total.dram_latencies, dram_time_us=float(sum(r["dram_time_us"] for r in rows)),
        dram_energy_uj=float(sum(r["dram_energy_uj"] for r in rows)), rows=tuple(rows))
    log.debug("network cost on %s: %d B, %.2f us, %.3f uJ over %d rows", config.profile, result.dram_bytes,
              result.dram_time_us, result.dram_energy_uj, len(rows))
    return result


def derived_network_cost(genotype: Genotype, config: SearchConfig, query_fn: QueryFn | None = None) -> NetworkCost:
    """The cost a trial reports: the searched ``genotype`` mapped onto the target network
    (``eval_layers`` x ``eval_channels``, each 0 = the search's) and costed there."""
    layers, channels = config.eval_layers or config.layers, config.eval_channels or config.channels
    return network_cost(expand_genotype(genotype, layers), config, query_fn, layers=layers, channels=channels)


def edge_cost_table(config: SearchConfig, query_fn: QueryFn | None = None) -> EdgeCostTable:
    """Each candidate's share on every edge of every cell of the supernet, in ``CANDIDATES`` order, and
    the network's fixed terms, at the search geometry (``config.layers`` x ``config.channels``).

    One batched query (distinct operator shapes only) for the whole table."""
    profile, batch, nodes = get_profile(config.profile), config.cost_batch, config.nodes
    plans = plan_cells(config.layers, config.channels, nodes, config.image_size, config.stem_multiplier)
    edges = cell_edges(nodes)
    cells = [[OpInstance(op, c, c, h, h, s, plan.index, e, node=dst)
              for e, (src, dst) in enumerate(edges) for (c, h, s) in [edge_input(plan, src)] for op in CANDIDATES]
             for plan in plans]
    fixed_ops = [stem_instance(plans, config.in_channels, config.image_size),
                 *(p for plan in plans for p in preprocess_instances(plan)),
                 classifier_instance(plans, nodes, config.num_classes)]
    ops = [inst for row in cells for inst in row] + fixed_ops
    queries = [_instance_query(inst, config.profile, batch) for inst in ops]
    answers = _answer(queries, query_fn)
    shares = [edge_share(profile, batch, inst, answers[q]) for inst, q in zip(ops, queries)]
    shape = (len(plans), len(edges), len(CANDIDATES))
    n_share = len(plans) * len(edges) * len(CANDIDATES)
    time_us = np.array([t.dram_time_us(profile) for t in shares[:n_share]], dtype=np.float64).reshape(shape)
    energy_uj = np.array([t.dram_energy_uj(profile) for t in shares[:n_share]], dtype=np.float64).reshape(shape)
    dram_bytes = np.array([t.dram_bytes for t in shares[:n_share]], dtype=np.int64).reshape(shape)
    # fixed: stem, preprocessing, classifier as they run; per node its write + kernel; per cell the concat
    fixed = [op_term(answers[q]) for q in queries[n_share:]]
    for plan in plans:
        fixed += [node_fixed(profile, batch, node_sum_instance(plan, dst, 2)) for dst in range(2, nodes + 2)]
        fixed.append(concat_row(profile, batch, cell_concat_instance(plan, nodes)))
    log.debug("edge cost table on %s: %d cells x %d edges x %d candidates from %d distinct queries",
              config.profile, *shape, len(answers))
    return EdgeCostTable(config.profile, batch, CANDIDATES, time_us, energy_uj, dram_bytes,
                         fixed_time_us=float(sum(t.dram_time_us(profile) for t in fixed)),
                         fixed_energy_uj=float(sum(t.dram_energy_uj(profile) for t in fixed)),
                         fixed_dram_bytes=int(sum(t.dram_bytes for t in fixed)))
