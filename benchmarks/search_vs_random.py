"""Does the search find something? A small CPU search against random genotypes, same short protocol.

Runs one two-stage search on real Fashion-MNIST (default: 5 cells, 8 channels, 2,000 images), then
trains its genotype and ``--random`` random genotypes (same cells, same operators, same target-network
protocol and seed) and prints test accuracy, DRAM cost and wall time side by side.

  python benchmarks/search_vs_random.py                     # ~10-20 min on 2 CPU cores
  python benchmarks/search_vs_random.py --set max_epochs=2 --random 2 --json out.json
"""
from __future__ import annotations

import argparse
import json
import random
import time

import torch

from cost_models import derived_network_cost, search_cost_table
from searchspace.config import SearchConfig, parse_set
from searchspace.genotype import CellGenotype, Genotype
from searchspace.ops import CANDIDATES
from trainables import load_datasets, run_search, train_target

DEFAULTS = dict(dataset="fashion", train_size=2000, val_size=500, test_size=2000, layers=5, channels=8,
                batch_size=64, max_epochs=4, patience=2, warmup_epochs=1, eval_epochs=3, eval_lr=0.1,
                eval_train_size=4000)


def random_genotype(like: Genotype, nodes: int, rng: random.Random) -> Genotype:
    cells = []
    for cell in like.cells:
        edges = []
        for dst in range(2, nodes + 2):
            for src in sorted(rng.sample(range(dst), 2)):
                edges.append((rng.choice(CANDIDATES), src, dst))
        cells.append(CellGenotype(cell.reduction, tuple(edges)))
    return Genotype(tuple(cells))


def evaluate(config: SearchConfig, genotype: Genotype, data):
    """The trial's target-network protocol on ``genotype``, and the DRAM cost a trial would report for it."""
    t0 = time.perf_counter()
    acc, _net = train_target(config, genotype, data)
    return acc, time.perf_counter() - t0, derived_network_cost(genotype, config)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", dest="sets", nargs="+", default=[], metavar="KEY=VALUE", help="search config overrides")
    p.add_argument("--random", type=int, default=2, help="random genotypes to compare against")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = p.parse_args(argv)
    config = SearchConfig.from_dict({**DEFAULTS, **parse_set(args.sets)})

    t0 = time.perf_counter()
    result = run_search(config, search_cost_table(config), network_cost=lambda g: derived_network_cost(g, config))
    search_s = time.perf_counter() - t0
    data = load_datasets(config)
    rows = [{"genotype": "searched", "accuracy": result.accuracy, "dram_time_us": result.dram_time_us,
             "dram_energy_uj": result.dram_energy_uj, "skip_count": result.skip_count, "seconds": search_s,
             "phase_seconds": result.phase_seconds}]
    rng = random.Random(config.seed)
    for i in range(args.random):
        g = random_genotype(result.genotype, config.nodes, rng)
        acc, secs, cost = evaluate(config, g, data)
        rows.append({"genotype": f"random-{i}", "accuracy": acc, "dram_time_us": cost.dram_time_us,
                     "dram_energy_uj": cost.dram_energy_uj, "skip_count": sum(g.skip_counts()), "seconds": secs})
    print(f"search: {config.layers} cells x {config.channels} channels, {config.train_size} {config.dataset} images, "
          f"profile {config.profile}, CPU {torch.get_num_threads()} threads")
    print(f"{'genotype':<10} {'test acc':>9} {'DRAM us':>10} {'DRAM uJ':>10} {'skips':>6} {'seconds':>9}")
    for r in rows:
        print(f"{r['genotype']:<10} {r['accuracy']:>9.4f} {r['dram_time_us']:>10.2f} {r['dram_energy_uj']:>10.3f} "
              f"{r['skip_count']:>6} {r['seconds']:>9.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
