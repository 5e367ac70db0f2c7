"""Front metrics of a scan (Ray-free): hypervolume, front gaps, and the rows of ``scan.parquet``.

Hypervolume (``hypervolume_of``): of the front in (error, dram_time_us / T0, dram_energy_uj / E0) with
the reference point ``HV_REF`` = (1, 1.1, 1.1), where T0, E0 are the mean DRAM time and energy of the
experiment's completed accuracy-only trials (lambda_time = lambda_energy = 0, no budget) on the same profile, or,
if there are none, the largest of its completed trials. The axes are "error" and "fraction of the
accuracy-only network's DRAM cost", so experiments on the same task compare (grid vs adaptive, two
profiles); the largest possible value is 1.21.

Gaps of a front are the edges of the Euclidean minimum spanning tree over its points in min-max
normalised objective space (min and max over the completed trials), longest first.

``scan.parquet`` has one row per *suggestion batch* (column ``round``): a grid scan is one batch; an
adaptive scan's coarse grid is batch 0 and every later batch is a set of lambda points its policy
proposed at once (``results/scan_policy.py``). A batch's row describes all trials of batches up to
and including it (``batch_scan_rows``), so ``hv_gain`` is what that batch added to the front.
"""
from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .dimensions import coordinate_dimensions, keys, of_kind
from .pareto import hypervolume, pareto_mask
from .seedstats import mean_points, point_stats

SCAN_FILE = "scan.parquet"
HV_REF = (1.0, 1.1, 1.1)  # reference point of the hypervolume in (error, time / T0, energy / E0)
# an accuracy-only trial has all of these 0 (or unknown): no cost weight, no budget
ACCURACY_ONLY_ZERO = keys(coordinate_dimensions())
WEIGHTS = len(of_kind("weight"))  # a scan point's values: its weights (new_points), then its budgets (new_budgets)

SCAN_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("round", pa.int64(), "suggestion batch: 0 = the coarse grid (or the whole grid scan), then one per batch "
                          "of lambda points the adaptive policy proposed at once"),
    ("scan", pa.string(), "grid | adaptive"),
    ("new_points", pa.string(), "JSON [[lambda_time, lambda_energy], ...]: the lambda points of this batch"),
    ("new_trials", pa.int64(), "trials of this batch (points x seeds)"),
    ("trials", pa.int64(), "trials of this and every earlier batch, any status"),
    ("completed", pa.int64(), "completed trials of this and every earlier batch"),
    ("front_size", pa.int64(), "points on the front over those trials"),
    ("front_size_mean", pa.int64(), "points on the front over the per-point means"),
    ("hypervolume", pa.float64(), "hypervolume of the all-trials front (reference point: docs, The scan)"),
    ("hypervolume_mean", pa.float64(), "hypervolume of the per-point-means front"),
    ("hv_gain", pa.float64(), "hypervolume - the previous batch's; null in batch 0"),
    ("largest_gap", pa.float64(), "longest minimum-spanning-tree edge of the all-trials front, min-max normalised"),
    ("largest_gap_mean", pa.float64(), "the same for the per-point-means front (what the scan fills next)"),
    ("ref_time_us", pa.float64(), "T0: DRAM time that normalises the hypervolume (null with several profiles)"),
    ("ref_energy_uj", pa.float64(), "E0: DRAM energy that normalises the hypervolume (null with several profiles)"),
    ("seconds", pa.float64(), "wall time from the batch's proposal until its last trial ended"),
    ("stop_reason", pa.string(), "on the last batch: why the scan stopped (budget, rounds, min_gain, no_point); "
                                 "else null"),
    ("new_budgets", pa.string(), "JSON [[dram_time_budget_us, dram_energy_budget_uj], ...]: the budgets of "
                                 "new_points' points, in the same order (0 = off); null when no budget is set"),
)
SCAN_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in SCAN_COLUMNS])


def completed_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    ok = []
    for r in rows:
        vals = [r.get("error"), r.get("dram_time_us"), r.get("dram_energy_uj")]
        if r.get("status") == "completed" and all(v is not None and math.isfinite(v) for v in vals):
            ok.append(r)
    return ok


