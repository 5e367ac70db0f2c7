"""Seed statistics: one row per point (profile, lambda_time, lambda_energy, dram_time_budget_us,
dram_energy_budget_uj) over its seeds.

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

from .pareto import pareto_mask

POINTS_FILE = "points.parquet"

# (name, type, meaning): points.parquet, documented in README ("Adaptive lambda scan and seed statistics")
POINT_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("experiment", pa.string(), "experiment name"),
    ("profile", pa.string(), "processor profile"),
    ("lambda_time", pa.float64(), "weight of the DRAM time term"),
    ("lambda_energy", pa.float64(), "weight of the DRAM energy term"),
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
    ("dram_time_budget_us", pa.float64(), "DRAM time budget of the point, us (0 = off)"),
    ("dram_energy_budget_uj", pa.float64(), "DRAM energy budget of the point, uJ (0 = off)"),
)
POINT_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in POINT_COLUMNS])
MEAN_OBJECTIVES = ("error_mean", "dram_time_us_mean", "dram_energy_uj_mean")


def _std(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) >= 2 else None


def point_key(row: dict[str, Any]) -> tuple:
    """(profile, lambda_time, lambda_energy, dram_time_budget_us, dram_energy_budget_uj); unknown = 0 (off)."""
    return (row.get("profile"), float(row.get("lambda_time") or 0.0), float(row.get("lambda_energy") or 0.0),
            float(row.get("dram_time_budget_us") or 0.0), float(row.get("dram_energy_budget_uj") or 0.0))


def point_stats(trials: pa.Table) -> pa.Table:
    """``trials.parquet`` -> ``points.parquet``: one row per lambda point, sorted by profile, then lambdas."""
    rows = trials.to_pylist()
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(point_key(r), []).append(r)
    out = []
    for key in sorted(groups, key=lambda k: (str(k[0]), *k[1:])):
        rs = groups[key]
        done = [r for r in rs if r.get("status") == "completed" and r.get("accuracy") is not None
                and all(r.get(c) is not None and math.isfinite(r[c]) for c in ("dram_time_us", "dram_energy_uj"))]
        acc = [r["accuracy"] for r in done]
        tim = [r["dram_time_us"] for r in done]
        ene = [r["dram_energy_uj"] for r in done]
        rounds = [r.get("round") for r in rs if r.get("round") is not None]
        best = max(done, key=lambda r: (r["accuracy"], -r["dram_time_us"]), default=None)
        out.append({
            "experiment": rs[0].get("experiment"), "profile": key[0], "lambda_time": key[1], "lambda_energy": key[2],
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
            "dram_time_budget_us": key[3], "dram_energy_budget_uj": key[4],
        })
    table = pa.table({n: pa.array([r[n] for r in out], type=t) for n, t, _ in POINT_COLUMNS}, schema=POINT_SCHEMA)
    points = mean_points(table)
    mask = pareto_mask(points, valid=np.asarray(table.column("completed").to_pylist(), dtype=int) > 0) \
        if table.num_rows else np.zeros(0, dtype=bool)
    return table.set_column(table.schema.get_field_index("is_pareto"), "is_pareto", pa.array(mask, pa.bool_()))


def mean_points(points: pa.Table) -> np.ndarray:
    """(n, 3) objectives of the per-point means (NaN where a point has no completed trial)."""
    cols = [np.asarray([np.nan if v is None else v for v in points.column(c).to_pylist()], dtype=float)
            for c in MEAN_OBJECTIVES]
    return np.column_stack(cols) if points.num_rows else np.zeros((0, 3))


def conform_points(table: pa.Table) -> pa.Table:
    for name in ("dram_time_budget_us", "dram_energy_budget_uj"):  # written before budgets: every point had none
        if name not in table.column_names:
            table = table.append_column(name, pa.array([0.0] * table.num_rows, pa.float64()))
    missing = [n for n in POINT_SCHEMA.names if n not in table.column_names]
    if missing:
        raise ValueError(f"not an hwnas points table: missing columns {missing}")
    return table.select(POINT_SCHEMA.names).cast(POINT_SCHEMA)


def describe_points(points: pa.Table) -> list[str]:
    """Lines 'lambda point: accuracy mean +- std (best of N), DRAM time ..., energy ...' for the summary."""
    lines = []
    for r in points.to_pylist():
        budgets = "".join(f" {k}={r[k]:g}" for k in ("dram_time_budget_us", "dram_energy_budget_uj") if r.get(k))
        head = (f"lambda_time={r['lambda_time']:g} lambda_energy={r['lambda_energy']:g}{budgets} "
                f"({r['completed']}/{r['trials']} seeds)")
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
