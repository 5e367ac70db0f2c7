"""``hwnas trial``: one full two-stage search in this process, without Ray."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Mapping

from searchspace.config import PRESETS, ConfigError, SearchConfig, parse_set, preset
from searchspace.files import atomic_write_text, check_writable, load_mapping, reason
from searchspace.schema import add_set_argument
from trainables.threads import set_trial_threads, trial_threads, usable_cores

log = logging.getLogger("hwnas.trial")


def load_search_config(config_file: str | None, preset_name: str | None, sets: list[str] | None) -> SearchConfig:
    """Preset, then file, then ``--set`` overrides; validated once, here at the edge.

    ``--preset`` wins over a ``preset:`` key in the file (as in ``hwnas search``).
    """
    file_data = search_keys_of_file(config_file) if config_file else {}
    preset_name = preset_name or file_data.pop("preset", None)
    file_data.pop("preset", None)
    data: dict[str, Any] = preset(str(preset_name)) if preset_name else {}
    data.update(file_data)
    data.update(parse_set(sets))
    return SearchConfig.from_dict(data)


def search_keys_of_file(path: str) -> dict[str, Any]:
    """The search keys of a config file, plus its ``preset:`` if any.

    A flat file of search keys, or an experiment file (``hwnas search --config``): its ``search:`` section,
    ``search.KEY`` keys and plain search keys. Keys only an experiment has (``name``, ``seeds``,
    ``profiles``, ``scan``, ...) are an error naming them: one trial runs one point, so they cannot apply.
    """
    from results.experiment_config import EXPERIMENT_KEYS, SEARCH_KEYS  # pyarrow via storage: only when a file is read

    source = f"config file {path!r}"
    raw = load_mapping(path)
    out: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if key in out and out[key] != value:
            raise ConfigError(f"{source}: search key {key!r} given twice ({out[key]!r} and {value!r})")
        out[key] = value

    section = raw.get("search", {})
    if not isinstance(section, Mapping):
        raise ConfigError(f"{source}: config key 'search' = {section!r}: expected a mapping of search keys")
    experiment_only = [str(k) for k in raw if k in EXPERIMENT_KEYS and k not in SEARCH_KEYS]
    if experiment_only:
        raise ConfigError(f"{source}: experiment keys {', '.join(experiment_only)} are for `hwnas search`; "
                          "`hwnas trial` runs one point and reads only search keys (top level or under 'search:')")
    for key, value in raw.items():
        key = str(key)
        if key != "search":
            put(key[len("search."):] if key.startswith("search.") else key, value)
    for key, value in section.items():
        put(str(key), value)
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trial", help="run one two-stage search in this process (no Ray)",
                       description="Run one full two-stage clustered supernet search (stage 1, stage 2, target "
                                   "network training and DRAM costing) in this process, without Ray, and write "
                                   "its result record as JSON.")
    p.add_argument("--config", metavar="FILE", help="YAML or JSON file: search config keys, flat or under "
                                                     "'search:' (an experiment file's experiment keys are an "
                                                     "error); a 'preset:' key picks a starting point")
    p.add_argument("--preset", choices=sorted(PRESETS), help="named starting config (smoke: ~1 min on 2 CPU cores)")
    add_set_argument(p, example="lambda_time=2 profile=eyeriss")
    p.add_argument("--out", metavar="FILE", help="write the result record as JSON here (default: stdout); checked "
                                                  "before the search, and printed to stdout if the write still fails")
    p.add_argument("--checkpoint", metavar="FILE", help="checkpoint file: resumed from if it exists, "
                                                         "rewritten every epoch")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="torch threads of the search (default 0: every core this process may use)")
    p.set_defaults(func=run)


def check_out(path: str, flag: str = "--out") -> None:
    """Fail before the search (one line, exit 2) when ``flag``'s file cannot be written: a folder, a parent
    that cannot be created, or one where no file can be created (``searchspace.files.check_writable``)."""
    check_writable(path, flag)


def run(args: argparse.Namespace) -> int:
    config = load_search_config(args.config, args.preset, args.sets)  # before torch: bad input fails fast
    if args.threads < 0:
        raise ValueError(f"--threads {args.threads}: give a positive number of threads, or 0 for every core")
    if args.out:
        check_out(args.out)
    if args.checkpoint:  # written after every epoch: an unwritable place fails now, not after the first one
        check_out(args.checkpoint, "--checkpoint")
    threads = set_trial_threads(trial_threads(args.threads or usable_cores(), usable_cores()))
    from cost_models import derived_network_cost, search_cost_table
    from trainables import run_search

    log.info("trial: dataset=%s profile=%s lambda_time=%g lambda_energy=%g seed=%d, %d threads", config.dataset,
             config.profile, config.lambda_time, config.lambda_energy, config.seed, threads)
    result = run_search(config, search_cost_table(config), checkpoint=args.checkpoint,
                        network_cost=lambda g: derived_network_cost(g, config))
    record = result.to_record()
    text = json.dumps(record, indent=2)
    log.info("accuracy %.4f, supernet %.4f, DRAM %.1f us / %.2f uJ, %d params, %.1f s", result.accuracy,
             result.supernet_accuracy, result.dram_time_us, result.dram_energy_uj, result.params, result.seconds)
    if not args.out:
        print(text)
        return 0
    try:
        atomic_write_text(args.out, text + "\n")
    except OSError as exc:  # the search is done: never lose its result
        print(text)
        print(f"hwnas trial: error: cannot write --out {args.out!r} ({reason(exc)}); the record is "
              "printed above", file=sys.stderr)
        return 3
    log.info("wrote %s", args.out)
    return 0
