"""The results table: one row per trial, a fixed pyarrow schema (documented in the docs, Reference "Results tables").

Rows come from two places: the final record a completed trial reports (``SearchResult.to_record()``,
nested values as JSON strings) and, for a trial that failed, only its configuration and its error text.
Failed trials are never dropped: they keep their status and ``error_message``, with null metrics.
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping

import pyarrow as pa

from .dimensions import DIMENSIONS, columns, of_kind

# status values of the ``status`` column
TRIALS_FILE = "trials.parquet"  # every trial of an experiment, one row each
PARETO_FILE = "pareto.parquet"  # the non-dominated trials (minimise error, dram_time_us, dram_energy_uj)

COMPLETED = "completed"  # the search ran to its end and reported a full record
FAILED = "failed"  # the trial raised (after Tune's retries); error_message says why
INCOMPLETE = "incomplete"  # stopped without a final record and without an error (e.g. interrupted)

ARROW_TYPES = {int: pa.int64(), float: pa.float64(), str: pa.string()}  # a scan dimension's value type


def dimension_columns(*kinds: str) -> tuple[tuple[str, pa.DataType, str], ...]:
    """The trials table's columns of the scan dimensions of ``kinds`` (``results.dimensions``)."""
    return columns(of_kind(*kinds), ARROW_TYPES.__getitem__, lambda d: d.meaning)


# (name, type, meaning): the single source of the schema and of the docs' table
COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("experiment", pa.string(), "experiment name (`--name`)"),
    ("trial_id", pa.string(), "Ray Tune trial id, unique within the experiment"),
    *dimension_columns("seed", "profile"),
    ("dataset", pa.string(), "fashion | cifar10 | synthetic"),
    *dimension_columns("weight"),
    ("status", pa.string(), "completed | failed | incomplete"),
    ("accuracy", pa.float64(), "test accuracy of the derived target network (0..1): the mean over its eval_seeds "
     "training seeds; null unless completed"),
    ("accuracy_std", pa.float64(), "sample std (ddof=1) of the test accuracy over the trial's eval_seeds training "
     "seeds (one genotype, trained from scratch under each); null with one training seed or unless completed"),
    ("error", pa.float64(), "classification error = 1 - accuracy, the minimised objective; null unless completed"),
    ("error_message", pa.string(), "why the trial failed (exception type and message); null unless failed"),
    ("supernet_accuracy", pa.float64(), "validation accuracy of the stage-2 supernet at the end of the search"),
    ("dram_time_us", pa.float64(), "DRAM access time of the deployed network's inference on the profile (the derived "
     "genotype at deploy_layers x deploy_channels x deploy_image_size, batch cost_batch), microseconds"),
    ("dram_energy_uj", pa.float64(), "DRAM access energy of the same inference, microjoules"),
    ("dram_bytes", pa.int64(), "bytes moved to and from DRAM by the same inference"),
    ("params", pa.int64(), "parameters of the derived network"),
    ("flops", pa.int64(), "multiply-accumulate FLOPs of one inference of the derived network"),
    ("skip_count", pa.int64(), "skip_connect operators in the derived genotype (all cells)"),
    ("search_seconds", pa.float64(), "wall time of the whole trial (both stages and the evaluation), seconds"),
    ("stage1_epochs", pa.int64(), "epochs stage 1 ran until convergence (or max_epochs)"),
    ("stage2_epochs", pa.int64(), "epochs stage 2 ran"),
    ("groups", pa.string(), "JSON: operator groups, group name -> list of operator names"),
    ("stage1_choice", pa.string(), "JSON: stage-1 winning group per cell, per edge"),
    ("genotype", pa.string(), "JSON: derived genotype, {\"cells\": [{\"reduction\", \"edges\": [[op, from, to]]}]}"),
    ("config", pa.string(), "JSON: the trial's full SearchConfig (reproduce it with `hwnas trial`)"),
    ("is_pareto", pa.bool_(), "on the non-dominated front of (error, dram_time_us, dram_energy_uj) over completed rows"),
    ("round", pa.int64(), "scan suggestion batch that ran the trial: 0 = the grid, or the adaptive scan's coarse grid"),
    *dimension_columns("budget"),
    ("budget_penalty", pa.string(), "form of the budget penalty: hinge / absolute; null when the config is not known"),
    ("budget_weight", pa.float64(), "weight of the budget penalty in the search loss"),
    ("deploy_layers", pa.int64(), "cells of the deployed network the dram_* columns are for (resolved: never 0); "
     "null when the trial's config is not known"),
    ("deploy_channels", pa.int64(), "initial channels of the same deployed network"),
    ("deploy_image_size", pa.int64(), "input image side (pixels) of the same deployed network"),
)
DEPLOY_COLUMNS = ("deploy_layers", "deploy_channels", "deploy_image_size")
# a config holding these is a whole search config (written by SearchConfig.to_dict), not a scan point
_GEOMETRY_KEYS = ("dataset", "layers", "channels", "eval_layers", "eval_channels")

