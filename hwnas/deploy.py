"""From a front to a deployed network: ``pick`` a point, ``train`` its network at full size, ``export`` it to
ONNX (checked with onnxruntime). ``hwnas train`` and ``hwnas export`` are these functions.

``pick`` is Ray- and torch-free; ``train`` and ``export`` import torch when they run.
"""
from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .errors import ExportCheckError, InputError, NotFoundError, raises_typed

if TYPE_CHECKING:
    import pyarrow as pa

    from searchspace.config import SearchConfig
    from searchspace.genotype import Genotype
    from searchspace.train_config import TrainConfig

    from .experiment import Experiment

log = logging.getLogger("hwnas.train")
export_log = logging.getLogger("hwnas.export")

#: the ONNX opset ``export`` writes
OPSET = 17


# ---------------------------------------------------------------------------------------------- pick
@raises_typed
def pick(front: Experiment | pa.Table | Iterable[Mapping[str, Any]], rule: str = "knee") -> dict[str, Any]:
    """One point of a front, by a rule (``hwnas train --pick``), over its completed points with finite
    accuracy and DRAM costs.

    Args:
        front: An ``Experiment`` (its front), a front Table or DataFrame, or rows.
        rule: ``"knee"``: error and DRAM time min-max normalised over the front, the point nearest the ideal
            corner; ``"most-accurate"``; ``"cheapest"`` (lowest DRAM time); ``"budget:dram_time_us=X"`` /
            ``"budget:dram_energy_uj=X"``: the most accurate point at most X us (uJ).

    Returns:
        The point's ``trials.parquet`` row as a dict: ``trial_id``, ``accuracy``, ``dram_time_us``,
            ``genotype`` and ``config`` (JSON), ...; ``cost``, ``train`` and ``export`` take it.

    Raises:
        PickError: An unknown rule, or no point qualifies (a budget under every point: the message names
            the cheapest).
    """
    from results.picking import pick as pick_row

    from .experiment import front_rows

    rows = front_rows(front)
    return dict(pick_row(rows.to_pylist() if hasattr(rows, "to_pylist") else rows, rule))


# ---------------------------------------------------------------------------------------------- train
@dataclass(frozen=True)
class Trained:
    """A network ``train`` trained: the folder and what ``metrics.json`` holds.

    Attributes:
        path: The output folder: ``model.pt`` (state_dict), ``genotype.json``, ``config.json``,
            ``metrics.json``, ``curve.png``, ``checkpoint.pt``.
        metrics: ``metrics.json``: ``test_accuracy`` (0..1), ``params``, ``macs``, the DRAM cost of the
            trained network (``dram_time_us`` in us, ``dram_energy_uj`` in uJ, ``dram_bytes``) on
            ``profile`` at ``cost_batch``, its geometry, ``epochs``, ``resumed_from_epoch``, ``seconds``,
            the per-epoch ``history`` and where the point came from.
    """

    path: Path
    metrics: dict[str, Any]

    @property
    def test_accuracy(self) -> float:
        """Test accuracy of the trained network, 0..1."""
        return float(self.metrics["test_accuracy"])


