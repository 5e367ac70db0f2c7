"""Network-level DRAM costs: a derived network's total (what each trial reports) and the supernet's
per-(cell, edge, candidate) table (what the search loss weighs the architecture parameters with).

Both ask their ``query_fn`` once, with one batch of deduplicated queries, so a Tune trial talks to the
cost service actor once per table; without a ``query_fn`` they compute in process (``hwnas trial``).
Shapes come from ``searchspace.layout``, the single source of every tensor shape in the project.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from searchspace.config import SearchConfig
from searchspace.genotype import Genotype
from searchspace.layout import OpInstance, expand_genotype, network_instances, plan_cells, supernet_edge_shapes
from searchspace.ops import CANDIDATES

from .query import CostQuery, QueryFn, local_query_fn
from .traffic import OpCost

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkCost:
    """Whole-network DRAM cost at batch ``batch`` on ``profile``, with one row per operator application."""

    profile: str
    batch: int
    dram_read_bytes: int
    dram_write_bytes: int
    dram_bytes: int
    compulsory_bytes: int
    dram_time_us: float
    dram_energy_uj: float
    rows: tuple[dict[str, Any], ...]  # OpInstance fields (op, c_in, c_out, h, w, stride, cell, edge, role) + OpCost fields

    def to_dict(self, rows: bool = False) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("profile", "batch", "dram_read_bytes", "dram_write_bytes", "dram_bytes",
                                           "compulsory_bytes", "dram_time_us", "dram_energy_uj")}
        if rows:
            d["rows"] = [dict(r) for r in self.rows]
        return d


@dataclass(frozen=True)
class EdgeCostTable:
    """Expected-cost inputs of the supernet loss: ``time_us[cell, edge, candidate]``, same for energy."""

    profile: str
    batch: int
    candidates: tuple[str, ...]
    time_us: np.ndarray  # float64 [n_cells, n_edges, n_candidates]
    energy_uj: np.ndarray  # float64 [n_cells, n_edges, n_candidates]
    dram_bytes: np.ndarray  # int64 [n_cells, n_edges, n_candidates]


def _answer(queries: list[CostQuery], query_fn: QueryFn | None) -> dict[CostQuery, OpCost]:
    """One batched call for the distinct queries; a dict back."""
    unique = list(dict.fromkeys(queries))
    costs = (query_fn or local_query_fn)(unique)
    if len(costs) != len(unique):
        raise RuntimeError(f"query_fn answered {len(costs)} costs for {len(unique)} queries")
    return dict(zip(unique, costs))


def _instance_query(inst: OpInstance, profile: str, batch: int) -> CostQuery:
    return CostQuery(profile, inst.op, inst.c_in, inst.c_out, inst.h, inst.w, inst.stride, batch)


def network_cost(genotype: Genotype, config: SearchConfig, query_fn: QueryFn | None = None,
                 layers: int | None = None, channels: int | None = None) -> NetworkCost:
    """DRAM bytes, time and energy of the derived network (stem, cells, classifier) of ``genotype``.

    The geometry is the search's (``config.layers`` x ``config.channels``) unless ``layers`` /
    ``channels`` override it (a derived network trained at eval_layers / eval_channels); the genotype
    must then have one cell per layer. Batch ``config.cost_batch``, processor ``config.profile``.
    """
    layers = layers or config.layers
    channels = channels or config.channels
    plans = plan_cells(layers, channels, config.nodes, config.image_size, config.stem_multiplier)
    instances = network_instances(genotype, plans, config.nodes, config.in_channels, config.image_size,
                                  config.num_classes, config.stem_multiplier)
    queries = [_instance_query(i, config.profile, config.cost_batch) for i in instances]
    answers = _answer(queries, query_fn)
    rows = []
    for inst, q in zip(instances, queries):
        cost = answers[q].to_dict()
        rows.append({"op": inst.op, "c_in": inst.c_in, "c_out": inst.c_out, "h": inst.h, "w": inst.w,
                     "stride": inst.stride, "cell": inst.cell, "edge": inst.edge, "role": inst.role,
                     **{k: v for k, v in cost.items() if k.startswith(("dram_", "compulsory", "onchip", "spilled"))}})
    total = lambda key: sum(r[key] for r in rows)  # noqa: E731
    result = NetworkCost(
        profile=config.profile, batch=config.cost_batch,
        dram_read_bytes=int(total("dram_read_bytes")), dram_write_bytes=int(total("dram_write_bytes")),
        dram_bytes=int(total("dram_bytes")), compulsory_bytes=int(total("compulsory_bytes")),
        dram_time_us=float(total("dram_time_us")), dram_energy_uj=float(total("dram_energy_uj")),
        rows=tuple(rows))
    log.debug("network cost on %s: %d B, %.2f us, %.3f uJ over %d ops", config.profile, result.dram_bytes,
              result.dram_time_us, result.dram_energy_uj, len(rows))
    return result


def derived_network_cost(genotype: Genotype, config: SearchConfig, query_fn: QueryFn | None = None) -> NetworkCost:
    """The cost a trial reports: the searched ``genotype`` mapped onto the target network
    (``eval_layers`` x ``eval_channels``, each 0 = the search's) and costed there."""
    layers, channels = config.eval_layers or config.layers, config.eval_channels or config.channels
    return network_cost(expand_genotype(genotype, layers), config, query_fn, layers=layers, channels=channels)


def edge_cost_table(config: SearchConfig, query_fn: QueryFn | None = None) -> EdgeCostTable:
    """Cost of every candidate on every edge of every cell of the supernet, in ``CANDIDATES`` order.

    One batched query (distinct shapes only) for the whole table."""
    plans = plan_cells(config.layers, config.channels, config.nodes, config.image_size, config.stem_multiplier)
    shapes = supernet_edge_shapes(plans, config.nodes)
    n_cells, n_edges, n_cand = len(shapes), (len(shapes[0]) if shapes else 0), len(CANDIDATES)
    queries = [CostQuery(config.profile, op, c, c, h, w, s, config.cost_batch)
               for row in shapes for (c, h, w, s) in row for op in CANDIDATES]
    answers = _answer(queries, query_fn)
    costs = [answers[q] for q in queries]
    shape = (n_cells, n_edges, n_cand)
    time_us = np.array([c.dram_time_us for c in costs], dtype=np.float64).reshape(shape)
    energy_uj = np.array([c.dram_energy_uj for c in costs], dtype=np.float64).reshape(shape)
    dram_bytes = np.array([c.dram_bytes for c in costs], dtype=np.int64).reshape(shape)
    log.debug("edge cost table on %s: %d cells x %d edges x %d candidates from %d distinct queries",
              config.profile, n_cells, n_edges, n_cand, len(answers))
    return EdgeCostTable(config.profile, config.cost_batch, CANDIDATES, time_us, energy_uj, dram_bytes)
