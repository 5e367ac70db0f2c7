"""``hwnas export DIR --format onnx``: the network ``hwnas train`` wrote into DIR as ``DIR/model.onnx``.

Opset ``OPSET`` (fixed), a dynamic batch axis (input ``input`` (batch, C, H, W), output ``logits``
(batch, classes)), exported with torch's TorchScript exporter with BatchNormalization kept as nodes (the
cost model folds BN as the profile says). The file is then loaded with onnxruntime and its outputs
compared with PyTorch's on a batch of test images: the largest absolute difference is printed, above
``--atol`` it is an error. ``hwnas cost --onnx DIR/model.onnx --profile P`` costs it.
"""
from __future__ import annotations

import argparse
import json
import logging
import warnings
from pathlib import Path
from typing import Any

from searchspace.config import SearchConfig
from searchspace.files import atomic_write
from searchspace.genotype import Genotype
from searchspace.train_config import TrainConfig

log = logging.getLogger("hwnas.export")
OPSET = 17


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a trained network (hwnas train's folder) to ONNX, checked with onnxruntime",
        description=f"Write DIR/model.onnx (opset {OPSET}, dynamic batch) from DIR/model.pt and DIR/config.json, "
                    f"then run it with onnxruntime on test images and compare with PyTorch.",
        epilog="example:\n  hwnas export runs/knee --format onnx && hwnas cost --onnx runs/knee/model.onnx "
               "--profile mobile-npu", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", metavar="DIR", help="a folder written by hwnas train")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="export format (onnx)")
    p.add_argument("--images", type=int, default=64, help="test images of the onnxruntime check (default 64)")
    p.add_argument("--atol", type=float, default=1e-4, help="largest allowed |onnx - torch| of a logit (1e-4)")
    p.set_defaults(func=main)


def load_trained(folder: Path):
    """(net in eval mode on CPU, search config, train config) from hwnas train's folder."""
    import torch

    from trainables.full_train import build_network

    from trainables.state import torch_load

    missing = [n for n in ("model.pt", "config.json", "genotype.json") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not an hwnas train folder (missing {', '.join(missing)})")
    cfg = read_json(folder / "config.json")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("search"), dict) or not isinstance(cfg.get("train"), dict):
        raise ValueError(f"{folder / 'config.json'}: expected hwnas train's config ({{\"search\": {{...}}, "
                         f"\"train\": {{...}}}})")
    try:
        search, train = SearchConfig.from_dict(cfg["search"]), TrainConfig.from_dict(cfg["train"])
    except ValueError as exc:
        raise ValueError(f"{folder / 'config.json'}: {exc}") from None
    try:
        genotype = Genotype.from_dict(read_json(folder / "genotype.json"))
    except ValueError as exc:
        raise ValueError(f"{folder / 'genotype.json'}: {exc}") from None
    try:
        net = build_network(search, train, genotype)
    except ValueError as exc:
        raise ValueError(f"{folder}: the network of genotype.json and config.json cannot be built ({exc})") from None
    state = torch_load(folder / "model.pt", "trained weights")
    try:
        net.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{folder / 'model.pt'} does not fit the network of config.json: "
                         f"{' '.join(str(exc).split())[:500]}") from None
    return net.eval(), search, train


def read_json(path: Path) -> Any:
    """A JSON file's content; a one-line ValueError naming the file if it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def export_onnx(net, example, path: Path) -> None:
    """TorchScript exporter (no onnxscript needed), BN kept, batch axis dynamic."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(net, (example,), str(path), dynamo=False, opset_version=OPSET,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def check_onnx(path: Path, net, x) -> dict[str, Any]:
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


def main(args: argparse.Namespace) -> int:
    from trainables.data import load_datasets
    from trainables.full_train import data_config

    folder = Path(args.dir)
    if args.images < 1:
        raise ValueError(f"--images must be at least 1, got {args.images}")
    net, search, train = load_trained(folder)
    data = load_datasets(data_config(search, train).replace(train_size=train.train_size or 2000,
                                                            test_size=args.images), "cpu")
    x = data.test.x[:args.images]
    path = folder / "model.onnx"
    # a temporary file renamed over model.onnx (a failed export never leaves half a file); an OSError names it
    atomic_write(path, lambda tmp: export_onnx(net, x[:2], Path(tmp)))
    check = check_onnx(path, net, x)
    out = {"onnx": str(path), "opset": OPSET, **check, "atol": args.atol}
    print(json.dumps(out))
    if not check["max_abs_diff"] <= args.atol:
        raise ValueError(f"{path}: onnxruntime and PyTorch differ by {check['max_abs_diff']:.3g} (above --atol "
                         f"{args.atol:g}); the file is kept for inspection")
    log.info("exported %s: max |onnx - torch| = %.2e on %d test images", path, check["max_abs_diff"], check["images"])
    return 0
