"""``hwnas search``: a Ray Tune experiment over seeds x lambda_time x lambda_energy (x profiles)."""
from __future__ import annotations

import argparse
import sys

from searchspace.errors import EXIT_BAD_INPUT, EXIT_NOT_SAVED, EXIT_OK  # noqa: F401 - the codes of this command
from searchspace.errors import EXIT_NOT_COMPLETED as EXIT_TRIALS_NOT_COMPLETED
from searchspace.schema import add_set_argument

EPILOG = """\
examples:
  hwnas search --preset fashion                      # real lambda scan, local Ray, ./hwnas-results/fashion
  hwnas search --preset smoke --storage s3://bucket/runs --endpoint-url http://127.0.0.1:9000
  hwnas search --config exp.yaml --set seeds=[0,1] --set lambda_time=[0,0.5,2] search.max_epochs=3
  hwnas search --preset cifar10 --address auto       # on a running Ray cluster (ray up cluster.yaml)
  hwnas search --resume smoke                        # continue an interrupted experiment (its saved config)
  hwnas search --preset smoke --overwrite            # start anew; the earlier smoke is moved to smoke.replaced-<time>

results: <storage>/<name>/trials.parquet (every trial, rewritten as each trial finishes) and
<storage>/<name>/pareto.parquet (the front); the config in experiment.json; Ray Tune's experiment state
and checkpoints in the same folder. Read them with `hwnas pareto`. The console shows hwnas's progress
lines; `hwnas -v search ...` adds Ray's own log lines.

exit codes: 0 every trial completed; 1 some trial failed or is incomplete (the tables say which), or the
run was interrupted (Ctrl-C or SIGTERM: the last line says how to --resume it); 2 bad input, found before
any trial (config, profile, storage, an existing, running or unknown experiment, a trial larger than any
node of a local Ray); 3 the results could not be written to the storage, at the end or during the run
(every trial's row is in ./hwnas-unsaved/NAME-TIME) or another I/O error; 130 interrupted before any trial.
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
                   help="experiment name, the folder under the storage; a name whose folder holds results is "
                        "refused unless --resume or --overwrite (default: the preset's name, else 'hwnas')")
    p.add_argument("--address", metavar="ADDR",
                   help="Ray cluster to use, as ray.init takes it ('auto', 'ray://head:10001', host:port); "
                        "default: $RAY_ADDRESS (set inside a Ray job), else start a local Ray")
    p.add_argument("--scan", choices=["grid", "adaptive"],
                   help="grid: every point of the lambda lists (default); adaptive: a coarse grid, then new lambda "
                        "points where the front has its largest gaps until scan_budget trials or scan_min_gain "
                        "(keys scan_init, scan_budget, scan_rounds, scan_batch, scan_min_gain; docs: The scan)")
    p.add_argument("--resume", metavar="NAME",
                   help="continue the interrupted experiment NAME under --storage (tune.Tuner.restore): finished "
                        "trials are kept, unfinished ones resume from their last checkpoint, errored ones rerun, an "
                        "adaptive scan goes on with the settings it started with. Needs only --storage (and "
                        "--endpoint-url): the config is read from <storage>/NAME/experiment.json; settings given "
                        "besides are ignored with a warning")
    p.add_argument("--overwrite", action="store_true",
                   help="start the experiment anew even though its folder holds results: the earlier folder is "
                        "moved to NAME.replaced-<UTC time> under the storage (nothing is deleted)")
    add_set_argument(p, example="seeds=[0,1] lambda_time=[0,0.5,1] search.max_epochs=2 train_size=500")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """``hwnas search``: ``hwnas.search`` with the flags; the summary on stdout, the exit code from how it ended."""
    from hwnas.errors import ResultsNotSaved
    from hwnas.experiment import search

    resume = getattr(args, "resume", None)
    overwrite = bool(getattr(args, "overwrite", False))
    if resume and args.name and args.name != resume:
        raise ValueError(f"--resume {resume} and --name {args.name} name different experiments")
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other: resume continues the experiment, "
                         "overwrite starts it anew")
    try:
        experiment = search(args.preset, args.config, storage=args.storage, name=resume or args.name,
                            address=args.address, endpoint_url=args.endpoint_url, scan=getattr(args, "scan", None),
                            resume=bool(resume), overwrite=overwrite, sets=args.sets, verbose=bool(args.verbose))
    except ResultsNotSaved as exc:  # the summary first (it names the local copy), then the one error line
        print(exc.experiment.summary.describe())
        raise
    summary = experiment.summary
    print(summary.describe())
    if summary.interrupted and not summary.all_completed:
        print(f"hwnas search: interrupted by {summary.interrupted}; the tables hold the trials so far; continue "
              f"with: {resume_command(experiment.config() or experiment)}", file=sys.stderr)
        return EXIT_TRIALS_NOT_COMPLETED
    return EXIT_OK if summary.all_completed else EXIT_TRIALS_NOT_COMPLETED


def resume_command(exp) -> str:
    """The command that continues ``exp``: ``hwnas search --resume NAME`` (+ the storage when not the default)."""
    import shlex

    from results.storage import Storage

    cmd = ["hwnas", "search", "--resume", exp.name]
    if Storage.from_uri(exp.storage).uri != Storage.from_uri(None).uri:
        cmd += ["--storage", Storage.from_uri(exp.storage).uri]
    if exp.endpoint_url:
        cmd += ["--endpoint-url", exp.endpoint_url]
    return shlex.join(cmd)
