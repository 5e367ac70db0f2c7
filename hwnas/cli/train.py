"""``hwnas train SOURCE``: a front's point trained at full size, with its metrics and DRAM cost.

A thin layer over ``hwnas.train`` (``hwnas/deploy.py``). SOURCE is an experiment (a local folder or
``s3://bucket/prefix/name``, read as ``hwnas pareto`` reads it) whose point is chosen by ``--trial ID`` or ``--pick RULE`` (``results.picking``), or a genotype /
trial-result JSON file. The network is built from the genotype by the search's own cell code and trained
by ``trainables.full_train`` (checkpoint per epoch: rerunning the same command resumes). Writes into
``--out``: ``model.pt`` (state_dict), ``genotype.json``, ``config.json`` (what ``hwnas export`` rebuilds
the network from), ``metrics.json`` (test accuracy, params, MACs, DRAM cost), ``curve.png``.
Ray-free: on a cluster, ``hwnas submit --gpus 1 -- train ...`` runs it as a Ray job.
"""
from __future__ import annotations

import argparse
import json

from searchspace.schema import add_set_argument
from searchspace.train_config import TRAIN_PRESETS

from results.picking import RULES

EPILOG = """\
examples:
  hwnas train hwnas-results/fashion --pick knee --preset fashion --out runs/knee
  hwnas train s3://bucket/hwnas/cifar --pick budget:dram_time_us=40 --preset cifar10-darts --out runs/c10
  hwnas train trial.json --set epochs=2 layers=5 channels=8 --profile eyeriss
  hwnas submit --gpus 1 -- train s3://bucket/hwnas/cifar --pick knee --preset cifar10-darts --out s3-synced-dir

--pick rules: """ + ", ".join(RULES) + """ (default knee; see results/picking.py).
Presets: """ + ", ".join(TRAIN_PRESETS) + """. --set keys: the fields of TrainConfig
(searchspace/train_config.py; docs: How-to, "From front to deployment"). Rerun the same command to resume.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a front's point (or a genotype file) at full size; metrics and DRAM cost",
        description="Build the network of a picked genotype with the search's cell code, train it (per-epoch "
                    "checkpoints, resumable), and write model.pt, genotype.json, config.json, metrics.json, "
                    "curve.png.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="experiment folder or s3:// URI, or a genotype / trial JSON file")
    p.add_argument("--trial", metavar="ID", help="train this trial of the experiment")
    p.add_argument("--pick", metavar="RULE", help=f"choose a front point: {', '.join(RULES)} (default knee)")
    p.add_argument("--preset", choices=sorted(TRAIN_PRESETS), help="training protocol preset")
    add_set_argument(p, example="epochs=2 layers=8 channels=16 cutout=16", what="TrainConfig overrides")
    p.add_argument("--profile", metavar="NAME_OR_FILE", help="DRAM cost profile of metrics.json (default: the "
                   "experiment's)")
    p.add_argument("--out", metavar="DIR", default="hwnas-train", help="output folder (default ./hwnas-train)")
    p.add_argument("--endpoint-url", metavar="URL", help="S3-compatible endpoint (default: $AWS_ENDPOINT_URL)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """``hwnas train``: ``hwnas.train`` with the flags; the metrics (without the history) as one JSON line."""
    from hwnas.deploy import train

    run = train(args.source, trial=args.trial, pick=args.pick, preset=args.preset, profile=args.profile,
                out=args.out, endpoint_url=args.endpoint_url, sets=args.sets)
    print(json.dumps({k: v for k, v in run.metrics.items() if k != "history"}))
    return 0
