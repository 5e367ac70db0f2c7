"""Non-dominated sets and hypervolume, all objectives minimised.

``pareto_mask`` is the definition the results use: a completed row with finite objectives is on the
front unless another such row is no worse in every objective and strictly better in at least one.
Consequences, all deliberate: NaN/null/inf rows and failed rows are never on the front and never
dominate anything; exact duplicates do not dominate each other, so both stay; a row that ties another
in some objectives and is worse in one is dominated.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

OBJECTIVES: tuple[str, ...] = ("error", "dram_time_us", "dram_energy_uj")


def objective_matrix(table: pa.Table, objectives: Sequence[str] = OBJECTIVES) -> tuple[np.ndarray, np.ndarray]:
    """(n, k) float matrix of the objectives (nulls -> NaN) and the mask of rows eligible for the front."""
    cols = []
    for name in objectives:
        col = pc.fill_null(table.column(name).cast(pa.float64()), float("nan"))
        cols.append(np.asarray(col.to_numpy(), dtype=float))
    points = np.column_stack(cols) if cols else np.zeros((table.num_rows, 0))
    eligible = np.ones(table.num_rows, dtype=bool)
    if "status" in table.column_names:
        eligible &= np.asarray(pc.fill_null(pc.equal(table.column("status"), "completed"), False).to_numpy(zero_copy_only=False), dtype=bool)
    return points, eligible


def pareto_mask(data: pa.Table | np.ndarray | Sequence[Sequence[float]], valid: np.ndarray | None = None,
                objectives: Sequence[str] = OBJECTIVES, block: int = 1024) -> np.ndarray:
    """Boolean mask of the non-dominated rows.

    ``data`` is a results table (objectives by name; only ``status == "completed"`` rows count) or an
    (n, k) array of points; ``valid`` optionally excludes more rows.
    """
    if isinstance(data, pa.Table):
        points, eligible = objective_matrix(data, objectives)
    else:
        points = np.asarray(data, dtype=float)
        if points.ndim == 1:
            points = points.reshape(-1, 1) if points.size else points.reshape(0, 1)
        eligible = np.ones(len(points), dtype=bool)
    if valid is not None:
        eligible &= np.asarray(valid, dtype=bool)
    ok = eligible & np.all(np.isfinite(points), axis=1)
    idx = np.flatnonzero(ok)
    mask = np.zeros(len(points), dtype=bool)
    if idx.size == 0:
        return mask
    p = points[idx]
    dominated = np.zeros(len(p), dtype=bool)
    for start in range(0, len(p), block):  # blocks keep memory at block * n * k
        q = p[start:start + block]  # candidates being tested
        no_worse = np.all(p[:, None, :] <= q[None, :, :], axis=2)  # [j, i]: p_j <= q_i everywhere
        better = np.any(p[:, None, :] < q[None, :, :], axis=2)  # [j, i]: p_j < q_i somewhere
        dominated[start:start + block] = np.any(no_worse & better, axis=0)
    mask[idx] = ~dominated
    return mask


def hypervolume(points: np.ndarray | Sequence[Sequence[float]], ref: Sequence[float]) -> float:
    """Volume dominated by ``points`` (minimisation) and bounded by the reference point ``ref``.

    Points that are not strictly better than ``ref`` in every objective, or are not finite, contribute
    nothing. Exact for any dimension (slicing on the last objective); cheap for the few dozen points
    of a lambda scan.
    """
    ref_arr = np.asarray(ref, dtype=float).reshape(-1)
    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        return 0.0
    pts = pts.reshape(-1, ref_arr.size)
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref_arr, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[pareto_mask(pts)]
    return float(_hv(np.unique(pts, axis=0), ref_arr))


def _hv(p: np.ndarray, ref: np.ndarray) -> float:
    d = p.shape[1]
    if len(p) == 0:
        return 0.0
    if d == 1:
        return float(ref[0] - p[:, 0].min())
    if d == 2:
        order = np.lexsort((p[:, 1], p[:, 0]))  # by x, then y
        area, best_y = 0.0, ref[1]
        for x, y in p[order]:
            if y < best_y:
                area += (ref[0] - x) * (best_y - y)
                best_y = y
        return float(area)
    order = np.argsort(p[:, -1], kind="stable")
    p = p[order]
    volume = 0.0
    for i in range(len(p)):
        upper = p[i + 1, -1] if i + 1 < len(p) else ref[-1]
        depth = upper - p[i, -1]
        if depth > 0:
            slab = p[: i + 1, :-1]
            volume += depth * _hv(slab[pareto_mask(slab)], ref[:-1])
    return volume
