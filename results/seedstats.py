"""Seed statistics: one row per point (its profile, lambda_time, lambda_energy, dram_time_budget_us,
dram_energy_budget_uj: every scan dimension but the seed, ``results.dimensions``) over its seeds.

The field reports best-of-N; users also want the spread. For every point this gives, over its completed
trials, the mean, the sample standard deviation (null with one trial) and the best of accuracy and of
both DRAM costs (best = highest accuracy, lowest cost), and the front over the per-point *means*
(``is_pareto``), next to whether any single trial of the point is on the all-trials front. Written as
``<storage>/<name>/points.parquet`` beside ``trials.parquet``.
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa

from .dimensions import ScanDimension, columns, of_kind, point_dimensions, point_text
from .pareto import pareto_mask
from .schema import ARROW_TYPES

POINTS_FILE = "points.parquet"

def point_columns(*kinds: str) -> tuple[tuple[str, pa.DataType, str], ...]:
    """points.parquet's columns of the scan dimensions of ``kinds``."""
    return columns(of_kind(*kinds), ARROW_TYPES.__getitem__, lambda d: d.point_meaning)


# (name, type, meaning): points.parquet, documented in the docs (Reference "Results tables", The scan)
POINT_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("experiment", pa.string(), "experiment name"),
    *point_columns("profile", "weight"),
    ("round", pa.int64(), "scan suggestion batch that first ran the point (0 = coarse grid, or the grid scan)"),
    ("trials", pa.int64(), "trials of the point, any status"),
    ("completed", pa.int64(), "completed trials (the statistics are over these)"),
    ("seeds", pa.string(), "JSON list of the completed trials' seeds"),
    ("accuracy_mean", pa.float64(), "mean test accuracy"),
    ("accuracy_std", pa.float64(), "sample std (ddof=1) of the accuracy; null with one trial"),
    ("accuracy_best", pa.float64(), "best of N: highest accuracy"),
    ("error_mean", pa.float64(), "1 - accuracy_mean"),
    ("dram_time_us_mean", pa.float64(), "mean DRAM time of the derived networks, us"),
    ("dram_time_us_std", pa.float64(), "its sample std; null with one trial"),
    ("dram_time_us_best", pa.float64(), "best of N: lowest DRAM time"),
    ("dram_energy_uj_mean", pa.float64(), "mean DRAM energy, uJ"),
    ("dram_energy_uj_std", pa.float64(), "its sample std; null with one trial"),
    ("dram_energy_uj_best", pa.float64(), "best of N: lowest DRAM energy"),
    ("best_trial_id", pa.string(), "the most accurate trial of the point"),
    ("is_pareto", pa.bool_(), "on the front over the per-point means (error_mean, dram_time_us_mean, dram_energy_uj_mean)"),
    ("any_trial_on_front", pa.bool_(), "some trial of the point is on the all-trials front (trials.is_pareto)"),
    *point_columns("budget"),
)
POINT_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in POINT_COLUMNS])
MEAN_OBJECTIVES = ("error_mean", "dram_time_us_mean", "dram_energy_uj_mean")


def _std(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) >= 2 else None


def point_key(row: dict[str, Any]) -> tuple:
    """The values of ``point_dimensions()``: (profile, lambda_time, lambda_energy, dram_time_budget_us,
    dram_energy_budget_uj); an unknown number is 0 (off)."""
    return tuple(key_value(d, row.get(d.search_key)) for d in point_dimensions())


def key_value(dim: ScanDimension, value: Any) -> Any:
    """A point coordinate as the key holds it: a number as a float (unknown = 0, off), a category as is."""
    return value if dim.value_type is str else float(value or 0.0)


def key_order(key: tuple) -> tuple:
    """How points sort: categories as text (an unknown one too), then the numbers."""
    return tuple(str(v) if d.value_type is str else v for d, v in zip(point_dimensions(), key))


