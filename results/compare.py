"""``hwnas pareto URI --compare URI2 ...``: several experiments' fronts on one plot and one table.

Per experiment: trials, lambda points, the size and hypervolume of the front over all trials and over
the per-point means (hypervolume as in ``results.scan_metrics``: each experiment normalised by its own
accuracy-only DRAM cost, reference point (1, 1.1, 1.1)), and the largest gap of its all-trials front,
min-max normalised over the completed trials of *all* compared experiments so the gaps compare.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .scan_metrics import (hypervolume_of, hypervolume_of_means, largest_gap, minmax_bounds,
                           reference_costs, trial_objectives)
from .seedstats import point_stats
from .tables import Experiment


def unique_labels(exps: Sequence[Experiment]) -> None:
    """Experiment names as labels; full URIs where two names collide."""
    names = [e.label for e in exps]
    for e in exps:
        if names.count(e.label) > 1:
            e.label = e.uri


COMPARE_COLUMNS = ("experiment", "scan", "trials", "completed", "points", "front", "front_means", "hypervolume",
                   "hypervolume_means", "largest_gap")


def compare_rows(exps: Sequence[Experiment]) -> list[dict[str, Any]]:
    all_obj = np.vstack([trial_objectives(e.trials.to_pylist()) for e in exps]) if exps else np.zeros((0, 3))
    lo, span = minmax_bounds(all_obj)
    out = []
    for e in exps:
        refs = reference_costs(e.trials)
        pts = point_stats(e.trials)
        obj = trial_objectives(e.trials.to_pylist())
        scan = e.scan.column("scan")[0].as_py() if e.scan is not None and e.scan.num_rows else "-"
        out.append({
            "experiment": e.label, "scan": scan, "trials": e.trials.num_rows, "completed": len(obj),
            "points": pts.num_rows, "front": int(sum(bool(v) for v in e.trials.column("is_pareto").to_pylist())),
            "front_means": int(sum(bool(v) for v in pts.column("is_pareto").to_pylist())),
            "hypervolume": hypervolume_of(e.trials, refs), "hypervolume_means": hypervolume_of_means(pts, refs),
            "largest_gap": largest_gap(obj, lo, span),
        })
    return out


def render_compare(rows: Sequence[dict[str, Any]]) -> str:
    def cell(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    cells = [[cell(r[c]) for c in COMPARE_COLUMNS] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(COMPARE_COLUMNS)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(COMPARE_COLUMNS, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"