def reference_costs(trials: pa.Table) -> dict[str, tuple[float, float]]:
    """{profile: (T0, E0)}: mean DRAM time / energy of the completed lambda = 0 trials (else the largest)."""
    done = completed_rows(trials.to_pylist())
    out = {}
    for prof in sorted({r.get("profile") for r in done}, key=str):
        rs = [r for r in done if r.get("profile") == prof]
        zero = [r for r in rs if not any(r.get(k) for k in ACCURACY_ONLY_ZERO)]
        if zero:
            t0 = float(np.mean([r["dram_time_us"] for r in zero]))
            e0 = float(np.mean([r["dram_energy_uj"] for r in zero]))
        else:
            t0 = max(r["dram_time_us"] for r in rs)
            e0 = max(r["dram_energy_uj"] for r in rs)
        out[prof] = (t0 if t0 > 0 else 1.0, e0 if e0 > 0 else 1.0)
    return out


def hv_points(rows: Sequence[Mapping[str, Any]], refs: Mapping[str, tuple[float, float]],
              keys: Sequence[str] = ("error", "dram_time_us", "dram_energy_uj")) -> np.ndarray:
    """(n, 3) points in hypervolume space (error, time / T0, energy / E0); NaN where unknown."""
    pts = np.full((len(rows), 3), np.nan)
    for i, r in enumerate(rows):
        ref = refs.get(r.get("profile"))
        vals = [r.get(k) for k in keys]
        if ref is None or any(v is None for v in vals):
            continue
        pts[i] = (vals[0], vals[1] / ref[0], vals[2] / ref[1])
    return pts


def hypervolume_of(trials: pa.Table, refs: Mapping[str, tuple[float, float]] | None = None) -> float:
    """Hypervolume of the completed trials' front in normalised space (module docstring), reference HV_REF."""
    refs = reference_costs(trials) if refs is None else refs
    pts = hv_points(completed_rows(trials.to_pylist()), refs)
    return hypervolume(pts, HV_REF)


def hypervolume_of_means(points: pa.Table, refs: Mapping[str, tuple[float, float]]) -> float:
    rows = [r for r in points.to_pylist() if r["completed"]]
    return hypervolume(hv_points(rows, refs, ("error_mean", "dram_time_us_mean", "dram_energy_uj_mean")), HV_REF)