def resolve_source(source: Any, trial: str | None, rule: str | None,
                   endpoint_url: str | None) -> tuple[Genotype, dict[str, Any] | None, dict[str, Any]]:
    """(genotype, its search config dict or None, provenance) from a file, a row / genotype, or an
    experiment's front (``--trial`` / ``--pick``)."""
    from results.picking import by_trial, pick as pick_row

    from .costing import genotype_of, load_genotype_file
    from .experiment import Experiment

    if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        if trial or rule:
            raise InputError(f"{os.fspath(source)} is a genotype file: --trial and --pick choose within an experiment")
        genotype, config = load_genotype_file(source, "SOURCE")
        return genotype, config, {"source": os.fspath(source)}
    if not isinstance(source, (str, os.PathLike, Experiment)):  # a picked row, a trial record, a genotype
        if trial or rule:
            raise InputError("a genotype or row is one network: --trial and --pick choose within an experiment")
        genotype, config = genotype_of(source, "source")
        prov: dict[str, Any] = {"source": "python"}
        if isinstance(source, Mapping) and source.get("trial_id") is not None:
            prov.update(trial_id=source.get("trial_id"), pick=None, search_accuracy=source.get("accuracy"),
                        search_dram_time_us=source.get("dram_time_us"))
        return genotype, config, prov
    if isinstance(source, Experiment):
        where, trials, front = source.path, source.trials(), source.front()
    else:
        where = os.fspath(source)
        if not where.startswith("s3://") and not Path(where).is_dir():
            raise NotFoundError(f"SOURCE {where!r}: no such file, folder or s3:// URI")
        from results.tables import load_front

        trials, front = load_front(where, endpoint_url)
    if trial and rule:
        raise InputError("give --trial or --pick, not both")
    row = by_trial(trials.to_pylist(), trial) if trial else pick_row(front.to_pylist(), rule or "knee")
    from searchspace.genotype import Genotype

    genotype = Genotype.from_json(row["genotype"])
    config = json.loads(row["config"]) if row.get("config") else None
    prov = {"source": where, "trial_id": row.get("trial_id"), "pick": None if trial else (rule or "knee"),
            "search_accuracy": row.get("accuracy"), "search_dram_time_us": row.get("dram_time_us")}
    log.info("picked trial %s (accuracy %.4f, dram_time_us %.3f) by %s", row.get("trial_id"), row["accuracy"],
             row["dram_time_us"], f"--trial {trial}" if trial else f"--pick {rule or 'knee'}")
    return genotype, config, prov


def network_metrics(search: SearchConfig, train: TrainConfig, genotype: Genotype, net: Any) -> dict[str, Any]:
    """params, MACs and the DRAM cost of the trained network on the train run's (or experiment's) profile."""
    from cost_models.network import network_cost
    from searchspace.layout import TRAINING, expand_genotype, network_instances, network_macs, network_spec

    spec = network_spec(search, TRAINING, train)
    profile, batch = train.profile or search.profile, train.cost_batch or search.cost_batch
    g = expand_genotype(genotype, spec.layers)
    macs = network_macs(network_instances(g, spec))
    cost = network_cost(g, spec, profile, batch)
    return {"params": int(sum(p.numel() for p in net.parameters())), "macs": int(macs), "layers": spec.layers,
            "channels": spec.channels, "image_size": spec.image_size, "profile": profile, "cost_batch": batch,
            "dram_time_us": cost.dram_time_us, "dram_energy_uj": cost.dram_energy_uj, "dram_bytes": cost.dram_bytes}


def plot_curve(history: list[dict[str, float]], path: Path, title: str) -> None:
    """Training loss and train / test accuracy per epoch, as a PNG."""
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


