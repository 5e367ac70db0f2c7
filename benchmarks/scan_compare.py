"""Grid vs adaptive lambda scan at the same trial budget, on Fashion-MNIST (or --dataset synthetic).

    /work/shared/tools/loopback-only .venv/bin/python benchmarks/scan_compare.py            # ~10 min, 2 cores
    .venv/bin/python benchmarks/scan_compare.py --budget 4 --dataset synthetic               # a quick check

Both experiments use the `smoke` search settings (tiny supernet, short stages), one seed, lambda_time
between 0 and --lambda-max, on one local Ray. The grid takes --budget values: 0 and budget-1 log-spaced
values from --lambda-min to --lambda-max; the adaptive scan starts from 0 and three log-spaced values in the
same range and spends the rest of the budget where its front has the largest gaps. The table: trials,
front size, hypervolume (reference point (1, 1.1, 1.1) in error, time/T0, energy/E0; T0/E0 = the
lambda = 0 trial's DRAM cost, the same trial in both) and the largest gap of each front (min-max
normalised over both experiments' completed trials). Plot: --plot FILE.png.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=6, help="trials per experiment (default 6)")
    ap.add_argument("--lambda-min", type=float, default=0.1)
    ap.add_argument("--lambda-max", type=float, default=10.0)
    ap.add_argument("--dataset", default="fashion", choices=["fashion", "synthetic"])
    ap.add_argument("--storage", default="", help="results folder (default: a temporary one)")
    ap.add_argument("--plot", default="", help="also draw both fronts (hwnas pareto --compare --plot)")
    ap.add_argument("--set", dest="sets", nargs="*", default=[], help="extra config keys for both, key=value")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    import ray

    from results.compare import compare_rows
    from results.plot import plot_compare
    from results.tables import Experiment, load_experiment
    from orchestrator.experiment import run_experiment
    from results.experiment_config import load_experiment_config

    storage = args.storage or tempfile.mkdtemp(prefix="hwnas-scan-compare-")
    k = args.budget - 1
    grid_l = [0.0, *[float(f"{v:.4g}") for v in np.geomspace(args.lambda_min, args.lambda_max, k)]]
    common = [f"dataset={args.dataset}", "seeds=[0]", "profile=mobile-npu", "max_concurrent_trials=2", *args.sets]
    grid = load_experiment_config(preset="smoke", storage=storage, name="grid",
                                  sets=[*common, f"lambda_time={grid_l}".replace(" ", "")])
    adaptive = load_experiment_config(
        preset="smoke", storage=storage, name="adaptive",
        sets=[*common, f"lambda_time=[0,{args.lambda_min},{args.lambda_max}]", "scan=adaptive", "scan_init=3",
              f"scan_budget={args.budget}", "scan_batch=2", "scan_rounds=10", "scan_min_gain=0"])
    from orchestrator.experiment import ray_init_kwargs

    ray.init(num_cpus=2, **ray_init_kwargs("local", "hwnas"))
    seconds = {}
    try:
        for exp in (grid, adaptive):
            t0 = time.perf_counter()
            run_experiment(exp)  # quiet: Ray's own loggers at WARNING (verbose=False)
            seconds[exp.name] = time.perf_counter() - t0
    finally:
        ray.shutdown()
    exps: list[Experiment] = [load_experiment(f"{storage}/{n}") for n in ("grid", "adaptive")]
    rows = compare_rows(exps)
    print(f"\ngrid vs adaptive, {args.dataset}, smoke search settings, lambda_time in [0, {args.lambda_max:g}], "
          f"budget {args.budget} trials, results in {storage}")
    head = ("scan", "trials", "front size", "hypervolume", "largest gap", "lambda_time points", "seconds")
    table = []
    for e, r in zip(exps, rows):
        lams = sorted({x for x in e.trials.column("lambda_time").to_pylist()})
        table.append((r["scan"], str(r["trials"]), str(r["front"]), f"{r['hypervolume']:.4f}",
                      f"{r['largest_gap']:.3f}", ",".join(f"{v:g}" for v in lams), f"{seconds[e.label]:.0f}"))
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for t in table:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(t, widths)) + " |")
    for e in exps:
        if e.scan is not None:
            print(f"{e.label}: hypervolume per suggestion batch " + ", ".join(
                f"b{r['round']}={r['hypervolume']:.4f} ({r['trials']} trials)" for r in e.scan.to_pylist()))
    if args.plot:
        print(f"wrote {plot_compare(exps, args.plot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
