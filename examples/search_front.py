"""A search and its front as a DataFrame.

Runs the main job (the fashion preset: a lambda scan on Fashion-MNIST, local Ray), prints the front as a
pandas DataFrame and draws it. If the experiment already exists, reads it back instead of searching again.

    .venv/bin/python examples/search_front.py                 # the real thing: minutes on 2 CPU cores
    .venv/bin/python examples/search_front.py --smoke         # tiny trials on synthetic data: seconds
"""
from __future__ import annotations

import argparse

import hwnas

#: --smoke: two tiny trials on synthetic data (what the test suite runs)
SMOKE = dict(dataset="synthetic", train_size=32, val_size=16, test_size=16, batch_size=16, eval_batch_size=16,
             layers=3, channels=4, nodes=2, max_epochs=2, patience=2, eval_epochs=1, augment=False)
COLUMNS = ["trial_id", "lambda_time", "accuracy", "accuracy_std", "dram_time_us", "dram_energy_uj", "skip_count"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny trials on synthetic data (seconds)")
    parser.add_argument("--storage", default="hwnas-results", help="a folder or s3://bucket/prefix")
    parser.add_argument("--plot", default="front.png", help="where to draw the front")
    args = parser.parse_args(argv)

    preset, name, keys = ("smoke", "example-front", dict(SMOKE, lambda_time=[0, 1])) if args.smoke \
        else ("fashion", "fashion", {})
    try:
        exp = hwnas.search(preset, storage=args.storage, name=name, **keys)
    except hwnas.ExperimentExists:  # searched before: read its results back
        exp = hwnas.load(f"{args.storage}/{name}")
    print(exp.summary.describe())

    front = exp.front().to_pandas()  # one row per front point; every column of trials.parquet
    print(front[COLUMNS].to_string(index=False))
    print(f"front drawn in {exp.plot(args.plot)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
