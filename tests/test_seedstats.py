"""Per-lambda-point seed statistics (points.parquet): mean, sample std, best of N, and the front over the
means next to the front over all trials."""
from __future__ import annotations

import json

import numpy as np
import pytest

from results.schema import make_row, rows_to_table
from results.seedstats import POINT_SCHEMA, describe_points, point_stats


def row(tid, lt, seed, acc, t, e, status="completed", round_=0):
    cfg = dict(seed=seed, lambda_time=lt, lambda_energy=0.0, profile="mobile-npu", dataset="synthetic")
    if status != "completed":
        r = make_row("x", tid, cfg, None, status=status, error_message="RuntimeError: boom")
    else:
        r = make_row("x", tid, cfg, dict(accuracy=acc, dram_time_us=t, dram_energy_uj=e, genotype={}), status=status)
    r["round"] = round_
    return r


def test_mean_std_best_per_point():
    trials = rows_to_table([
        row("a0", 0.0, 0, 0.90, 100, 50), row("a1", 0.0, 1, 0.80, 110, 60), row("a2", 0.0, 2, 0.85, 90, 55),
        row("b0", 1.0, 0, 0.70, 40, 20, round_=1), row("b1", 1.0, 1, 0, 0, 0, status="failed", round_=1),
        row("c0", 4.0, 0, 0.50, 60, 30, round_=2),  # dominated by b on average
    ])
    pts = point_stats(trials)
    assert pts.schema.equals(POINT_SCHEMA)
    by = {r["lambda_time"]: r for r in pts.to_pylist()}
    a = by[0.0]
    assert (a["trials"], a["completed"], json.loads(a["seeds"])) == (3, 3, [0, 1, 2])
    assert a["accuracy_mean"] == pytest.approx(0.85) and a["error_mean"] == pytest.approx(0.15)
    assert a["accuracy_std"] == pytest.approx(np.std([0.9, 0.8, 0.85], ddof=1))
    assert a["accuracy_best"] == 0.90 and a["best_trial_id"] == "a0"
    assert a["dram_time_us_mean"] == pytest.approx(100) and a["dram_time_us_best"] == 90
    assert a["dram_energy_uj_std"] == pytest.approx(5.0) and a["dram_energy_uj_best"] == 50
    b = by[1.0]
    assert (b["trials"], b["completed"], b["round"]) == (2, 1, 1)
    assert b["accuracy_std"] is None and b["dram_time_us_std"] is None  # one completed trial: no spread
    assert [by[k]["is_pareto"] for k in (0.0, 1.0, 4.0)] == [True, True, False]
    # the all-trials front can differ: c0 is not on it either, a0/a2 are
    assert by[0.0]["any_trial_on_front"] and not by[4.0]["any_trial_on_front"]
    text = "\n".join(describe_points(pts))
    assert "accuracy 0.8500 +- 0.0500 (best 0.9000)" in text


def test_point_without_completed_trials():
    pts = point_stats(rows_to_table([row("f", 2.0, 0, 0, 0, 0, status="failed"), row("g", 0.0, 0, 0.9, 1, 1)]))
    by = {r["lambda_time"]: r for r in pts.to_pylist()}
    assert by[2.0]["completed"] == 0 and by[2.0]["accuracy_mean"] is None and not by[2.0]["is_pareto"]
    assert by[0.0]["is_pareto"]
    assert "no completed trial" in "\n".join(describe_points(pts))


def test_empty_table():
    pts = point_stats(rows_to_table([]))
    assert pts.num_rows == 0 and pts.schema.equals(POINT_SCHEMA)
