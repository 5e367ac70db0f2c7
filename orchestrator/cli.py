"""The ``hwnas`` command. Each subcommand lives in the module that owns it and registers itself here:

  hwnas trial   one search in this process, no Ray            (orchestrator.trial_cmd)
  hwnas cost    DRAM cost of one operator on a profile         (cost_models.cli)
  hwnas search  a Ray Tune experiment over seeds x lambdas     (orchestrator.search_cmd)
  hwnas pareto  read, print and plot an experiment's front     (orchestrator.pareto_cmd)
  hwnas submit  hwnas search as a Ray job on a cluster         (orchestrator.submit_cmd)
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# (subcommand module, attribute) pairs; imported lazily so `hwnas cost` never pays for Ray or torch.
_COMMANDS = {
    "trial": "orchestrator.trial_cmd",
    "cost": "cost_models.cli",
    "search": "orchestrator.search_cmd",
    "pareto": "orchestrator.pareto_cmd",
    "submit": "orchestrator.submit_cmd",
}


def version() -> str:
    """The installed hwnas version (pyproject.toml), or "unknown" when run from a bare source tree."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("hwnas")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwnas", description="Hardware-aware NAS: accuracy / DRAM-cost Pareto fronts on Ray.")
    parser.add_argument("--version", action="version", version=f"hwnas {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and Ray's own console lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in _COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue  # subcommand not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, PermissionError, ConnectionError) as exc:
        # bad input: one clear line, no traceback (-v shows it)
        logging.getLogger("hwnas").debug("error", exc_info=True)
        print(f"hwnas {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