SCHEMA = pa.schema([pa.field(name, typ) for name, typ, _ in COLUMNS])
_JSON_COLUMNS = ("groups", "stage1_choice", "genotype")


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value  # already JSON (nested values travel through Tune as JSON strings)
    return json.dumps(value, separators=(",", ":"))


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    f = _float(value)
    if f is None or not math.isfinite(f):
        return None
    return int(round(f))


def _deployed(record: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, int | None]:
    """The deployed geometry of a row: the record's (``SearchResult.to_record``), else resolved from the
    record's or the trial's full config (records written before the deploy_* keys; failed trials); null
    when neither is a whole search config (a scan point holds only the swept keys)."""
    if all(record.get(k) is not None for k in DEPLOY_COLUMNS):
        return {k: _int(record[k]) for k in DEPLOY_COLUMNS}
    import dataclasses

    from searchspace.config import SearchConfig
    from searchspace.layout import deploy_record

    known = {f.name for f in dataclasses.fields(SearchConfig)}
    for source in (record.get("config"), config):
        try:
            source = json.loads(source) if isinstance(source, str) else source
        except ValueError:
            continue
        if isinstance(source, Mapping) and all(k in source for k in _GEOMETRY_KEYS):
            try:  # a whole config, validated: one the layout cannot build has no deployed network
                return deploy_record(SearchConfig.from_dict({k: v for k, v in source.items() if k in known}))
            except ValueError:
                continue
    return dict.fromkeys(DEPLOY_COLUMNS)


def network_label(layers: int | None, channels: int | None, image_size: int | None, batch: int | None,
                  profile: str | None) -> str:
    """The network the dram_* figures are for, in words: "20-cell x 36-ch network, 32x32 input, batch 1, on
    mobile-npu" (what the front's table, plot and summary lines name); an unknown geometry (tables from
    before the deploy_* columns) or profile is said so."""
    if None in (layers, channels, image_size):
        net = "network of unknown geometry"
    else:
        net = f"{layers}-cell x {channels}-ch network, {image_size}x{image_size} input"
    return f"{net}, batch {'?' if batch is None else batch}, on {profile or 'an unknown profile'}"


def _config_of(row: Mapping[str, Any]) -> Mapping[str, Any]:
    config = row.get("config")
    try:
        config = json.loads(config) if isinstance(config, str) else config
    except ValueError:
        return {}
    return config if isinstance(config, Mapping) else {}


def row_network_label(row: Mapping[str, Any]) -> str:
    """``network_label`` of a trials.parquet row (its deploy_* columns, profile and its config's cost_batch),
    or of any row with those columns and a ``cost_batch`` of its own (``hwnas pareto --recost``'s)."""
    # the key's default: configs from before it cost batch 1
    batch = row["cost_batch"] if row.get("cost_batch") is not None else _config_of(row).get("cost_batch", 1)
    return network_label(row.get("deploy_layers"), row.get("deploy_channels"), row.get("deploy_image_size"),
                         _int(batch), row.get("profile"))


def config_network_label(config: Mapping[str, Any]) -> str:
    """``network_label`` of a trial's search config (dict): its deployed geometry resolved (0 = eval = search)."""
    geo = _deployed({}, config)
    return network_label(geo["deploy_layers"], geo["deploy_channels"], geo["deploy_image_size"],
                         _int(config.get("cost_batch", 1)), config.get("profile"))


def front_network_label(rows: Iterable[Mapping[str, Any]]) -> str:
    """What the rows' dram_* figures are for: one network's label, or each distinct one joined by "; "."""
    labels = list(dict.fromkeys(row_network_label(r) for r in rows))
    return "; ".join(labels) if labels else "no trials"


