"""``hwnas export DIR --format onnx``: the network ``hwnas train`` wrote into DIR as ``DIR/model.onnx``.

Opset ``OPSET`` (fixed), a dynamic batch axis (input ``input`` (batch, C, H, W), output ``logits``
(batch, classes)), exported with torch's TorchScript exporter with BatchNormalization kept as nodes (the
cost model folds BN as the profile says). The file is then loaded with onnxruntime and its outputs
compared with PyTorch's on a batch of test images: the largest absolute difference is printed, above
``--atol`` it is an error. ``hwnas cost --onnx DIR/model.onnx --profile P`` costs it. A thin layer over
``hwnas.export`` (``hwnas/deploy.py``).
"""
from __future__ import annotations

import argparse
import json

from hwnas.deploy import OPSET, check_onnx, export_onnx, load_trained, read_json  # noqa: F401 - kept importable here


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


def main(args: argparse.Namespace) -> int:
    """``hwnas export``: ``hwnas.export`` with the flags; what it measured as one JSON line (also when the
    check fails, before the error line)."""
    from hwnas.deploy import export
    from hwnas.errors import ExportCheckError

    try:
        result = export(args.dir, args.format, images=args.images, atol=args.atol)
    except ExportCheckError as exc:
        print(json.dumps(exc.result.to_dict()))
        raise
    print(json.dumps(result.to_dict()))
    return 0
