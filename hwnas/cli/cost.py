"""``hwnas cost``: the DRAM cost of one operator, or of a whole searched network, on a processor profile,
as one JSON object.

  hwnas cost --profile mobile-npu --op sep_conv_3x3 --shape 16,32,32
  hwnas cost --profile ./my-npu.toml --op factorized_reduce --shape 16,32,32 --stride 2 --c-out 32 --batch 8
  hwnas cost --genotype trial.json --profile h100 --set deploy_layers=20 deploy_channels=36 cost_batch=16 --rows
  hwnas cost --onnx model.onnx --profile mobile-npu --batch 8 --rows
  hwnas cost --list-profiles

Imports neither Ray, torch nor the cost service: the model is computed in this process. A thin layer over
``hwnas.cost``, ``hwnas.cost_onnx``, ``hwnas.op_cost`` and ``hwnas.profiles`` (``hwnas/costing.py``).
"""
from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from cost_models.profile import load_profile
from searchspace.config import parse_set
from searchspace.ops import OPS
from searchspace.schema import add_set_argument

from hwnas.costing import cost, cost_onnx, load_genotype_file, op_cost, profiles  # noqa: F401 - load_genotype_file: kept importable here

log = logging.getLogger(__name__)

_EPILOG = """\
operator mode (--op, --shape), one JSON object: dram_read_bytes, dram_write_bytes, dram_bytes (read +
write), compulsory_bytes (input + weights + output, each moved once), dram_transfers (DRAM streams),
dram_latencies (kernels + unprefetched tile waves), dram_time_us, dram_energy_uj, and the query.

network mode (--genotype FILE): FILE is a genotype JSON {"cells": [...]} or a trial result JSON holding
"genotype" and "config" (hwnas trial's output). The deployed network is costed kernel by kernel (stem,
preprocessing, edge operators, node sums, the cells' output concat, classifier): deploy_layers x
deploy_channels at deploy_image_size, each 0 = the evaluation network's (eval_layers x eval_channels, 0 =
the search's; without a config: the search defaults, layers = the genotype's cells); each searched cell
stands for the deployed cells of its segment (normal cells after the reductions repeat the nearest
searched normal cell), as the search's loss and trials.parquet count them. Re-cost it on another
processor or size with --profile and --set KEY=VALUE (search config keys: deploy_layers, deploy_channels,
deploy_image_size, cost_batch, profile, ...). --rows adds one row per kernel group (cell, role, op,
shape, bytes, latencies, time, energy). Keys: the totals above plus profile, batch, and layers,
channels, image_size of the costed (deployed) network.

model: time = bytes / bandwidth + latencies x DRAM latency. A kernel's streams (inputs, weights, output)
are in flight together, so the latency is paid once per kernel, plus once per further wave of a tiled
kernel (its two buffer halves leave no room to prefetch). Fused profiles run an operator as one kernel
(split where an intermediate spills) and a cell node as one kernel (its operators' outputs summed on
chip, written once into the cell's concat buffer); unfused ones (h100-eager) run every primitive, every
node-sum add and every torch.cat as its own kernel. Between kernels the profile's between_kernels rule
holds: round-trip (every kernel reads its inputs from DRAM and writes its output there) or resident (a
tensor stays on chip for the kernels that read it while the live set fits the buffer; what does not fit
spills, farthest next read first). energy = read x read pJ/B + write x write pJ/B + static power x time.

onnx mode (--onnx FILE --profile P [--batch N] [--rows]): any ONNX CNN graph (Conv incl. depthwise,
dilated and strided, Relu/Clip, BatchNormalization, MaxPool, AveragePool, Add, Concat, Pad,
GlobalAveragePool, Flatten, Gemm/MatMul) at batch N, grouped into kernels as the profile fuses
(cost_models/onnx_graph.py). Keys: the totals above plus params, macs, kernel_groups. An unsupported
op is an error naming it and its node. `hwnas export` writes such a file for a trained searched network.

profiles: a built-in name (see --list-profiles) or the path of a TOML file with the same fields as
cost_models/profiles/*.toml.

operators: """ + ", ".join(OPS) + """

examples:
  hwnas cost --profile mobile-npu --op sep_conv_3x3 --shape 16,32,32
  hwnas cost --profile h100-eager --op factorized_reduce --shape 48,16,16 --stride 2 --c-out 96 --batch 64
  hwnas cost --profile eyeriss --op classifier --shape 256,8,8 --c-out 10
  hwnas cost --genotype result.json --profile edge-gpu --set deploy_layers=20 deploy_channels=36 --rows
  hwnas cost --genotype result.json --profile mobile-npu --set cost_batch=32 deploy_image_size=64
  hwnas cost --onnx run/model.onnx --profile h100 --batch 8
  hwnas cost --list-profiles
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``cost`` subcommand to the ``hwnas`` CLI."""
    parser = subparsers.add_parser(
        "cost", help="DRAM bytes, time and energy of an operator or a searched network on a processor profile",
        description="DRAM traffic (bytes read/written), time and energy at inference on a processor profile: of "
                    "one operator of the registry on an input of shape (batch, C, H, W), or of a searched "
                    "network (--genotype), every kernel it runs.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", metavar="NAME_OR_FILE", help="built-in profile name or profile TOML path "
                        "(network mode: overrides the file's config)")
    parser.add_argument("--op", metavar="OP", help="operator name (see the list below)")
    parser.add_argument("--shape", metavar="C,H,W", help="input channels, height and width, e.g. 16,32,32")
    parser.add_argument("--stride", type=int, default=None, help="1 or 2 (default 1)")
    parser.add_argument("--batch", type=int, default=None,
                        help="inference batch size (default 1; network mode: sets cost_batch)")
    parser.add_argument("--c-out", type=int, default=None, dest="c_out",
                        help="output channels (default: C, as the searchable operators; e.g. 10 for the classifier)")
    parser.add_argument("--genotype", metavar="FILE", help="cost the network of a genotype or trial result JSON")
    parser.add_argument("--onnx", metavar="FILE", help="cost every kernel of an ONNX CNN graph (needs --profile)")
    add_set_argument(parser, example="deploy_layers=20 deploy_channels=36 cost_batch=4",
                     what="network mode: search config overrides")
    parser.add_argument("--rows", action="store_true",
                        help="network and onnx mode: add one row per kernel group, with the bytes it kept on "
                             "chip (onchip_bytes) and spilled to DRAM (spilled_bytes) under the profile's "
                             "between_kernels rule")
    parser.add_argument("--list-profiles", action="store_true", help="list the built-in profiles and their key numbers")
    parser.set_defaults(func=run)
    return parser


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"16,32,32"`` -> (16, 32, 32); anything else is a ValueError naming the text."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 3:
        raise ValueError(f"--shape expects C,H,W (three integers), got {text!r}")
    try:
        c, h, w = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--shape expects C,H,W (three integers), got {text!r}") from None
    return c, h, w