@raises_typed
def train(source: Any, *, trial: str | None = None, pick: str | None = None, preset: str | None = None,
          profile: str | None = None, out: str | os.PathLike[str] = "hwnas-train", endpoint_url: str | None = None,
          sets: Sequence[str] = (), **overrides: Any) -> Trained:
    """Train a front point's network at full size (``hwnas train``): built from its genotype by the search's
    own cell code, with the experiment's ``nodes`` / ``stem_multiplier``, checkpointed every epoch into
    ``out`` (the same call resumes after the last finished epoch; more ``epochs`` continue).

    Args:
        source: An experiment (an ``Experiment``, a folder or ``s3://`` URI; the point chosen by ``trial`` or
            ``pick``), a picked row (``pick``'s result), a ``Genotype`` or genotype mapping, or a genotype /
            trial-result JSON file.
        trial: Train this trial of the experiment (any completed one).
        pick: A ``pick`` rule over the experiment's front (default ``"knee"``).
        preset: Training protocol: ``"fashion"`` (quick CPU) or ``"cifar10-darts"`` (DARTS's ``train.py``).
        profile: Processor profile of ``metrics.json``'s DRAM cost (default: the experiment's).
        out: The output folder.
        endpoint_url: S3-compatible endpoint for an ``s3://`` experiment.
        sets: ``KEY=VALUE`` strings as ``--set`` takes them.
        **overrides: ``TrainConfig`` keys: ``epochs``, ``batch_size``, ``lr``, ``layers`` / ``channels`` (0 =
            the experiment's evaluation network), ``train_size`` / ``test_size`` (0 = all), ``cutout``,
            ``drop_path_prob``, ``auxiliary``, ``dataset``, ``device``, ``seed``, ...

    Returns:
        The folder and its metrics.

    Raises:
        PickError: No point for ``trial`` / ``pick``.
        ConfigError: A bad training key or value.
        CheckpointError: ``out`` holds a checkpoint of another genotype or training config, or a damaged one.
        NotFoundError: ``source`` does not exist.
    """
    import torch

    from searchspace.config import SearchConfig
    from searchspace.files import atomic_write_text
    from searchspace.schema import parse_set
    from searchspace.train_config import TrainConfig, train_preset
    from trainables.full_train import train_full

    genotype, config, prov = resolve_source(source, trial, pick, endpoint_url)
    search = SearchConfig.from_dict(config if config is not None else {"layers": len(genotype.cells)})
    values = train_preset(preset) if preset else {}
    values.update(parse_set(list(sets)))
    values.update(overrides)
    if profile:
        values["profile"] = profile
    cfg = TrainConfig.from_dict(values)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "genotype.json", json.dumps(genotype.to_dict(), indent=1))
    atomic_write_text(folder / "config.json", json.dumps({"search": search.to_dict(), "train": cfg.to_dict(),
                                                           **prov}, indent=1, sort_keys=True))
    t0 = time.perf_counter()

    def progress(rec: dict[str, float]) -> None:
        log.info("epoch %d/%d  lr %.4f  train loss %.4f acc %.4f  test acc %.4f  %.1f s", rec["epoch"],
                 cfg.epochs, rec["lr"], rec["train_loss"], rec["train_acc"], rec["test_acc"], rec["seconds"])

    run = train_full(search, cfg, genotype, checkpoint=folder / "checkpoint.pt", on_epoch=progress)
    torch.save(run.net.state_dict(), folder / "model.pt")
    metrics = {"test_accuracy": run.test_accuracy, **network_metrics(search, cfg, genotype, run.net),
               "epochs": len(run.history), "resumed_from_epoch": run.resumed_from,
               "seconds": time.perf_counter() - t0, "history": list(run.history), **prov}
    atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=1))
    plot_curve(list(run.history), folder / "curve.png",
               f"{metrics['layers']} cells x {metrics['channels']} channels on {cfg.dataset}")
    return Trained(folder, metrics)


# ---------------------------------------------------------------------------------------------- export
@dataclass(frozen=True)
class Exported:
    """What ``export`` wrote and measured.

    Attributes:
        onnx: The ONNX file (``DIR/model.onnx``).
        opset: Its opset.
        max_abs_diff: Largest |onnxruntime - PyTorch| logit difference over the test images.
        argmax_agreement: Fraction of the test images both predict the same class for (0..1).
        images: Test images compared.
        atol: The tolerance the difference was checked against.
    """

    onnx: Path
    opset: int
    max_abs_diff: float
    argmax_agreement: float
    images: int
    atol: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``hwnas export`` prints."""
        return {"onnx": str(self.onnx), "opset": self.opset, "max_abs_diff": self.max_abs_diff,
                "argmax_agreement": self.argmax_agreement, "images": self.images, "atol": self.atol}


def read_json(path: Path) -> Any:
    """A JSON file's content; a one-line ``InputError`` naming the file if it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def load_trained(folder: Path) -> Any:
    """(net in eval mode on CPU, search config, train config) from ``train``'s folder."""
    from searchspace.config import SearchConfig
    from searchspace.genotype import Genotype
    from searchspace.train_config import TrainConfig
    from trainables.full_train import build_network
    from trainables.state import torch_load

    missing = [n for n in ("model.pt", "config.json", "genotype.json") if not (folder / n).is_file()]
    if missing:
        raise NotFoundError(f"{folder}: not an hwnas train folder (missing {', '.join(missing)})")
    cfg = read_json(folder / "config.json")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("search"), dict) or not isinstance(cfg.get("train"), dict):
        raise InputError(f"{folder / 'config.json'}: expected hwnas train's config ({{\"search\": {{...}}, "
                         f"\"train\": {{...}}}})")
    try:
        search, train_cfg = SearchConfig.from_dict(cfg["search"]), TrainConfig.from_dict(cfg["train"])
    except ValueError as exc:
        raise InputError(f"{folder / 'config.json'}: {exc}") from None
    try:
        genotype = Genotype.from_dict(read_json(folder / "genotype.json"))
    except ValueError as exc:
        raise InputError(f"{folder / 'genotype.json'}: {exc}") from None
    try:
        net = build_network(search, train_cfg, genotype)
    except ValueError as exc:
        raise InputError(f"{folder}: the network of genotype.json and config.json cannot be built ({exc})") from None
    state = torch_load(folder / "model.pt", "trained weights")
    try:
        net.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{folder / 'model.pt'} does not fit the network of config.json: "
                         f"{' '.join(str(exc).split())[:500]}") from None
    return net.eval(), search, train_cfg


