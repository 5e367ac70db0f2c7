"""``hwnas train SOURCE``: a front's point trained at full size, with its metrics and DRAM cost.

SOURCE is an experiment (a local folder or ``s3://bucket/prefix/name``, read as ``hwnas pareto`` reads it)
whose point is chosen by ``--trial ID`` or ``--pick RULE`` (``results.picking``), or a genotype /
trial-result JSON file. The network is built from the genotype by the search's own cell code and trained
by ``trainables.full_train`` (checkpoint per epoch: rerunning the same command resumes). Writes into
``--out``: ``model.pt`` (state_dict), ``genotype.json``, ``config.json`` (what ``hwnas export`` rebuilds
the network from), ``metrics.json`` (test accuracy, params, MACs, DRAM cost), ``curve.png``.
Ray-free: on a cluster, ``hwnas submit --gpus 1 -- train ...`` runs it as a Ray job.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from searchspace.config import SearchConfig
from searchspace.files import atomic_write_text
from searchspace.genotype import Genotype
from searchspace.layout import TRAINING, expand_genotype, network_instances, network_macs, network_spec
from searchspace.schema import add_set_argument, parse_set
from searchspace.train_config import TRAIN_PRESETS, TrainConfig, train_preset

from results.picking import RULES, by_trial, pick

log = logging.getLogger("hwnas.train")

EPILOG = """\
examples:
  hwnas train hwnas-results/fashion --pick knee --preset fashion --out runs/knee
  hwnas train s3://bucket/hwnas/cifar --pick budget:dram_time_us=40 --preset cifar10-darts --out runs/c10
  hwnas train trial.json --set epochs=2 layers=5 channels=8 --profile eyeriss
  hwnas submit --gpus 1 -- train s3://bucket/hwnas/cifar --pick knee --preset cifar10-darts --out s3-synced-dir

--pick rules: """ + ", ".join(RULES) + """ (default knee; see results/picking.py).
Presets: """ + ", ".join(TRAIN_PRESETS) + """. --set keys: the fields of TrainConfig
(searchspace/train_config.py; README "From front to deployment"). Rerun the same command to resume.
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


def resolve_source(source: str, trial: str | None, rule: str | None,
                   endpoint_url: str | None) -> tuple[Genotype, dict[str, Any] | None, dict[str, Any]]:
    """(genotype, its search config dict or None, provenance) from a file or an experiment's front."""
    if Path(source).is_file():
        if trial or rule:
            raise ValueError(f"{source} is a genotype file: --trial and --pick choose within an experiment")
        from hwnas.cli.cost import load_genotype_file

        genotype, config = load_genotype_file(source, "SOURCE")
        return genotype, config, {"source": source}
    if not source.startswith("s3://") and not Path(source).is_dir():
        raise FileNotFoundError(f"SOURCE {source!r}: no such file, folder or s3:// URI")
    if trial and rule:
        raise ValueError("give --trial or --pick, not both")
    from results.tables import load_front

    trials, front = load_front(source, endpoint_url)
    if trial:
        row = by_trial(trials.to_pylist(), trial)
    else:
        row = pick(front.to_pylist(), rule or "knee")
    genotype = Genotype.from_json(row["genotype"])
    config = json.loads(row["config"]) if row.get("config") else None
    prov = {"source": source, "trial_id": row.get("trial_id"), "pick": None if trial else (rule or "knee"),
            "search_accuracy": row.get("accuracy"), "search_dram_time_us": row.get("dram_time_us")}
    log.info("picked trial %s (accuracy %.4f, dram_time_us %.3f) by %s", row.get("trial_id"), row["accuracy"],
             row["dram_time_us"], f"--trial {trial}" if trial else f"--pick {rule or 'knee'}")
    return genotype, config, prov


def network_metrics(search: SearchConfig, train: TrainConfig, genotype: Genotype, net) -> dict[str, Any]:
    """params, MACs and the DRAM cost of the trained network on the train run's (or experiment's) profile."""
    from cost_models.network import network_cost

    spec = network_spec(search, TRAINING, train)
    profile, batch = train.profile or search.profile, train.cost_batch or search.cost_batch
    g = expand_genotype(genotype, spec.layers)
    macs = network_macs(network_instances(g, spec))
    cost = network_cost(g, spec, profile, batch)
    return {"params": int(sum(p.numel() for p in net.parameters())), "macs": int(macs), "layers": spec.layers,
            "channels": spec.channels, "image_size": spec.image_size, "profile": profile, "cost_batch": batch,
            "dram_time_us": cost.dram_time_us, "dram_energy_uj": cost.dram_energy_uj, "dram_bytes": cost.dram_bytes}


def plot_curve(history: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss")
    ax_acc.plot(epochs, [h["train_acc"] for h in history], marker="o", label="train")
    ax_acc.plot(epochs, [h["test_acc"] for h in history], marker="o", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy")
    ax_acc.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(args: argparse.Namespace) -> int:
    import torch

    from trainables.full_train import train_full

    genotype, config, prov = resolve_source(args.source, args.trial, args.pick, args.endpoint_url)
    search = SearchConfig.from_dict(config if config is not None else {"layers": len(genotype.cells)})
    values = train_preset(args.preset) if args.preset else {}
    values.update(parse_set(args.sets))
    if args.profile:
        values["profile"] = args.profile
    train = TrainConfig.from_dict(values)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "genotype.json", json.dumps(genotype.to_dict(), indent=1))
    atomic_write_text(out / "config.json", json.dumps({"search": search.to_dict(), "train": train.to_dict(),
                                                        **prov}, indent=1, sort_keys=True))
    t0 = time.perf_counter()

    def progress(rec: dict[str, float]) -> None:
        log.info("epoch %d/%d  lr %.4f  train loss %.4f acc %.4f  test acc %.4f  %.1f s", rec["epoch"],
                 train.epochs, rec["lr"], rec["train_loss"], rec["train_acc"], rec["test_acc"], rec["seconds"])

    run = train_full(search, train, genotype, checkpoint=out / "checkpoint.pt", on_epoch=progress)
    torch.save(run.net.state_dict(), out / "model.pt")
    metrics = {"test_accuracy": run.test_accuracy, **network_metrics(search, train, genotype, run.net),
               "epochs": len(run.history), "resumed_from_epoch": run.resumed_from,
               "seconds": time.perf_counter() - t0, "history": list(run.history), **prov}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1))
    plot_curve(list(run.history), out / "curve.png",
               f"{metrics['layers']} cells x {metrics['channels']} channels on {train.dataset}")
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}))
    return 0
