"""``hwnas trial``: one full two-stage search in this process, without Ray."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from searchspace.config import PRESETS, SearchConfig, parse_set, preset

log = logging.getLogger("hwnas.trial")


def load_search_config(config_file: str | None, preset_name: str | None, sets: list[str] | None) -> SearchConfig:
    """Preset, then file, then ``--set`` overrides; validated once, here at the edge."""
    data: dict[str, Any] = preset(preset_name) if preset_name else {}
    if config_file:
        data.update(_read_mapping(config_file))
    data.update(parse_set(sets))
    return SearchConfig.from_dict(data)


def _read_mapping(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = p.read_text()
    if p.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"config file {path}: expected a mapping of keys to values")
    return data.get("search", data) if isinstance(data.get("search"), dict) else data


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trial", help="run one two-stage search in this process (no Ray)",
                       description="Run one full two-stage clustered supernet search (stage 1, stage 2, target "
                                   "network training and DRAM costing) in this process, without Ray, and write "
                                   "its result record as JSON.")
    p.add_argument("--config", metavar="FILE", help="YAML or JSON file of search config keys (a 'search:' "
                                                     "section is used if present)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="named starting config (smoke: ~1 min on 2 CPU cores)")
    p.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE",
                   help="override one config key, e.g. --set lambda_time=0.5 (repeatable)")
    p.add_argument("--out", metavar="FILE", help="write the result record as JSON here (default: stdout)")
    p.add_argument("--checkpoint", metavar="FILE", help="checkpoint file: resumed from if it exists, "
                                                         "rewritten every epoch")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cost_models import derived_network_cost, edge_cost_table
    from trainables import run_search

    config = load_search_config(args.config, args.preset, args.sets)
    log.info("trial: dataset=%s profile=%s lambda_time=%g lambda_energy=%g seed=%d", config.dataset,
             config.profile, config.lambda_time, config.lambda_energy, config.seed)
    result = run_search(config, edge_cost_table(config), checkpoint=args.checkpoint,
                        network_cost=lambda g: derived_network_cost(g, config))
    record = result.to_record()
    text = json.dumps(record, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
        log.info("wrote %s", args.out)
    else:
        print(text)
    log.info("accuracy %.4f, supernet %.4f, DRAM %.1f us / %.2f uJ, %d params, %.1f s", result.accuracy,
             result.supernet_accuracy, result.dram_time_us, result.dram_energy_uj, result.params, result.seconds)
    return 0
