"""Does a speed lever change what the search finds? Whole trials per lever setting and seed (issue 12).

Runs ``run_search`` (both stages, the target network, the deployed network's DRAM cost) for every
variant x seed on a preset, one torch thread per trial and ``--jobs`` trials at a time, and prints a row
per trial (supernet and target accuracy, DRAM time, epochs, seconds) and a summary per variant (mean and
standard deviation over the seeds, and the per-seed difference from the first variant).

  python benchmarks/lever_accuracy.py --preset fashion --seeds 0,1,2 \\
      --variant joint:arch_step=joint --variant alternate:arch_step=alternate --jobs 2 --json levers.json

A variant is ``NAME:KEY=VALUE,KEY=VALUE`` (config keys on top of the preset; ``NAME:`` alone = the preset).
No Ray: the trials are plain processes.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

log = logging.getLogger("lever_accuracy")


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME:KEY=VALUE,...`` -> (NAME, overrides); values are JSON where they parse, else strings."""
    from searchspace.schema import parse_set

    name, sep, rest = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"variant {text!r}: expected NAME:KEY=VALUE,... (NAME: alone = preset)")
    return name, parse_set([kv for kv in rest.split(",") if kv])


def one_trial(preset_name: str, overrides: dict, seed: int) -> dict:
    """A whole trial in this (worker) process, one torch thread."""
    import torch

    from cost_models import derived_network_cost, search_cost_table
    from searchspace.config import SearchConfig, preset
    from trainables import run_search

    torch.set_num_threads(1)
    cfg = SearchConfig.from_dict({**preset(preset_name), **overrides, "seed": seed})
    t0 = time.perf_counter()
    r = run_search(cfg, search_cost_table(cfg), network_cost=lambda g: derived_network_cost(g, cfg))
    return {"seed": seed, "supernet_accuracy": r.supernet_accuracy, "accuracy": r.accuracy,
            "dram_time_us": r.dram_time_us, "stage1_epochs": r.stage1_epochs, "stage2_epochs": r.stage2_epochs,
            "seconds": time.perf_counter() - t0, "phase_seconds": r.phase_seconds,
            "genotype": r.genotype.to_dict()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="fashion", help="search preset the variants start from (default fashion)")
    p.add_argument("--variant", action="append", type=parse_variant, required=True, metavar="NAME:K=V,...",
                   help="a lever setting (repeat; the first is the reference of the differences)")
    p.add_argument("--seeds", default="0,1,2", help="comma list of search seeds (default 0,1,2)")
    p.add_argument("--jobs", type=int, default=2, help="trials at once, one thread each (default 2)")
    p.add_argument("--json", metavar="FILE", help="also write every trial as JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    from searchspace.config import SearchConfig, preset
    from searchspace.schema import ConfigError

    for name, overrides in args.variant:  # a bad key fails here, before any trial runs
        try:
            SearchConfig.from_dict({**preset(args.preset), **overrides})
        except (ConfigError, KeyError, ValueError) as exc:
            p.error(f"variant {name!r} on preset {args.preset!r}: {exc}")
    jobs = [(name, overrides, seed) for seed in seeds for name, overrides in args.variant]
    rows: list[dict] = []
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = [(name, pool.submit(one_trial, args.preset, overrides, seed)) for name, overrides, seed in jobs]
        for name, fut in futures:
            row = {"variant": name, **fut.result()}
            rows.append(row)
            log.info("%s seed %d: supernet %.4f, accuracy %.4f, %.0f s", name, row["seed"],
                     row["supernet_accuracy"], row["accuracy"], row["seconds"])
    _print(rows, [name for name, _ in args.variant], args.preset)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def _stats(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def _print(rows: list[dict], names: list[str], preset_name: str) -> None:
    print(f"preset {preset_name}: one row per trial")
    print(f"{'variant':<14} {'seed':>4} {'supernet':>9} {'accuracy':>9} {'dram us':>8} {'ep1/ep2':>7} {'s':>6}")
    for r in rows:
        print(f"{r['variant']:<14} {r['seed']:>4} {r['supernet_accuracy']:>9.4f} {r['accuracy']:>9.4f} "
              f"{r['dram_time_us']:>8.2f} {r['stage1_epochs']:>3}/{r['stage2_epochs']:<3} {r['seconds']:>6.0f}")
    ref = {r["seed"]: r for r in rows if r["variant"] == names[0]}
    print(f"\n{'variant':<14} {'supernet (mean ± sd)':>22} {'accuracy (mean ± sd)':>22} {'d acc vs ' + names[0]:>18} "
          f"{'mean s':>7}")
    for name in names:
        mine = [r for r in rows if r["variant"] == name]
        diffs = [r["accuracy"] - ref[r["seed"]]["accuracy"] for r in mine if r["seed"] in ref]
        print(f"{name:<14} {_stats([r['supernet_accuracy'] for r in mine]):>22} "
              f"{_stats([r['accuracy'] for r in mine]):>22} {_stats(diffs):>18} "
              f"{statistics.mean(r['seconds'] for r in mine):>7.0f}")


if __name__ == "__main__":
    raise SystemExit(main())
