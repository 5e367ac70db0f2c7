"""Pick a point of a front, re-cost it on two processors, train it, export it to ONNX and cost the file.

    .venv/bin/python examples/pick_recost_export.py hwnas-results/fashion            # after search_front.py
    .venv/bin/python examples/pick_recost_export.py hwnas-results/example-front --smoke
"""
from __future__ import annotations

import argparse
import json

import hwnas

PROFILES = ["mobile-npu", "eyeriss"]
#: --smoke: one epoch on a few images (what the test suite runs); otherwise the fashion training preset
SMOKE_TRAIN = dict(epochs=1, train_size=64, test_size=64, batch_size=32, layers=3, channels=4, device="cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", nargs="?", default="hwnas-results/fashion", help="<storage>/<name>")
    parser.add_argument("--rule", default="knee", help="knee, most-accurate, cheapest, budget:dram_time_us=X")
    parser.add_argument("--out", default="runs/knee", help="the trained network's folder")
    parser.add_argument("--smoke", action="store_true", help="train one epoch on a few images")
    args = parser.parse_args(argv)

    exp = hwnas.load(args.experiment)
    point = hwnas.pick(exp, args.rule)  # a trials.parquet row: trial_id, accuracy, genotype, config, ...
    print(f"picked {point['trial_id']}: accuracy {point['accuracy']:.4f}, {point['dram_time_us']:.4g} us, "
          f"{point['dram_energy_uj']:.4g} uJ on {point['profile']}")

    # the same network on two processors, without searching again
    table = hwnas.recost([point], PROFILES).to_pandas()
    print(table[["profile", "dram_time_us", "dram_energy_uj", "dram_bytes", "deploy_layers", "cost_batch"]]
          .to_string(index=False))

    # train it (briefly with --smoke), export it, and cost the ONNX file like any other network
    dataset = json.loads(point["config"])["dataset"]
    train = dict(SMOKE_TRAIN, dataset=dataset) if args.smoke else dict(dataset=dataset)
    run = hwnas.train(point, preset=None if args.smoke else "fashion", out=args.out, **train)
    print(f"trained: test accuracy {run.test_accuracy:.4f}, {run.metrics['params']} parameters")
    onnx = hwnas.export(run, images=16 if args.smoke else 64)
    print(f"exported {onnx.onnx}: max |onnx - torch| = {onnx.max_abs_diff:.2e}")
    for profile in PROFILES:
        cost = hwnas.cost_onnx(onnx.onnx, profile)
        print(f"{onnx.onnx} on {profile}: {cost.dram_time_us:.4g} us, {cost.dram_energy_uj:.4g} uJ, "
              f"{len(cost.rows)} kernel groups")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
