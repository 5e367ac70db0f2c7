"""Do the alphas move, and does lambda steer them? (issue 21, item 2)

For each variant (a set of config overrides, e.g. the arch_lr or arch_travel being compared), each search
seed and each lambda_time, one two-stage search in process (no Ray; the target network is not trained,
``eval_epochs=0``), on the preset's geometry with costs of the deployed network. Prints per variant:

* each stage's final alpha entropy (mean +- sd over seeds and lambdas; ln 4 = 1.386 is uniform over 4
  candidates, and stage 2's maximum is ln of its groups' sizes), and the epochs each stage ran;
* **steering**: the fraction of (cell, edge) whose stage-2 choice (the strongest operator on that edge)
  differs between lambda = 0 and the largest lambda, per seed;
* **agreement**: the fraction of (cell, edge) whose lambda = 0 choice agrees between two search seeds
  (mean over seed pairs; chance is about 1/7 for independent uniform choices);
* the deployed DRAM energy of the derived genotype at lambda 0 and at the largest lambda (uJ).

  .venv/bin/python benchmarks/alpha_motion.py --variant base: --variant travel6:arch_travel=6 \\
      [--preset fashion] [--seeds 0 1 2] [--lambdas 0 8] [--set deploy_layers=20 deploy_channels=36]
      [--json motion.json] [--from-json motion.json] [--jobs 2]

Runs ``--jobs`` searches at a time (one torch thread each); the json is rewritten after every search.
Not a test.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from searchspace.config import SearchConfig, parse_set, preset  # noqa: E402
from searchspace.genotype import cell_edges  # noqa: E402

log = logging.getLogger("alpha_motion")


def one_search(overrides: dict) -> dict:
    """One search in this process; what the table needs from it."""
    import torch

    from cost_models import derived_network_cost, search_cost_table
    from trainables import load_checkpoint, run_search, stage2_space

    torch.set_num_threads(1)
    config = SearchConfig.from_dict(overrides)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "search.ckpt")
        result = run_search(config, search_cost_table(config), checkpoint=ckpt,
                            network_cost=lambda g: derived_network_cost(g, config))
        state = load_checkpoint(ckpt, config)
    space = stage2_space(config, state.groups, state.stage1.choice)
    if state.stage2 is not None:
        weight = state.stage2.op_weight.numpy()  # (cells, E, K_max)
    else:  # eval_epochs=0: the last checkpoint is stage 2's last epoch (its alphas, before the outcome)
        alpha = state.progress.alpha.masked_fill(~space.mask(), float("-inf"))
        weight = torch.softmax(alpha, -1)[torch.tensor(space.set_of_cell)].numpy()
    choice = [[space.candidates[s][e][int(weight[c, e, :len(space.candidates[s][e])].argmax())]
               for e in range(len(cell_edges(config.nodes)))] for c, s in enumerate(space.set_of_cell)]
    entropy = {}
    for h in result.history:
        if "alpha_entropy" in h:
            entropy[h["phase"]] = h["alpha_entropy"]
    return {"seed": config.seed, "lambda_time": config.lambda_time, "entropy": entropy, "choice": choice,
            "stage1_epochs": result.stage1_epochs, "stage2_epochs": result.stage2_epochs,
            "energy_uj": result.dram_energy_uj, "genotype": result.genotype.to_dict(),
            "seconds": time.perf_counter() - t0}


def _mean_sd(xs: list[float]) -> str:
    xs = [x for x in xs if x == x]
    if not xs:
        return "-"
    return f"{statistics.mean(xs):.3f} +- {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"


def _differ(a: list[list[str]], b: list[list[str]]) -> float:
    pairs = [(x, y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)]
    return sum(x != y for x, y in pairs) / len(pairs)


def summarise(runs: dict[str, list[dict]], lambdas: list[float]) -> str:
    lo, hi = min(lambdas), max(lambdas)
    lines = [f"| variant | stage-1 entropy at lambda {lo:g} / {hi:g} | stage-2 entropy at lambda {lo:g} / {hi:g} "
             f"| epochs s1 / s2 | edges changed, lambda {lo:g} -> {hi:g} (per seed) | lambda-{lo:g} agreement "
             f"across seeds | energy uJ at lambda {lo:g} / {hi:g} |", "|---|---|---|---|---|---|---|"]
    for name, rs in runs.items():
        by = {(r["seed"], r["lambda_time"]): r for r in rs}
        seeds = sorted({r["seed"] for r in rs})
        changed = [_differ(by[(s, lo)]["choice"], by[(s, hi)]["choice"]) for s in seeds
                   if (s, lo) in by and (s, hi) in by]
        zero = [by[(s, lo)]["choice"] for s in seeds if (s, lo) in by]
        agree = [1 - _differ(a, b) for a, b in itertools.combinations(zero, 2)]
        e_lo = [by[(s, lo)]["energy_uj"] for s in seeds if (s, lo) in by]
        e_hi = [by[(s, hi)]["energy_uj"] for s in seeds if (s, hi) in by]
        def entropy(stage: str, lam: float) -> str:
            return _mean_sd([r["entropy"].get(stage, math.nan) for r in rs if r["lambda_time"] == lam])

        lines.append(
            f"| {name} | {entropy('stage1', lo)} / {entropy('stage1', hi)} "
            f"| {entropy('stage2', lo)} / {entropy('stage2', hi)} "
            f"| {statistics.mean(r['stage1_epochs'] for r in rs):.1f} / {statistics.mean(r['stage2_epochs'] for r in rs):.1f} "
            f"| {' / '.join(f'{100 * c:.0f} %' for c in changed) or '-'} "
            f"| {(100 * statistics.mean(agree)) if agree else float('nan'):.0f} % "
            f"| {_mean_sd(e_lo)} / {_mean_sd(e_hi)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="fashion")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,KEY=VALUE",
                    help="a named set of config overrides (repeatable); 'base:' = the preset as it is")
    ap.add_argument("--set", dest="set_items", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="overrides for every variant (default: the deployed 20 x 36 network when the preset has none)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 8.0])
    ap.add_argument("--jobs", type=int, default=2, help="searches at a time (one torch thread each)")
    ap.add_argument("--json", help="write the raw runs here (rewritten after every search)")
    ap.add_argument("--from-json", help="only reprint the table of a saved --json file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.from_json:
        saved = json.load(open(args.from_json))
        print(summarise(saved["runs"], saved["lambdas"]))
        return 0
    base = {**preset(args.preset), "eval_epochs": 0}
    base.setdefault("deploy_layers", 20)
    base.setdefault("deploy_channels", 36)
    if not base["deploy_layers"]:
        base.update(deploy_layers=20, deploy_channels=36)
    base.update(parse_set(args.set_items))
    variants = {}
    for spec in args.variant or ["base:"]:
        name, _, kv = spec.partition(":")
        variants[name] = parse_set([x for x in kv.split(",") if x])
    jobs = [(name, {**base, **over, "seed": s, "lambda_time": lam})
            for name, over in variants.items() for s in args.seeds for lam in args.lambdas]
    for _, cfg in jobs:
        SearchConfig.from_dict(cfg)  # bad keys fail here, before any search
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [(name, pool.submit(one_search, cfg)) for name, cfg in jobs]
        for name, fut in futures:
            r = fut.result()
            runs[name].append(r)
            log.info("%s seed %d lambda %g: entropy %s, epochs %d/%d, %.0f s", name, r["seed"], r["lambda_time"],
                     {k: round(v, 3) for k, v in r["entropy"].items()}, r["stage1_epochs"], r["stage2_epochs"],
                     r["seconds"])
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump({"runs": runs, "lambdas": args.lambdas, "base": base}, fh)
    print(summarise(runs, args.lambdas))
    return 0


if __name__ == "__main__":
    sys.exit(main())
