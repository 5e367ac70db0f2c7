"""How often does stage 2 keep the representative? (issue 16 item 5: a fair start for the siblings)

Per seed, stage 1 runs once; stage 2 then runs from that same outcome (same data stream) under each
``stage2_start``: ``representative`` (the representative keeps its stage-1 weights, its siblings start
fresh: the rule before issue 16), ``warmup`` (the same, then ``warmup_epochs`` weight-only epochs) and
``copy`` (every sibling initialised from its representative, smaller kernels centred in larger ones).
On the edges whose winning group has more than one operator, it counts how often stage 2's strongest
operator is the stage-1 representative: with a fair start that is no longer ~always. Also the stage-2
supernet's validation accuracy.

  python benchmarks/stage2_start.py                        # 3 seeds, ~10 min on 2 busy CPU cores
  python benchmarks/stage2_start.py --seeds 0 1 2 3 --set train_size=1000
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from cost_models import search_cost_table
from searchspace.config import SearchConfig, parse_set, preset
from trainables import SearchState, load_datasets, stage2_space
from trainables.search import Trial, choose_groups, search_stage1, search_stage2
from trainables.supernet import STAGE2_STARTS, representative_of, search_device

DEFAULTS = dict(preset("fashion"), train_size=500, val_size=300, channels=4, max_epochs=3, patience=2,
                warmup_epochs=1)


def kept_fraction(config: SearchConfig, state: SearchState) -> tuple[int, int]:
    """(edges where stage 2's argmax is the representative, edges whose group has > 1 operator)."""
    space = stage2_space(config, state.groups, state.stage1.choice)
    rep = representative_of(state.groups, config.representatives)
    w = state.stage2.op_weight
    kept = total = 0
    for s, row in enumerate(space.candidates):
        for e, cands in enumerate(row):
            if len(cands) > 1:
                total += 1
                kept += cands[int(w[s, e, :len(cands)].argmax())] == rep[cands[0]]
    return kept, total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", dest="sets", nargs="+", default=[], metavar="KEY=VALUE", help="search config overrides")
    args = p.parse_args(argv)
    base = SearchConfig.from_dict({**DEFAULTS, **parse_set(args.sets)})
    rows = {m: [] for m in STAGE2_STARTS}
    for seed in args.seeds:
        config = base.replace(seed=seed)
        device = search_device(config)
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        trial = Trial(config, load_datasets(config, device), search_cost_table(config), device, gen, None, None,
                      time.perf_counter())
        after1 = search_stage1(trial, choose_groups(trial, SearchState()))
        rng = gen.get_state()
        for mode in STAGE2_STARTS:
            cfg = config.replace(stage2_start=mode)
            t0 = time.perf_counter()
            out = search_stage2(dataclasses.replace(trial, config=cfg, gen=torch.Generator().set_state(rng)), after1)
            kept, total = kept_fraction(cfg, out)
            rows[mode].append((kept, total, out.stage2.supernet_accuracy, out.stage2.epochs, time.perf_counter() - t0))
    print(f"{base.layers} cells x {base.channels} channels, {base.train_size} {base.dataset} images, seeds {args.seeds}, "
          f"CPU {torch.get_num_threads()} threads")
    print(f"{'stage2_start':<15} {'rep kept per seed':<26} {'kept %':>7} {'supernet acc':>13} {'epochs':>7} {'s':>6}")
    for mode, rs in rows.items():
        per_seed = " ".join(f"{k}/{t}" for k, t, *_ in rs)
        pct = 100 * sum(r[0] for r in rs) / max(1, sum(r[1] for r in rs))
        print(f"{mode:<15} {per_seed:<26} {pct:>6.1f}% {statistics.fmean(r[2] for r in rs):>13.4f} "
              f"{statistics.fmean(r[3] for r in rs):>7.1f} {sum(r[4] for r in rs):>6.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