def _network(args: argparse.Namespace) -> dict[str, Any]:
    extra = [f"--{k.replace('_', '-')}" for k in ("op", "shape", "stride", "c_out") if getattr(args, k) is not None]
    if extra:
        raise ValueError(f"--genotype costs a whole network; {', '.join(extra)} belong to the operator mode")
    genotype, file_config = load_genotype_file(args.genotype)
    overrides = parse_set(args.sets)
    if args.batch is not None:
        overrides["cost_batch"] = args.batch
    return cost((genotype if file_config is None else {"genotype": genotype, "config": file_config}),
                args.profile, **overrides).to_dict(rows=args.rows)


def _onnx(args: argparse.Namespace) -> int:
    extra = [f"--{k.replace('_', '-')}" for k in ("op", "shape", "stride", "c_out") if getattr(args, k) is not None]
    extra += ["--set"] if args.sets else []
    if extra:
        raise ValueError(f"--onnx costs a whole graph; {', '.join(extra)} do not apply to it")
    if not args.profile:
        raise ValueError("--onnx needs --profile NAME_OR_FILE (see --list-profiles)")
    profile = load_profile(args.profile)
    out = cost_onnx(args.onnx, args.profile, 1 if args.batch is None else args.batch).to_dict(rows=args.rows)
    out.update(onnx=args.onnx, profile_source=profile.source)
    print(json.dumps(out))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list_profiles:
        print(json.dumps({"profiles": [p.summary() for p in profiles()]}, indent=2))
        return 0
    if args.genotype:
        out = _network(args)
        log.debug("hwnas cost --genotype %s: %s", args.genotype, {k: v for k, v in out.items() if k != "rows"})
        print(json.dumps(out))
        return 0
    if args.onnx:
        return _onnx(args)
    if args.sets or args.rows:
        raise ValueError("--set and --rows need --genotype FILE (network mode)")
    missing = [f"--{k.replace('_', '-')}" for k in ("profile", "op", "shape") if not getattr(args, k)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (or use --genotype FILE or --list-profiles); "
                         "see hwnas cost --help")
    shape = parse_shape(args.shape)
    profile = load_profile(args.profile)
    out = op_cost(args.op, shape, args.profile, stride=1 if args.stride is None else args.stride,
                  batch=1 if args.batch is None else args.batch, c_out=args.c_out).to_dict()
    out["profile_source"] = profile.source
    log.debug("hwnas cost %s", out)
    print(json.dumps(out))
    return 0