def point_stats(trials: pa.Table) -> pa.Table:
    """``trials.parquet`` -> ``points.parquet``: one row per lambda point, sorted by profile, then lambdas."""
    rows = trials.to_pylist()
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(point_key(r), []).append(r)
    out = []
    for key in sorted(groups, key=key_order):
        rs = groups[key]
        done = [r for r in rs if r.get("status") == "completed" and r.get("accuracy") is not None
                and all(r.get(c) is not None and math.isfinite(r[c]) for c in ("dram_time_us", "dram_energy_uj"))]
        acc = [r["accuracy"] for r in done]
        tim = [r["dram_time_us"] for r in done]
        ene = [r["dram_energy_uj"] for r in done]
        rounds = [r.get("round") for r in rs if r.get("round") is not None]
        best = max(done, key=lambda r: (r["accuracy"], -r["dram_time_us"]), default=None)
        out.append({
            "experiment": rs[0].get("experiment"), **dict(zip(keys_of_points(), key)),
            "round": min(rounds) if rounds else None, "trials": len(rs), "completed": len(done),
            "seeds": json.dumps(sorted(int(r["seed"]) for r in done if r.get("seed") is not None)),
            "accuracy_mean": float(np.mean(acc)) if done else None, "accuracy_std": _std(acc),
            "accuracy_best": max(acc) if done else None,
            "error_mean": 1.0 - float(np.mean(acc)) if done else None,
            "dram_time_us_mean": float(np.mean(tim)) if done else None, "dram_time_us_std": _std(tim),
            "dram_time_us_best": min(tim) if done else None,
            "dram_energy_uj_mean": float(np.mean(ene)) if done else None, "dram_energy_uj_std": _std(ene),
            "dram_energy_uj_best": min(ene) if done else None,
            "best_trial_id": best["trial_id"] if best else None,
            "is_pareto": False,
            "any_trial_on_front": any(bool(r.get("is_pareto")) for r in rs),
        })
    table = pa.table({n: pa.array([r[n] for r in out], type=t) for n, t, _ in POINT_COLUMNS}, schema=POINT_SCHEMA)
    points = mean_points(table)
    mask = pareto_mask(points, valid=np.asarray(table.column("completed").to_pylist(), dtype=int) > 0) \
        if table.num_rows else np.zeros(0, dtype=bool)
    return table.set_column(table.schema.get_field_index("is_pareto"), "is_pareto", pa.array(mask, pa.bool_()))


def keys_of_points() -> tuple[str, ...]:
    return tuple(d.search_key for d in point_dimensions())


def mean_points(points: pa.Table) -> np.ndarray:
    """(n, 3) objectives of the per-point means (NaN where a point has no completed trial)."""
    cols = [np.asarray([np.nan if v is None else v for v in points.column(c).to_pylist()], dtype=float)
            for c in MEAN_OBJECTIVES]
    return np.column_stack(cols) if points.num_rows else np.zeros((0, 3))


def conform_points(table: pa.Table) -> pa.Table:
    for d in point_dimensions():  # a dimension added later (budgets): its fill, e.g. every point had no budget
        if d.search_key not in table.column_names and d.fill is not None:
            table = table.append_column(d.search_key, pa.array([d.fill] * table.num_rows, ARROW_TYPES[d.value_type]))
    missing = [n for n in POINT_SCHEMA.names if n not in table.column_names]
    if missing:
        raise ValueError(f"not an hwnas points table: missing columns {missing}")
    return table.select(POINT_SCHEMA.names).cast(POINT_SCHEMA)


def describe_points(points: pa.Table) -> list[str]:
    """Lines 'lambda point: accuracy mean +- std (best of N), DRAM time ..., energy ...' for the summary."""
    lines = []
    for r in points.to_pylist():
        head = f"{point_text(r, of_kind('weight', 'budget'))} ({r['completed']}/{r['trials']} seeds)"
        if not r["completed"]:
            lines.append(f"    {head}: no completed trial")
            continue

        def ms(m, s, b, fmt):
            return f"{m:{fmt}}" + (f" +- {s:{fmt}}" if s is not None else "") + f" (best {b:{fmt}})"

        lines.append(f"    {head}{' *' if r['is_pareto'] else ''}: accuracy "
                     f"{ms(r['accuracy_mean'], r['accuracy_std'], r['accuracy_best'], '.4f')}, dram_time_us "
                     f"{ms(r['dram_time_us_mean'], r['dram_time_us_std'], r['dram_time_us_best'], '.4g')}, dram_energy_uj "
                     f"{ms(r['dram_energy_uj_mean'], r['dram_energy_uj_std'], r['dram_energy_uj_best'], '.4g')}")
    return lines
