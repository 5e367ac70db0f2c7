"""Collapse guards (issue 10): which remedy keeps skip_connect from taking over the searched cells?

For each ``--guards`` value (``config.collapse_guard``), each lambda_time of ``--lambdas`` and each search seed
of ``--seeds``, one two-stage search on a small protocol where collapse shows (search_quality's "quick"
geometry with 200 search images, 5-epoch stages that run to the end, and arch_lr 0.03, so the alphas have
time to collapse), profile mobile-npu, the deployed network 20 cells x 36 channels. Per run it reports:

* ``s1 raw``: skip_connects per normal cell in stage 1's argmax cell (per node the two strongest incoming
  edges, each edge's strongest candidate; ``trainables.guard.argmax_cell_skips``), no cap: the raw collapse;
* ``final raw``: per normal cell of the genotype derived with ``max_skip_per_cell = -1`` (no cap) from both
  stages, i.e. what the search chose before the cap repairs it;
* ``derived``: per normal cell of the genotype the trial really derives (the cap applied);
* the derived network's accuracy under the target protocol (``trainables.train_target``, one training seed)
  and its DRAM energy (``cost_models.derived_network_cost``: the deployed network).

Then one summary row per guard (means over lambdas and seeds) and the winner by the rule: among the guards
(``none`` included) whose mean accuracy is at most ``--tolerance`` points below ``none``'s, the fewest mean
final raw skips per normal cell (ties: fewest stage-1 raw skips, then higher accuracy); and the best remedy
by the same rule with ``none`` left out.

  OMP_NUM_THREADS=1 python benchmarks/collapse_guard.py                    # 20 runs, ~40 min on 2 busy CPU cores
  python benchmarks/collapse_guard.py --lambdas 0 4 --seeds 1 && python benchmarks/collapse_guard.py --lambdas 4 \
      --seeds 0                                                             # README's 15 runs
  python benchmarks/collapse_guard.py --guards none aux_skip --lambdas 4 --seeds 0 --json out.json
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # search_quality, run as a script or imported

from cost_models import derived_network_cost, search_cost_table  # noqa: E402
from search_quality import GEOMETRIES  # noqa: E402
from searchspace.config import SearchConfig, parse_set  # noqa: E402
from searchspace.genotype import Genotype  # noqa: E402
from trainables import load_datasets, train_target  # noqa: E402
from trainables.guard import GUARDS, argmax_cell_skips  # noqa: E402
from trainables.search import Trial, choose_groups, derive, search_stage1, search_stage2  # noqa: E402
from trainables.state import SearchState  # noqa: E402
from trainables.supernet import search_device, stage1_space  # noqa: E402

# README's table: search_quality's quick geometry trimmed to CPU size (200 search images, 5-epoch stages) with
# 10x the default arch_lr, so the alphas can saturate (and collapse) within a few dozen architecture steps
PROTOCOL = dict(GEOMETRIES["quick"], train_size=200, val_size=100, max_epochs=5, patience=5, arch_lr=0.03,
                deploy_layers=20, deploy_channels=36, profile="mobile-npu")
log = logging.getLogger("collapse_guard")


@dataclass(frozen=True)
class Run:
    guard: str
    lambda_time: float
    seed: int
    stage1_epochs: int
    stage2_epochs: int
    s1_raw: tuple[int, ...]  # skips per normal cell, stage-1 argmax cell, no cap
    final_raw: tuple[int, ...]  # skips per normal cell, genotype derived without the cap
    derived: tuple[int, ...]  # skips per normal cell, the genotype the trial derives (cap applied)
    accuracy: float
    energy_uj: float
    search_seconds: float
    genotype: dict


def normal_skips(genotype: Genotype) -> tuple[int, ...]:
    return tuple(n for cell, n in zip(genotype.cells, genotype.skip_counts()) if not cell.reduction)


def one_run(config: SearchConfig, data, train_seed: int) -> Run:
    """One search (stages 1 and 2, then derivation with and without the cap), its target accuracy and energy."""
    device = search_device(config)
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    trial = Trial(config, data, search_cost_table(config), device, gen, None, None, started=t0)
    state = search_stage2(trial, search_stage1(trial, choose_groups(trial, SearchState())))
    seconds = time.perf_counter() - t0
    space1 = stage1_space(config, state.groups)
    s1 = argmax_cell_skips(space1, torch.log(state.stage1.weight.clamp_min(1e-12)))  # softmax(log p) = p
    s1_normal = tuple(s1[space1.set_of_cell[c]] for c, red in enumerate(space1.reduction_of_cell) if not red)
    raw = derive(config.replace(max_skip_per_cell=-1), state).genotype
    capped = derive(config, state).genotype
    acc = train_target(config.replace(seed=train_seed), capped, data).accuracy
    energy = derived_network_cost(capped, config).dram_energy_uj
    return Run(config.collapse_guard, config.lambda_time, config.seed, state.stage1.epochs, state.stage2.epochs,
               s1_normal, normal_skips(raw), normal_skips(capped), acc, energy, seconds, capped.to_dict())


def summarise(runs: list[Run], tolerance_pt: float) -> tuple[list[dict], str | None, str | None]:
    """Per guard: means over its runs; the winner by the module docstring's rule (``none`` included) and the
    best remedy by the same rule (``none`` left out)."""
    rows = []
    for g in dict.fromkeys(r.guard for r in runs):
        rs = [r for r in runs if r.guard == g]
        rows.append({"guard": g, "runs": len(rs),
                     "s1_raw": statistics.fmean(statistics.fmean(r.s1_raw) for r in rs),
                     "final_raw": statistics.fmean(statistics.fmean(r.final_raw) for r in rs),
                     "derived": statistics.fmean(statistics.fmean(r.derived) for r in rs),
                     "accuracy": statistics.fmean(r.accuracy for r in rs),
                     "energy_uj": statistics.fmean(r.energy_uj for r in rs),
                     "search_seconds": statistics.fmean(r.search_seconds for r in rs)})
    base = next((r["accuracy"] for r in rows if r["guard"] == "none"), None)
    ok = [r for r in rows if base is None or r["accuracy"] >= base - tolerance_pt / 100]

    def best(cands: list[dict]) -> str | None:
        return min(cands, key=lambda r: (r["final_raw"], r["s1_raw"], -r["accuracy"]))["guard"] if cands else None

    return rows, best(ok), best([r for r in ok if r["guard"] != "none"])


def print_table(runs: list[Run], rows: list[dict], winner: str | None, remedy: str | None, tolerance_pt: float,
                config) -> None:
    def cells(t):
        return "/".join(map(str, t))

    print(f"collapse guards: quick geometry, max_epochs {config.max_epochs}, patience {config.patience}, profile "
          f"{config.profile}, deployed {config.deploy_layers} cells x {config.deploy_channels} ch; skips per normal "
          f"cell")
    print(f"{'guard':<13}{'lambda':>7}{'seed':>5}{'ep1/ep2':>8}{'s1 raw':>8}{'final raw':>10}{'derived':>8}"
          f"{'acc %':>7}{'energy uJ':>11}{'search s':>9}")
    for r in runs:
        print(f"{r.guard:<13}{r.lambda_time:>7g}{r.seed:>5}{f'{r.stage1_epochs}/{r.stage2_epochs}':>8}"
              f"{cells(r.s1_raw):>8}{cells(r.final_raw):>10}{cells(r.derived):>8}{100 * r.accuracy:>7.1f}"
              f"{r.energy_uj:>11.1f}{r.search_seconds:>9.0f}")
    print()
    print(f"{'guard':<13}{'runs':>5}{'s1 raw':>8}{'final raw':>10}{'derived':>8}{'acc %':>7}{'energy uJ':>11}"
          f"{'search s':>9}")
    for r in rows:
        print(f"{r['guard']:<13}{r['runs']:>5}{r['s1_raw']:>8.2f}{r['final_raw']:>10.2f}{r['derived']:>8.2f}"
              f"{100 * r['accuracy']:>7.1f}{r['energy_uj']:>11.1f}{r['search_seconds']:>9.0f}")
    print(f"\nwinner (fewest final raw skips per normal cell, then fewest stage-1 raw skips, among the guards "
          f"within {tolerance_pt:g} pt of none's accuracy): {winner}; best remedy by the same rule: {remedy}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--guards", nargs="+", choices=GUARDS, default=list(GUARDS), help="collapse_guard values")
    p.add_argument("--lambdas", nargs="+", type=float, default=[0.0, 4.0], help="lambda_time values")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="search seeds")
    p.add_argument("--train-seed", type=int, default=0, help="training seed of every derived network")
    p.add_argument("--tolerance", type=float, default=0.5, help="accuracy points a guard may lose against none")
    p.add_argument("--set", dest="sets", nargs="+", default=[], metavar="KEY=VALUE",
                   help="protocol overrides (e.g. max_epochs=4 train_size=200)")
    p.add_argument("--json", metavar="FILE", help="also write every run and the summary as JSON")
    p.add_argument("--from-json", metavar="FILE", help="print the table of an earlier --json (no search)")
    args = p.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        runs = [Run(**{**r, **{k: tuple(r[k]) for k in ("s1_raw", "final_raw", "derived")}}) for r in saved["runs"]]
        rows, winner, remedy = summarise(runs, args.tolerance)
        print_table(runs, rows, winner, remedy, args.tolerance, SearchConfig.from_dict(saved["config"]))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    log.setLevel(logging.INFO)
    config = SearchConfig.from_dict({**PROTOCOL, **parse_set(args.sets)})
    data = load_datasets(config)
    runs = []
    for guard in args.guards:
        for lam in args.lambdas:
            for seed in args.seeds:
                run = one_run(config.replace(collapse_guard=guard, lambda_time=lam, seed=seed), data, args.train_seed)
                log.info("%s lambda %g seed %d: s1 %s final %s derived %s acc %.3f (%.0f s)", guard, lam, seed,
                         run.s1_raw, run.final_raw, run.derived, run.accuracy, run.search_seconds)
                runs.append(run)
    rows, winner, remedy = summarise(runs, args.tolerance)
    print_table(runs, rows, winner, remedy, args.tolerance, config)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": config.to_dict(), "runs": [asdict(r) for r in runs], "summary": rows,
                       "winner": winner, "best_remedy": remedy, "tolerance_pt": args.tolerance}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
