"""``hwnas pareto URI --compare URI2 ...``: several experiments' fronts on one plot and one table.

Per experiment: trials, lambda points, the size and hypervolume of the front over all trials and over
the per-point means (hypervolume as in ``orchestrator.scan``: each experiment normalised by its own
accuracy-only DRAM cost, reference point (1, 1.1, 1.1)), and the largest gap of its all-trials front,
min-max normalised over the completed trials of *all* compared experiments so the gaps compare.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from .scan import (SCAN_FILE, conform_scan, hypervolume_of, hypervolume_of_means, largest_gap, minmax_bounds,
                   reference_costs, trial_objectives)
from .seedstats import point_stats


@dataclass
class Experiment:
    label: str
    uri: str
    trials: pa.Table
    scan: pa.Table | None  # scan.parquet, None for results written before it existed


def load_scan(uri: str, endpoint_url: str | None = None) -> pa.Table | None:
    """The experiment's scan.parquet, or None where it has none."""
    from .storage import Storage

    storage = Storage.from_uri(uri, endpoint_url)
    return conform_scan(storage.read_table(SCAN_FILE)) if storage.exists(SCAN_FILE) else None


def load_experiment(uri: str, endpoint_url: str | None = None) -> Experiment:
    from .pareto_cmd import load

    trials, _ = load(uri, endpoint_url)
    return Experiment(uri.rstrip("/").rsplit("/", 1)[-1], uri, trials, load_scan(uri, endpoint_url))


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


def plot_hypervolume(ax, scan: pa.Table, label: str = "", color: Any = None) -> None:
    """Hypervolume of the front (all trials, and per-point means dashed) against the scan round."""
    rows = scan.to_pylist()
    rounds = [r["round"] for r in rows]
    ax.plot(rounds, [r["hypervolume"] for r in rows], "o-", color=color,
            label=(label + ": " if label else "") + "all trials")
    ax.plot(rounds, [r["hypervolume_mean"] for r in rows], "s--", color=color, alpha=0.7,
            label=(label + ": " if label else "") + "per-point means")
    for r in rows:
        ax.annotate(f"{r['trials']}", (r["round"], r["hypervolume"]), textcoords="offset points", xytext=(3, -10),
                    fontsize=7, color=color)
    ax.set_xlabel("scan round (labels: trials so far)")
    ax.set_ylabel("front hypervolume (ref. 1, 1.1, 1.1)")
    ax.set_xticks(sorted(set(rounds)))
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=7, framealpha=0.6)


def plot_compare(exps: Sequence[Experiment], out: str | Path) -> Path:
    """Every experiment's trials (faint) and front (joined markers) against DRAM time and energy, and the
    hypervolume per round of those with a scan table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = compare_rows(exps)
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (e, row) in enumerate(zip(exps, rows)):
        c = colors[k % len(colors)]
        done = [r for r in e.trials.to_pylist() if r["status"] == "completed" and r["accuracy"] is not None]
        front = [r for r in done if r["is_pareto"]]
        for ax, key in ((axes[0], "dram_time_us"), (axes[1], "dram_energy_uj")):
            ax.scatter([r[key] for r in done], [r["accuracy"] for r in done], s=14, color=c, alpha=0.3, zorder=2)
            pts = sorted((r[key], r["accuracy"]) for r in front)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=c, ms=7, lw=1.2, zorder=3,
                    label=f"{e.label} ({row['scan']}): front {row['front']}/{row['trials']}, HV {row['hypervolume']:.4f}")
        if e.scan is not None and e.scan.num_rows:
            plot_hypervolume(axes[2], e.scan, e.label, c)
    for ax, label in ((axes[0], "DRAM time per inference (us)"), (axes[1], "DRAM energy per inference (uJ)")):
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy")
        ax.margins(0.08)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=7, framealpha=0.6)
    fig.suptitle("fronts compared: " + ", ".join(e.label for e in exps))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
