"""How stable are the learned groups (``groups: learned:K``) across seeds? Adjusted Rand index.

For each seed, ``trainables.learn_groups`` clusters the seven candidates into K groups (BN-calibrated
features of the normal cells' edges); every pair of seeds is compared with the adjusted Rand index
(1 = the same partition, ~0 = as alike as chance). It prints the groups per seed and the pairwise ARI.

  python benchmarks/group_stability.py                    # K=4, seeds 0 1 2, the fashion preset's supernet
  python benchmarks/group_stability.py --k 3 --seeds 0 1 2 3 --set learned_warmup_steps=50
"""
from __future__ import annotations

import argparse
import itertools
import statistics
from math import comb

from searchspace.config import SearchConfig, parse_set, preset
from searchspace.ops import CANDIDATES
from trainables import learn_groups, load_datasets


def adjusted_rand_index(a: list[int], b: list[int]) -> float:
    """Hubert & Arabie's ARI of two labelings of the same items."""
    pairs = lambda counts: sum(comb(c, 2) for c in counts)  # noqa: E731
    table: dict[tuple[int, int], int] = {}
    for x, y in zip(a, b):
        table[(x, y)] = table.get((x, y), 0) + 1
    index = pairs(table.values())
    rows = pairs([a.count(x) for x in set(a)])
    cols = pairs([b.count(y) for y in set(b)])
    expected = rows * cols / comb(len(a), 2)
    top = (rows + cols) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--k", type=int, default=4, help="groups to learn")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", dest="sets", nargs="+", default=[], metavar="KEY=VALUE", help="search config overrides")
    args = p.parse_args(argv)
    base = SearchConfig.from_dict({**preset("fashion"), "groups": f"learned:{args.k}", **parse_set(args.sets)})
    data = load_datasets(base)
    labels = {}
    for seed in args.seeds:
        groups = learn_groups(base.replace(seed=seed), data, args.k)
        labels[seed] = [groups.names.index(groups.group_of(op)) for op in CANDIDATES]
        print(f"seed {seed}: " + "; ".join(f"{{{', '.join(ops)}}}" for _n, ops in groups.items))
    aris = []
    for s, t in itertools.combinations(args.seeds, 2):
        aris.append(adjusted_rand_index(labels[s], labels[t]))
        print(f"ARI seeds {s}-{t}: {aris[-1]:.3f}")
    if aris:
        print(f"mean ARI over {len(aris)} pairs: {statistics.fmean(aris):.3f} (K={args.k}, "
              f"{base.learned_warmup_steps} warm-up steps, {base.layers} cells x {base.channels} channels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
