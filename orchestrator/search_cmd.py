"""``hwnas search``: a Ray Tune experiment over seeds x lambda_time x lambda_energy (x profiles)."""
from __future__ import annotations

import argparse
import logging
import os

from searchspace.schema import add_set_argument

EPILOG = """\
examples:
  hwnas search --preset fashion                      # real lambda scan, local Ray, ./hwnas-results/fashion
  hwnas search --preset smoke --storage s3://bucket/runs --endpoint-url http://127.0.0.1:9000
  hwnas search --config exp.yaml --set seeds=[0,1] --set lambda_time=[0,0.5,2] search.max_epochs=3
  hwnas search --preset cifar10 --address auto       # on a running Ray cluster (ray up cluster.yaml)
  hwnas search --preset smoke --resume smoke         # continue an interrupted experiment (Tuner.restore)

results: <storage>/<name>/trials.parquet (every trial) and <storage>/<name>/pareto.parquet (the front);
Ray Tune's experiment state and checkpoints live in the same folder. Read them with `hwnas pareto`.
The console shows hwnas's progress lines; `hwnas -v search ...` adds Ray's own log lines.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search", help="run a Ray Tune experiment over seeds and DRAM-cost weights",
        description="Run one two-stage search per point of seeds x lambda_time x lambda_energy (x profiles) "
                    "on Ray Tune, then write every trial and the accuracy / DRAM-cost Pareto front as Parquet.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE",
                   help="experiment config, YAML or JSON: experiment keys (name, storage, seeds, lambda_time, "
                        "lambda_energy, profiles, max_concurrent_trials, cpus_per_trial, gpus_per_trial, ...) "
                        "and search keys under 'search:'")
    p.add_argument("--preset", choices=["smoke", "fashion", "cifar10"],
                   help="named starting point (search settings and a default scan); the file and --set override it; "
                        "also the default --name")
    p.add_argument("--storage", metavar="URI",
                   help="where results go: a local folder (default ./hwnas-results) or s3://bucket/prefix "
                        "(standard AWS credential chain)")
    p.add_argument("--endpoint-url", metavar="URL",
                   help="S3-compatible endpoint such as http://127.0.0.1:9000 (default: $AWS_ENDPOINT_URL, else AWS)")
    p.add_argument("--name", metavar="NAME",
                   help="experiment name, the folder under the storage; rerunning a name replaces its tables "
                        "(default: the preset's name, else 'hwnas')")
    p.add_argument("--address", metavar="ADDR",
                   help="Ray cluster to use, as ray.init takes it ('auto', 'ray://head:10001', host:port); "
                        "default: $RAY_ADDRESS (set inside a Ray job), else start a local Ray")
    p.add_argument("--scan", choices=["grid", "adaptive"],
                   help="grid: every point of the lambda lists (default); adaptive: a coarse grid, then new lambda "
                        "points where the front has its largest gaps until scan_budget trials or scan_min_gain "
                        "(keys scan_init, scan_budget, scan_rounds, scan_batch, scan_min_gain; see README)")
    p.add_argument("--resume", metavar="NAME",
                   help="continue the interrupted experiment NAME under --storage (tune.Tuner.restore): finished "
                        "trials are kept, unfinished ones resume from their last checkpoint, errored ones rerun, an "
                        "adaptive scan goes on with the settings it started with; give the same --storage/--config/"
                        "--set as the first run")
    add_set_argument(p, example="seeds=[0,1] lambda_time=[0,0.5,1] search.max_epochs=2 train_size=500")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from .experiment import run_experiment
    from .experiment_config import load_experiment_config

    sets = [*args.sets, *([f"scan={args.scan}"] if getattr(args, "scan", None) else [])]  # --scan wins over --set
    resume = getattr(args, "resume", None)
    if resume and args.name and args.name != resume:
        raise ValueError(f"--resume {resume} and --name {args.name} name different experiments")
    exp = load_experiment_config(preset=args.preset, config_file=args.config, sets=sets, name=resume or args.name,
                                 storage=args.storage, endpoint_url=args.endpoint_url)
    # RAY_ADDRESS is read here, at the entry point: Ray sets it for a Ray job's driver (hwnas submit)
    summary = run_experiment(exp, address=args.address, resume=bool(resume), verbose=bool(args.verbose),
                             ray_address_env=os.environ.get("RAY_ADDRESS"))
    logging.getLogger("hwnas.search").info("finished")
    print(summary.describe())
    return 0 if summary.front.num_rows else 1
