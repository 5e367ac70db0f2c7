"""How well a per-edge table can stand for a network's DRAM cost (issue 22, "one accounting").

The loss weighs ``search_cost_table``: one share per (searched cell, edge, candidate) plus fixed terms. Under
the round-trip rule that sum is a derived network's ``network_cost`` exactly. Under the resident rule it is
exact while the live set fits the buffer (every tensor stays on chip) and when no tensor fits beside
another; in between, what spills depends on the whole genotype (its wiring decides when tensors die, its
operators' working sets what must leave), so no per-edge table can follow it. This prints, per resident
profile and batch at the deployed network: the regime, the table's relative error over random genotypes
(max and mean of |table / network_cost - 1| on DRAM bytes), and the best any per-edge table could do: the
least-squares table fitted on ``--fit`` random genotypes, tested on the same held-out genotypes.

  .venv/bin/python benchmarks/table_fidelity.py [--preset fashion] [--batches 1 4 8 32] [--genotypes 30]
      [--fit 1500] [--set deploy_layers=20 deploy_channels=36]

Computed in process (no Ray); a few minutes at the defaults. Prints a Markdown table. Not a test.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cost_models import derived_network_cost, list_profiles, local_query_fn, search_cost_table  # noqa: E402
from searchspace.config import SearchConfig, parse_set, preset  # noqa: E402
from searchspace.genotype import cell_edges, random_genotype  # noqa: E402
from searchspace.layout import reduction_cells  # noqa: E402
from searchspace.ops import CANDIDATES  # noqa: E402

log = logging.getLogger("table_fidelity")


def cached_query_fn():
    """The in-process model with a cache: thousands of networks share a few hundred operator shapes."""
    cache: dict = {}

    def query(qs):
        missing = [q for q in dict.fromkeys(qs) if q not in cache]
        cache.update(zip(missing, local_query_fn(missing)))
        return [cache[q] for q in qs]
    return query


def features(config: SearchConfig, genotype) -> np.ndarray:
    """One-hot (searched cell, edge, candidate) of a genotype: the table's coordinates."""
    index = {e: i for i, e in enumerate(cell_edges(config.nodes))}
    x = np.zeros((config.layers, len(index), len(CANDIDATES)))
    for c, cell in enumerate(genotype.cells):
        for op, src, dst in cell.edges:
            x[c, index[(src, dst)], CANDIDATES.index(op)] = 1
    return x.ravel()


def measure(config: SearchConfig, genotypes: int, fit: int) -> dict:
    query = cached_query_fn()
    reds = [i in reduction_cells(config.layers) for i in range(config.layers)]
    test = [random_genotype(reds, config.nodes, random.Random(s), CANDIDATES) for s in range(genotypes)]
    nets = [derived_network_cost(g, config, query) for g in test]
    truth = np.array([n.dram_bytes for n in nets], dtype=float)
    table = search_cost_table(config, query)
    ours = np.array([table.genotype_cost(g, config.nodes)[2] for g in test], dtype=float)
    spilled = sum(r["spilled_bytes"] for n in nets for r in n.rows)
    onchip = sum(r["onchip_bytes"] for n in nets for r in n.rows)
    regime = "round-trip" if onchip == 0 else "fits" if spilled == 0 else "spills"
    row = {"regime": regime, "table_max": float(np.max(np.abs(ours / truth - 1))),
           "table_mean": float(np.mean(np.abs(ours / truth - 1))), "lsq_max": float("nan"), "lsq_mean": float("nan")}
    if regime == "spills" and fit:
        train = [random_genotype(reds, config.nodes, random.Random(10_000 + s), CANDIDATES) for s in range(fit)]
        a = np.array([[1.0, *features(config, g)] for g in train])
        y = np.array([derived_network_cost(g, config, query).dram_bytes for g in train], dtype=float)
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        lsq = np.array([coef[0] + features(config, g) @ coef[1:] for g in test])
        row.update(lsq_max=float(np.max(np.abs(lsq / truth - 1))), lsq_mean=float(np.mean(np.abs(lsq / truth - 1))))
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="fashion", help="search geometry and deployed network (default fashion)")
    ap.add_argument("--set", dest="set_items", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="config overrides (default: deploy_layers=20 deploy_channels=36 when the preset has none)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16, 32], help="cost_batch values")
    ap.add_argument("--genotypes", type=int, default=30, help="random test genotypes per row (default 30)")
    ap.add_argument("--fit", type=int, default=1500, help="genotypes the least-squares table is fitted on (0: skip)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    base = {**preset(args.preset), "deploy_layers": 20, "deploy_channels": 36, **parse_set(args.set_items)}
    print("| profile | batch | regime | table max / mean error | least-squares table max / mean |")
    print("|---|---|---|---|---|")
    for profile in (p.name for p in list_profiles() if p.resident):
        for batch in args.batches:
            t0 = time.perf_counter()
            r = measure(SearchConfig.from_dict({**base, "profile": profile, "cost_batch": batch}), args.genotypes,
                        args.fit)
            lsq = "-" if r["lsq_max"] != r["lsq_max"] else f"{100 * r['lsq_max']:.1f} % / {100 * r['lsq_mean']:.1f} %"
            print(f"| {profile} | {batch} | {r['regime']} | {100 * r['table_max']:.1f} % / {100 * r['table_mean']:.1f} % "
                  f"| {lsq} |", flush=True)
            log.info("%s batch %d: %.0f s", profile, batch, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