def make_row(experiment: str, trial_id: str, config: Mapping[str, Any], record: Mapping[str, Any] | None = None,
             status: str | None = None, error_message: str | None = None) -> dict[str, Any]:
    """One trial as a row. ``config`` is the trial's search config (dict), ``record`` its final record."""
    rec = dict(record or {})
    if status is None:
        status = COMPLETED if record else (FAILED if error_message else INCOMPLETE)
    completed = status == COMPLETED

    def pick(key: str) -> Any:
        return rec.get(key, config.get(key))

    accuracy = _float(rec.get("accuracy")) if completed else None
    row: dict[str, Any] = {
        "experiment": experiment,
        "trial_id": str(trial_id),
        # the scan dimensions; a budget a scan point or a config lacks was off (its fill: 0 = off)
        **{d.search_key: d.cell(pick(d.search_key)) for d in DIMENSIONS},
        "dataset": None if pick("dataset") is None else str(pick("dataset")),
        "status": status,
        "accuracy": accuracy,
        "error": None if accuracy is None else 1.0 - accuracy,
        "accuracy_std": _float(rec.get("accuracy_std")) if completed else None,
        "error_message": error_message if status != COMPLETED else None,
        "supernet_accuracy": _float(rec.get("supernet_accuracy")),
        "dram_time_us": _float(rec.get("dram_time_us")) if completed else None,
        "dram_energy_uj": _float(rec.get("dram_energy_uj")) if completed else None,
        "dram_bytes": _int(rec.get("dram_bytes")),
        "params": _int(rec.get("params")),
        "flops": _int(rec.get("flops")),
        "skip_count": _int(rec.get("skip_count")),
        "search_seconds": _float(rec.get("seconds", rec.get("search_seconds"))),
        "stage1_epochs": _int(rec.get("stage1_epochs")),
        "stage2_epochs": _int(rec.get("stage2_epochs")),
        "config": _json(dict(config)) if config else None,
        "is_pareto": False,
        "round": 0,
        **_deployed(rec, config),
        "budget_penalty": None if pick("budget_penalty") is None else str(pick("budget_penalty")),
        "budget_weight": _float(pick("budget_weight")),
    }
    for key in _JSON_COLUMNS:
        row[key] = _json(rec.get(key))
    return row


def rows_to_table(rows: Iterable[Mapping[str, Any]], with_pareto: bool = True) -> pa.Table:
    """Rows -> a table with exactly ``SCHEMA``, sorted by trial_id; ``is_pareto`` recomputed."""
    rows = sorted((dict(r) for r in rows), key=lambda r: (str(r.get("trial_id")),))
    columns = {name: [r.get(name) for r in rows] for name, _, _ in COLUMNS}
    columns["is_pareto"] = [bool(v) for v in columns["is_pareto"]]
    table = pa.table({name: pa.array(columns[name], type=typ) for name, typ, _ in COLUMNS}, schema=SCHEMA)
    if with_pareto:
        from .pareto import pareto_mask

        mask = pareto_mask(table)
        table = table.set_column(table.schema.get_field_index("is_pareto"), "is_pareto", pa.array(mask, pa.bool_()))
    return table


def front_of(table: pa.Table) -> pa.Table:
    """The non-dominated rows, sorted by error (then DRAM time, DRAM energy, trial id)."""
    front = table.filter(table.column("is_pareto"))
    if front.num_rows == 0:
        return front
    return front.sort_by([("error", "ascending"), ("dram_time_us", "ascending"),
                          ("dram_energy_uj", "ascending"), ("trial_id", "ascending")])


def conform(table: pa.Table) -> pa.Table:
    """A table read back from Parquet, checked against ``SCHEMA`` (columns in order, types cast)."""
    if "round" not in table.column_names:  # tables written before the adaptive scan: all one grid round
        table = table.append_column("round", pa.array([0] * table.num_rows, pa.int64()))
    for name in DEPLOY_COLUMNS:  # tables written before the deployed geometry was a column: unknown
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.int64()))
    for d in DIMENSIONS:  # a dimension added later (budgets): its fill, e.g. every trial ran without a budget
        if d.search_key not in table.column_names and d.fill is not None:
            table = table.append_column(d.search_key, pa.array([d.fill] * table.num_rows, ARROW_TYPES[d.value_type]))
    for name, typ in (("budget_penalty", pa.string()), ("budget_weight", pa.float64()),
                      ("accuracy_std", pa.float64())):  # accuracy_std: before eval_seeds, one training seed
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, typ))
    missing = [name for name in SCHEMA.names if name not in table.column_names]
    if missing:
        raise ValueError(f"not an hwnas results table: missing columns {missing}")
    return table.select(SCHEMA.names).cast(SCHEMA)


def schema_markdown() -> str:
    """The docs' results table (Reference, "Results tables"), generated from ``COLUMNS`` so the two never
    drift apart."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    for name, typ, meaning in COLUMNS:
        lines.append(f"| `{name}` | {typ} | {meaning.replace('|', '/')} |")
    return "\n".join(lines)
