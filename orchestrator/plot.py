"""The front as a picture: accuracy against DRAM time and against DRAM energy, every completed trial
shown, the non-dominated ones highlighted (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa


def plot_front(trials: pa.Table, out: str | Path, title: str = "", scan: pa.Table | None = None) -> Path:
    """``scan`` (scan.parquet, optional) adds a third panel: the front's hypervolume per scan round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = trials.to_pylist()
    done = [r for r in rows if r["status"] == "completed" and r["accuracy"] is not None]
    front = [r for r in done if r["is_pareto"]]
    failed = len(rows) - len(done)
    fig, axes = plt.subplots(1, 3 if scan is not None else 2, figsize=(16 if scan is not None else 11, 4.5),
                             constrained_layout=True)
    if scan is not None:
        from .compare import plot_hypervolume

        plot_hypervolume(axes[2], scan)
    for ax, key, label in ((axes[0], "dram_time_us", "DRAM time per inference (us)"),
                           (axes[1], "dram_energy_uj", "DRAM energy per inference (uJ)")):
        ax.scatter([r[key] for r in done], [r["accuracy"] for r in done], s=28, c="0.6", label="trials", zorder=2)
        pts = sorted((r[key], r["accuracy"], r) for r in front)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=70, facecolors="none", edgecolors="tab:red",
                   linewidths=2, label="Pareto front (error, time, energy)", zorder=3)
        for x, y, r in pts:
            ax.annotate(f"lt={r['lambda_time']:g} le={r['lambda_energy']:g}", (x, y), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
        ax.margins(0.08)
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8, framealpha=0.6)
    fig.suptitle((title + ": " if title else "") + f"{len(done)} completed trials, {len(front)} on the front"
                 + (f", {failed} failed" if failed else "")
                 + (f", hypervolume {scan.column('hypervolume')[-1].as_py():.4f}" if scan is not None and scan.num_rows else ""))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
