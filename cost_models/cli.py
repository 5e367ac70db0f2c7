"""``hwnas cost``: the DRAM cost of one operator on one processor profile, as one JSON object.

  hwnas cost --profile mobile-npu --op sep_conv_3x3 --shape 16,32,32
  hwnas cost --profile ./my-npu.toml --op factorized_reduce --shape 16,32,32 --stride 2 --c-out 32 --batch 8
  hwnas cost --list-profiles

Imports neither Ray nor the cost service: the model is computed in this process.
"""
from __future__ import annotations

import argparse
import json
import logging

from searchspace.ops import OPS

from .profile import list_profiles, load_profile
from .traffic import op_cost

log = logging.getLogger(__name__)

_EPILOG = """\
output (one JSON object): dram_read_bytes, dram_write_bytes, dram_bytes (read + write), compulsory_bytes
(input + weights + output, each moved once), dram_transfers, dram_time_us (bytes / bandwidth + transfers x
latency), dram_energy_uj (read x read pJ/B + write x write pJ/B + static power x time), and the query.

profiles: a built-in name (see --list-profiles) or the path of a TOML file with the same fields as
cost_models/profiles/*.toml.

operators: """ + ", ".join(OPS) + """

examples:
  hwnas cost --profile mobile-npu --op sep_conv_3x3 --shape 16,32,32
  hwnas cost --profile h100-eager --op factorized_reduce --shape 48,16,16 --stride 2 --c-out 96 --batch 64
  hwnas cost --profile eyeriss --op classifier --shape 256,8,8 --c-out 10
  hwnas cost --list-profiles
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``cost`` subcommand to the ``hwnas`` CLI."""
    parser = subparsers.add_parser(
        "cost", help="DRAM bytes, time and energy of one operator on a processor profile",
        description="DRAM traffic (bytes read/written), time and energy of one operator of the registry on an "
                    "input of shape (batch, C, H, W), at inference, on a processor profile.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", metavar="NAME_OR_FILE", help="built-in profile name or profile TOML path")
    parser.add_argument("--op", metavar="OP", help="operator name (see the list below)")
    parser.add_argument("--shape", metavar="C,H,W", help="input channels, height and width, e.g. 16,32,32")
    parser.add_argument("--stride", type=int, default=1, help="1 or 2 (default 1)")
    parser.add_argument("--batch", type=int, default=1, help="inference batch size (default 1)")
    parser.add_argument("--c-out", type=int, default=None, dest="c_out",
                        help="output channels (default: C, as the searchable operators; e.g. 10 for the classifier)")
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


def run(args: argparse.Namespace) -> int:
    if args.list_profiles:
        print(json.dumps({"profiles": [p.summary() for p in list_profiles()]}, indent=2))
        return 0
    missing = [f"--{k.replace('_', '-')}" for k in ("profile", "op", "shape") if not getattr(args, k)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (or use --list-profiles); see hwnas cost --help")
    c, h, w = parse_shape(args.shape)
    profile = load_profile(args.profile)
    cost = op_cost(profile, args.op, c, h, w, stride=args.stride, batch=args.batch, c_out=args.c_out)
    out = cost.to_dict()
    out["profile_source"] = profile.source
    log.debug("hwnas cost %s", out)
    print(json.dumps(out))
    return 0