def minmax_bounds(objectives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, span) per column over the finite rows; span 1 where a column is constant."""
    finite = objectives[np.all(np.isfinite(objectives), axis=1)] if len(objectives) else objectives
    if len(finite) == 0:
        return np.zeros(objectives.shape[1]), np.ones(objectives.shape[1])
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    return lo, span


def mst_edges(points: np.ndarray) -> list[tuple[float, int, int]]:
    """Edges (length, i, j) of the Euclidean minimum spanning tree over ``points``, longest first (Prim)."""
    n = len(points)
    if n < 2:
        return []
    d = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best = d[0].copy()
    parent = np.zeros(n, dtype=int)
    edges = []
    for _ in range(n - 1):
        cand = np.where(in_tree, np.inf, best)
        j = int(np.argmin(cand))
        edges.append((float(d[parent[j], j]), int(parent[j]), j))
        in_tree[j] = True
        closer = d[j] < best
        best = np.where(closer, d[j], best)
        parent = np.where(closer, j, parent)
    return sorted(edges, key=lambda e: (-e[0], e[1], e[2]))


def front_gaps(objectives: np.ndarray, lo: np.ndarray, span: np.ndarray) -> list[tuple[float, int, int]]:
    """Gaps of a front given as rows of raw objectives: MST edges in min-max normalised space."""
    return mst_edges((objectives - lo) / span)


def largest_gap(objectives: np.ndarray, lo: np.ndarray | None = None, span: np.ndarray | None = None) -> float:
    """Largest gap of the front of ``objectives`` (rows, minimised), min-max normalised by (lo, span)
    (default: over these rows). 0 with fewer than two front points."""
    objectives = np.asarray(objectives, dtype=float).reshape(-1, 3)
    if lo is None or span is None:
        lo, span = minmax_bounds(objectives)
    front = objectives[pareto_mask(objectives)]
    edges = front_gaps(front, lo, span)
    return edges[0][0] if edges else 0.0


def trial_objectives(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    done = completed_rows(rows)
    return np.asarray([[r["error"], r["dram_time_us"], r["dram_energy_uj"]] for r in done], dtype=float).reshape(-1, 3)


def scan_row(round_: int, scan: str, trials: pa.Table, points: pa.Table, new_points: Sequence[Sequence[float]],
             new_trials: int, previous_hv: float | None, seconds: float) -> dict[str, Any]:
    """The scan.parquet row of batch ``round_``, from the trials of it and every earlier batch."""
    rows = trials.to_pylist()
    refs = reference_costs(trials)
    obj = trial_objectives(rows)
    lo, span = minmax_bounds(obj)
    hv = hypervolume_of(trials, refs)
    means = mean_points(points)
    means_front = means[np.asarray(points.column("is_pareto").to_pylist(), dtype=bool)] if points.num_rows else means
    gaps_mean = front_gaps(means_front, lo, span)
    single = next(iter(refs.values())) if len(refs) == 1 else (None, None)
    return {
        "round": round_, "scan": scan,
        "new_points": json.dumps([[float(v) for v in p[:WEIGHTS]] for p in new_points]),
        "new_budgets": (json.dumps([[float(v) for v in p[WEIGHTS:]] for p in new_points])
                        if any(any(p[WEIGHTS:]) for p in new_points) else None),
        "new_trials": int(new_trials), "trials": trials.num_rows, "completed": len(obj),
        "front_size": int(sum(bool(v) for v in trials.column("is_pareto").to_pylist())),
        "front_size_mean": int(sum(bool(v) for v in points.column("is_pareto").to_pylist())),
        "hypervolume": hv, "hypervolume_mean": hypervolume_of_means(points, refs),
        "hv_gain": None if previous_hv is None else hv - previous_hv,
        "largest_gap": largest_gap(obj, lo, span), "largest_gap_mean": gaps_mean[0][0] if gaps_mean else 0.0,
        "ref_time_us": single[0], "ref_energy_uj": single[1], "seconds": float(seconds), "stop_reason": None,
    }


def scan_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    return pa.table({n: pa.array([r.get(n) for r in rows], type=t) for n, t, _ in SCAN_COLUMNS}, schema=SCAN_SCHEMA)


def conform_scan(table: pa.Table) -> pa.Table:
    if "new_budgets" not in table.column_names:  # written before budgets were a scan dimension
        table = table.append_column("new_budgets", pa.nulls(table.num_rows, pa.string()))
    missing = [n for n in SCAN_SCHEMA.names if n not in table.column_names]
    if missing:
        raise ValueError(f"not an hwnas scan table: missing columns {missing}")
    return table.select(SCAN_SCHEMA.names).cast(SCAN_SCHEMA)


def describe_round(row: Mapping[str, Any]) -> str:
    gain = "" if row.get("hv_gain") is None else f" ({row['hv_gain']:+.4f})"
    return (f"scan batch {row['round']} ({row['scan']}): {len(json.loads(row['new_points']))} lambda points, "
            f"{row['new_trials']} trials -> {row['trials']} trials ({row['completed']} completed), "
            f"front {row['front_size']} (means {row['front_size_mean']}), hypervolume {row['hypervolume']:.4f}{gain} "
            f"(means {row['hypervolume_mean']:.4f}), largest gap {row['largest_gap']:.3f} "
            f"(means {row['largest_gap_mean']:.3f}), {row['seconds']:.0f}s"
            + (f"; stop: {row['stop_reason']}" if row.get("stop_reason") else ""))


def batch_scan_rows(trials: pa.Table, batches: Sequence[Mapping[str, Any]], stop_reason: str | None) -> list[dict]:
    """scan.parquet rows of an adaptive scan, one per batch that ran a trial, in batch order.

    ``trials`` is the experiment's trials table (its ``round`` column is the batch index); each batch is a
    mapping with ``index``, ``points`` ([(lambda_time, lambda_energy), ...]) and ``seconds``. Row b
    describes the trials of batches 0..b; the last row carries ``stop_reason``."""
    rows: list[dict] = []
    prev: float | None = None
    rounds = trials.column("round")
    for batch in sorted(batches, key=lambda b: b["index"]):
        b = int(batch["index"])
        new = int(pc.sum(pc.equal(rounds, b)).as_py() or 0)
        if new == 0:  # proposed but never run (the Tuner stopped first)
            continue
        upto = trials.filter(pc.less_equal(rounds, b))
        row = scan_row(b, "adaptive", upto, point_stats(upto), batch["points"], new, prev, batch["seconds"])
        rows.append(row)
        prev = row["hypervolume"]
    if rows:
        rows[-1]["stop_reason"] = stop_reason
    return rows


def grid_scan_table(trials: pa.Table, seconds: float) -> pa.Table:
    """scan.parquet of a grid scan: one batch, every point."""
    pts = point_stats(trials)
    lam = sorted({tuple(r[d.search_key] for d in coordinate_dimensions()) for r in pts.to_pylist()})
    return scan_table([scan_row(0, "grid", trials, pts, lam, trials.num_rows, None, seconds)])
