"""A budget scan on an existing Ray cluster, results on S3, read back as a DataFrame.

One trial per DRAM time budget of the deployed network (the search loss holds each trial under its
budget), run on the cluster at --address, written to --storage on S3, then read back from S3 and the most
accurate point within the largest budget picked. Every node needs the S3 credentials (an instance role,
or the AWS_* variables where the cluster was started).

    .venv/bin/python examples/cluster_budget_s3.py --address auto --storage s3://my-bucket/hwnas
    .venv/bin/python examples/cluster_budget_s3.py --address 127.0.0.1:6379 --storage s3://bucket/runs \\
        --endpoint-url http://127.0.0.1:9000 --smoke          # tiny trials on synthetic data
"""
from __future__ import annotations

import argparse

import hwnas

#: --smoke: tiny trials on synthetic data (what the test suite runs), and budgets at their scale (us)
SMOKE = dict(dataset="synthetic", train_size=32, val_size=16, test_size=16, batch_size=16, eval_batch_size=16,
             layers=3, channels=4, nodes=2, max_epochs=2, patience=2, eval_epochs=1, augment=False)
BUDGETS_US, SMOKE_BUDGETS_US = [250.0, 280.0], [1.5, 3.0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", default="auto", help="the Ray cluster, as ray.init takes it")
    parser.add_argument("--storage", required=True, help="s3://bucket/prefix (every node must reach it)")
    parser.add_argument("--endpoint-url", help="S3-compatible endpoint (default: $AWS_ENDPOINT_URL, else AWS)")
    parser.add_argument("--name", default="budget-scan")
    parser.add_argument("--smoke", action="store_true", help="tiny trials on synthetic data (seconds)")
    args = parser.parse_args(argv)

    budgets = SMOKE_BUDGETS_US if args.smoke else BUDGETS_US
    preset, keys = ("smoke", SMOKE) if args.smoke else ("fashion", {})
    exp = hwnas.search(preset, address=args.address, storage=args.storage, endpoint_url=args.endpoint_url,
                       name=args.name, overwrite=args.smoke, lambda_time=[0], dram_time_budget_us=budgets, **keys)
    print(exp.summary.describe())

    # anyone with the bucket reads it back, from another machine too
    again = hwnas.load(f"{args.storage.rstrip('/')}/{args.name}", endpoint_url=args.endpoint_url)
    trials = again.trials().to_pandas()
    print(trials[["trial_id", "dram_time_budget_us", "status", "accuracy", "dram_time_us", "is_pareto"]]
          .sort_values("dram_time_budget_us").to_string(index=False))
    try:
        point = hwnas.pick(again, f"budget:dram_time_us={max(budgets)}")
        print(f"most accurate within {max(budgets)} us: {point['trial_id']} ({point['accuracy']:.4f}, "
              f"{point['dram_time_us']:.4g} us)")
    except hwnas.PickError as exc:  # every point above the budget: the message names the cheapest
        print(f"no point within {max(budgets)} us: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
