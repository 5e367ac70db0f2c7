"""Where does a trial land relative to its DRAM budget? (issue 10: pick the budget penalty's form)

On the quick geometry of ``benchmarks/search_quality.py`` with the deployed network set apart from the
proxy (``deploy_layers=20 deploy_channels=36`` by default, so operators differ in cost), this

1. costs the two extreme genotypes (every edge ``max_pool_3x3`` / every edge ``sep_conv_5x5``, each node
   fed by the cell's two inputs) with ``cost_models.derived_network_cost``: the range a budget can sit in;
2. sets ``dram_time_budget_us`` at ``--at`` of that range (default 0.5: the middle);
3. runs ``trainables.run_search`` (no target training: ``eval_epochs=0``) for each penalty form (and
   ``off``: no budget, where the unconstrained search lands) and seed, one run at a time;
4. prints the derived network's DRAM time against the budget per form and seed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/budget_landing.py                 # ~10 min on 2 busy cores
    .venv/bin/python benchmarks/budget_landing.py --forms hinge,absolute --seeds 0 1 2 --set budget_weight=5
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cost_models import derived_network_cost, search_cost_table  # noqa: E402
from searchspace.config import SearchConfig, parse_set  # noqa: E402
from searchspace.genotype import CellGenotype, Genotype  # noqa: E402
from searchspace.layout import reduction_cells  # noqa: E402
from trainables import run_search  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_quality import GEOMETRIES  # noqa: E402

log = logging.getLogger("budget_landing")


def uniform_genotype(config: SearchConfig, op: str) -> Genotype:
    """Every node fed by the cell's two inputs through ``op``."""
    red = reduction_cells(config.layers)
    edges = tuple((op, src, dst) for dst in range(2, config.nodes + 2) for src in (0, 1))
    return Genotype(tuple(CellGenotype(i in red, edges) for i in range(config.layers)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--profile", default="mobile-npu")
    p.add_argument("--forms", default="off,hinge,absolute", help="comma list of off / hinge / absolute")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--at", type=float, default=0.5, help="budget position in the [cheapest, dearest] range (0..1)")
    p.add_argument("--set", dest="sets", nargs="+", default=[], metavar="KEY=VALUE",
                   help="search config overrides (default deploy_layers=20 deploy_channels=36)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    config = SearchConfig.from_dict({**GEOMETRIES["quick"], "profile": args.profile, "deploy_layers": 20,
                                     "deploy_channels": 36, **parse_set(args.sets)}).replace(eval_epochs=0)
    cheap = derived_network_cost(uniform_genotype(config, "max_pool_3x3"), config).dram_time_us
    dear = derived_network_cost(uniform_genotype(config, "sep_conv_5x5"), config).dram_time_us
    budget = float(f"{cheap + args.at * (dear - cheap):.4g}")
    table = search_cost_table(config)
    print(f"profile {config.profile}, deployed {config.deploy_layers} cells x C={config.deploy_channels}: all-pool "
          f"{cheap:.1f} us, all-sep_conv_5x5 {dear:.1f} us; budget {budget:g} us; budget_weight "
          f"{config.budget_weight:g}")
    rows = []
    for form in args.forms.split(","):
        for seed in args.seeds:
            cfg = config.replace(seed=seed, **({"dram_time_budget_us": 0.0} if form == "off" else
                                               {"dram_time_budget_us": budget, "budget_penalty": form}))
            t0 = time.perf_counter()
            res = run_search(cfg, table, network_cost=lambda g, c=cfg: derived_network_cost(g, c))
            rows.append((form, seed, res.dram_time_us, res.dram_time_us / budget - 1, res.skip_count,
                         time.perf_counter() - t0))
            log.warning("%s seed %d: %.1f us (%.1f s)", form, seed, res.dram_time_us, rows[-1][-1])
    print("| form | seed | derived dram_time_us | vs budget | skips | seconds |")
    print("|---|---|---|---|---|---|")
    for form, seed, t, rel, skips, sec in rows:
        print(f"| {form} | {seed} | {t:.1f} | {rel:+.1%} | {skips} | {sec:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
