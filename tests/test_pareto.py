"""The Pareto front against brute force on random tables (ties, duplicates, NaN, failed rows), and the
hypervolume against a grid count. No Ray."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow as pa
import pytest

from results.pareto import hypervolume, pareto_mask
from results.schema import COMPLETED, FAILED, front_of, make_row, rows_to_table


def brute_front(rows: list[dict]) -> set[int]:
    """The definition, literally: eligible = completed with finite objectives; i is on the front unless
    some eligible j is <= in every objective and < in one."""
    keys = ("error", "dram_time_us", "dram_energy_uj")

    def eligible(r):
        return r["status"] == COMPLETED and all(r[k] is not None and math.isfinite(r[k]) for k in keys)

    out = set()
    for i, a in enumerate(rows):
        if not eligible(a):
            continue
        dominated = False
        for j, b in enumerate(rows):
            if j != i and eligible(b) and all(b[k] <= a[k] for k in keys) and any(b[k] < a[k] for k in keys):
                dominated = True
                break
        if not dominated:
            out.add(i)
    return out


def random_rows(rng: np.random.Generator, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        kind = rng.choice(["ok", "ok", "ok", "ok", "failed", "nan", "dup"])
        if kind == "dup" and rows and rows[-1]["status"] == COMPLETED:
            rec = {k: rows[-1][k] for k in ("dram_time_us", "dram_energy_uj")}
            rec["accuracy"] = rows[-1]["accuracy"]
        else:
            # coarse values: many ties in single objectives
            rec = {"accuracy": float(rng.integers(0, 6)) / 10, "dram_time_us": float(rng.integers(1, 6)),
                   "dram_energy_uj": float(rng.integers(1, 6))}
            if kind == "nan":
                rec[rng.choice(["accuracy", "dram_time_us", "dram_energy_uj"])] = float("nan")
        rec["genotype"] = {"cells": []}
        cfg = {"seed": i, "lambda_time": 0.0, "lambda_energy": 0.0, "profile": "p", "dataset": "synthetic"}
        if kind == "failed":
            rows.append(make_row("e", f"t{i:04d}", cfg, None, status=FAILED, error_message="RuntimeError: boom"))
        else:
            rows.append(make_row("e", f"t{i:04d}", cfg, rec))
    return rows


@pytest.mark.parametrize("seed", range(40))
def test_pareto_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, int(rng.integers(0, 40)))
    table = rows_to_table(rows)  # sorted by trial_id: same order as rows (ids are zero-padded)
    expected = brute_front(table.to_pylist())
    got = set(np.flatnonzero(table.column("is_pareto").to_numpy(zero_copy_only=False)))
    assert got == expected
    assert set(np.flatnonzero(pareto_mask(table))) == expected


def test_duplicates_ties_nan_failed_explicitly():
    pts = np.array([
        [0.1, 1.0, 1.0],  # 0 on the front
        [0.1, 1.0, 1.0],  # 1 exact duplicate of 0: both stay
        [0.1, 1.0, 2.0],  # 2 ties 0 in two objectives, worse in one: dominated
        [0.05, 3.0, 3.0],  # 3 best error: front
        [np.nan, 0.1, 0.1],  # 4 NaN: never on the front, dominates nothing
        [0.0, 0.0, 0.0],  # 5 would dominate everything, but is excluded by valid (a failed row)
    ])
    valid = np.array([True, True, True, True, True, False])
    assert pareto_mask(pts, valid=valid).tolist() == [True, True, False, True, False, False]
    assert pareto_mask(pts).tolist() == [False, False, False, False, False, True]


def test_failed_rows_stay_but_never_on_front():
    cfg = {"seed": 0, "lambda_time": 0.5, "lambda_energy": 0.0, "profile": "p", "dataset": "fashion"}
    ok = make_row("e", "a", cfg, {"accuracy": 0.8, "dram_time_us": 2.0, "dram_energy_uj": 3.0, "genotype": {}})
    bad = make_row("e", "b", cfg, None, status=FAILED, error_message="ValueError: no data")
    table = rows_to_table([ok, bad])
    assert table.num_rows == 2
    by_id = {r["trial_id"]: r for r in table.to_pylist()}
    assert by_id["a"]["is_pareto"] and by_id["a"]["error"] == pytest.approx(0.2)
    assert by_id["b"]["status"] == "failed" and not by_id["b"]["is_pareto"]
    assert by_id["b"]["error_message"] == "ValueError: no data" and by_id["b"]["error"] is None
    assert by_id["b"]["lambda_time"] == 0.5
    assert front_of(table).column("trial_id").to_pylist() == ["a"]


def test_empty_and_all_failed():
    assert pareto_mask(np.zeros((0, 3))).tolist() == []
    assert rows_to_table([]).num_rows == 0
    cfg = {"seed": 0}
    t = rows_to_table([make_row("e", "x", cfg, None, status=FAILED, error_message="x")])
    assert t.column("is_pareto").to_pylist() == [False]
    assert front_of(t).num_rows == 0


def _grid_hv(points: np.ndarray, ref: np.ndarray, steps: int) -> float:
    """Hypervolume by counting cell centres of a regular grid over [min, ref] (exact for grid-aligned points)."""
    lo = np.zeros(len(ref))
    axes = [lo[d] + (np.arange(steps) + 0.5) * (ref[d] - lo[d]) / steps for d in range(len(ref))]
    cell = np.prod((ref - lo) / steps)
    count = 0
    for c in itertools.product(*axes):
        c = np.array(c)
        if np.any(np.all(points <= c, axis=1)):
            count += 1
    return count * cell


@pytest.mark.parametrize("dim,seed", [(1, 0), (2, 1), (2, 2), (3, 3), (3, 4)])
def test_hypervolume_against_grid_count(dim, seed):
    rng = np.random.default_rng(seed)
    steps = 10 if dim == 3 else 40
    pts = rng.integers(0, steps, size=(12, dim)).astype(float) / steps  # grid-aligned: the count is exact
    ref = np.ones(dim)
    assert hypervolume(pts, ref) == pytest.approx(_grid_hv(pts, ref, steps), rel=1e-9, abs=1e-12)


def test_hypervolume_edge_cases():
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0
    assert hypervolume([[2.0, 0.0]], [1, 1]) == 0.0  # outside the reference box
    assert hypervolume([[np.nan, 0.0], [0.5, 0.5]], [1, 1]) == pytest.approx(0.25)
    assert hypervolume([[0.5, 0.5], [0.5, 0.5]], [1, 1]) == pytest.approx(0.25)  # duplicates count once
    assert hypervolume([[0.0, 0.5], [0.5, 0.0]], [1, 1]) == pytest.approx(0.75)