def export_onnx(net: Any, example: Any, path: Path) -> None:
    """TorchScript exporter (no onnxscript needed), BN kept, batch axis dynamic."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, (example,), str(path), dynamo=False, opset_version=OPSET,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def check_onnx(path: Path, net: Any, x: Any) -> dict[str, Any]:
    """Run ``path`` with onnxruntime on ``x`` (N, C, H, W); compare with ``net``'s logits."""
    import numpy as np
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"input": x.numpy()})[0]
    with torch.no_grad():
        want = net(x).numpy()
    diff = float(np.abs(got - want).max())
    return {"max_abs_diff": diff, "argmax_agreement": float((got.argmax(1) == want.argmax(1)).mean()),
            "images": int(x.shape[0])}


@raises_typed
def export(path: "str | os.PathLike[str] | Trained", format: str = "onnx", *, images: int = 64,
           atol: float = 1e-4) -> Exported:
    """Export a network ``train`` trained to ``DIR/model.onnx`` (``hwnas export``): opset 17, input ``input``
    (batch, C, H, W) and output ``logits`` with a dynamic batch axis, BatchNormalization kept as nodes;
    then run it with onnxruntime on test images and compare its logits with PyTorch's.

    Args:
        path: ``train``'s output folder (or its ``Trained`` result).
        format: ``"onnx"`` (the only format).
        images: Test images of the onnxruntime check.
        atol: Largest allowed |onnx - torch| of a logit.

    Returns:
        The file and what the check measured (tiny CPU runs give a difference of about 2e-7).

    Raises:
        NotFoundError: ``path`` is not a folder ``train`` wrote.
        InputError: A damaged ``model.pt``, ``config.json`` or ``genotype.json`` (the message names it).
        ExportCheckError: The difference is above ``atol`` (the file stays for inspection; ``exc.result``).
    """
    from searchspace.files import atomic_write
    from trainables.data import load_datasets
    from trainables.full_train import data_config

    if format != "onnx":
        raise InputError(f"export format {format!r}: the only format is 'onnx'")
    folder = Path(path.path if isinstance(path, Trained) else path)
    if images < 1:
        raise InputError(f"--images must be at least 1, got {images}")
    net, search, train_cfg = load_trained(folder)
    data = load_datasets(data_config(search, train_cfg).replace(train_size=train_cfg.train_size or 2000,
                                                                test_size=images), "cpu")
    x = data.test.x[:images]
    target = folder / "model.onnx"
    # a temporary file renamed over model.onnx (a failed export never leaves half a file); an OSError names it
    atomic_write(target, lambda tmp: export_onnx(net, x[:2], Path(tmp)))
    result = Exported(target, OPSET, atol=atol, **check_onnx(target, net, x))
    if not result.max_abs_diff <= atol:
        raise ExportCheckError(f"{target}: onnxruntime and PyTorch differ by {result.max_abs_diff:.3g} (above "
                               f"--atol {atol:g}); the file is kept for inspection", result)
    export_log.info("exported %s: max |onnx - torch| = %.2e on %d test images", target, result.max_abs_diff,
                    result.images)
    return result


__all__ = ["Exported", "OPSET", "Trained", "export", "pick", "train"]
