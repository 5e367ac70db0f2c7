"""What the loss sees: each candidate's DRAM energy relative to sep_conv_3x3, per profile, at the search's
proxy geometry and at deployed geometries (issue #16: the ranking changes with the geometry).

  .venv/bin/python benchmarks/op_cost_ranking.py [--preset fashion] [--metric energy_uj|time_us|dram_bytes]

Each number is the candidate's summed entry over every (searched cell, edge) of ``search_cost_table`` (the
operator plus its share of the node's sum, summed over the deployed cells each searched cell stands for)
divided by the same sum for sep_conv_3x3. Geometries: the preset's search network; C=36, 20 cells, 32x32
(DARTS's evaluation network) at batch 1 and at batch 32. Computed in process; prints a Markdown table.
Not a test.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cost_models import list_profiles, search_cost_table  # noqa: E402
from searchspace.config import SearchConfig, preset  # noqa: E402
from searchspace.ops import CANDIDATES  # noqa: E402

GEOMETRIES = (
    ("search", dict(deploy_layers=0, deploy_channels=0, deploy_image_size=0)),  # the proxy (presets deploy 20 x 36)
    ("C=36, 20 cells, 32x32, batch 1", dict(deploy_layers=20, deploy_channels=36, deploy_image_size=32)),
    ("C=36, 20 cells, 32x32, batch 32", dict(deploy_layers=20, deploy_channels=36, deploy_image_size=32,
                                             cost_batch=32)),
)


def ratios(config: SearchConfig, metric: str) -> dict[str, float]:
    """candidate -> its summed table entry / sep_conv_3x3's."""
    table = search_cost_table(config)
    values = getattr(table, metric).astype(np.float64).sum(axis=(0, 1))  # [candidates]
    ref = values[table.candidates.index("sep_conv_3x3")]
    return {op: float(v / ref) for op, v in zip(table.candidates, values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fashion", help="search preset whose geometry is the proxy")
    parser.add_argument("--metric", default="energy_uj", choices=("energy_uj", "time_us", "dram_bytes"))
    args = parser.parse_args()
    base = preset(args.preset)
    search = SearchConfig.from_dict(base)
    print(f"{args.metric} relative to sep_conv_3x3; search network: {search.layers} cells, C={search.channels}, "
          f"{search.image_size}x{search.image_size}, batch {search.cost_batch}\n")
    print("| profile | geometry | " + " | ".join(CANDIDATES) + " |")
    print("|---|---|" + "---|" * len(CANDIDATES))
    for profile in (p.name for p in list_profiles()):
        for label, extra in GEOMETRIES:
            r = ratios(SearchConfig.from_dict({**base, "profile": profile, **extra}), args.metric)
            print(f"| {profile} | {label} | " + " | ".join(f"{r[op]:.2f}" for op in CANDIDATES) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
