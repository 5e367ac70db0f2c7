"""The ``hwnas`` command. Each subcommand lives in the module that owns it and registers itself here:

  hwnas trial   one search in this process, no Ray            (hwnas.cli.trial)
  hwnas cost    DRAM cost of one operator on a profile         (hwnas.cli.cost)
  hwnas search  a Ray Tune experiment over seeds x lambdas     (hwnas.cli.search)
  hwnas pareto  read, print and plot an experiment's front     (hwnas.cli.pareto)
  hwnas submit  hwnas search (or train) as a Ray job           (hwnas.cli.submit)
  hwnas train   a front's point trained at full size           (hwnas.cli.train)
  hwnas export  a trained network to ONNX, onnxruntime-checked (hwnas.cli.export)

Each command is a thin layer over the Python API (``hwnas.search``, ``hwnas.load``, ``hwnas.cost``, ...).
Errors are one line on stderr, never a traceback (``-v`` logs it): an ``hwnas.HwnasError`` exits with its
``exit_code`` (``InputError``: bad input, 2; ``SaveError``: results not written, 3; ``hwnas.errors``);
the code underneath keeps the same codes: a ``ValueError``, a missing or unreadable file or an unreachable
address 2, any other ``OSError`` or Arrow error (a write that failed, a storage that went away mid-run) 3.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from searchspace.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_NOT_SAVED, HwnasError

# (subcommand module, attribute) pairs; imported lazily so `hwnas cost` never pays for Ray or torch.
_COMMANDS = {
    "trial": "hwnas.cli.trial",
    "cost": "hwnas.cli.cost",
    "search": "hwnas.cli.search",
    "pareto": "hwnas.cli.pareto",
    "submit": "hwnas.cli.submit",
    "train": "hwnas.cli.train",
    "export": "hwnas.cli.export",
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
    if not args.verbose:  # boto's "Found credentials in environment variables", once per client
        for name in ("botocore", "boto3"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM before anything could be saved (hwnas search: no trial ran)
        logging.getLogger("hwnas").debug("interrupted", exc_info=True)
        print(f"hwnas {args.command}: interrupted{f' by {exc}' if str(exc) else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except HwnasError as exc:  # the API's typed errors: their own exit code
        return _error(args.command, exc, exc.exit_code)
    except (ValueError, FileNotFoundError, PermissionError, ConnectionError) as exc:
        # bad input: one clear line, no traceback (-v shows it)
        return _error(args.command, exc, EXIT_BAD_INPUT)
    except Exception as exc:
        if isinstance(exc, OSError) or _is_arrow_error(exc):
            return _error(args.command, exc, EXIT_IO)
        raise


# the exit codes (searchspace.errors; docs: Reference, "Errors and exit codes"): 2 bad input before anything ran
# (the config, a file, the storage, the address), 3 an I/O or Arrow error after that, 130 SIGINT/SIGTERM
# before there was anything to save (128 + SIGINT, as shells report it)
EXIT_IO = EXIT_NOT_SAVED


def _is_arrow_error(exc: BaseException) -> bool:
    pa = sys.modules.get("pyarrow")  # loaded by whatever raised it; `hwnas cost` never imports it
    return pa is not None and isinstance(exc, pa.ArrowException)


def _error(command: str, exc: BaseException, code: int) -> int:
    logging.getLogger("hwnas").debug("error", exc_info=True)
    text = " ".join(str(exc).split()) or type(exc).__name__
    print(f"hwnas {command}: error: {text}", file=sys.stderr)
    return code

