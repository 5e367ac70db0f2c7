"""Fronts as pictures (matplotlib, Agg backend: no display needed): one experiment's accuracy against DRAM
time and energy with its front highlighted (``plot_front``), several experiments on one figure
(``plot_compare``), and the hypervolume per scan batch."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from .compare import compare_rows
from .dimensions import coordinate_dimensions, point_text
from .schema import front_network_label
from .tables import Experiment

ACCURACY_AXIS = "test accuracy (mean ± std over training seeds)"


def axis_labels(rows: list[dict]) -> tuple[str, str]:
    """The x labels of the time and energy panels, naming the network the costs are for: "DRAM energy (uJ) of
    the 20-cell x 36-ch network, 32x32 input, batch 1, on mobile-npu"."""
    net = front_network_label(rows)
    return f"DRAM time (us) of the {net}", f"DRAM energy (uJ) of the {net}"


def plot_front(trials: pa.Table, out: str | Path, title: str = "", scan: pa.Table | None = None) -> Path:
    """Accuracy against the deployed network's DRAM time and energy, every completed trial with its
    training-seed error bar (``accuracy_std``), the front highlighted. ``scan`` (scan.parquet, optional)
    adds a third panel: the front's hypervolume per scan round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = trials.to_pylist()
    done = [r for r in rows if r["status"] == "completed" and r["accuracy"] is not None]
    front = [r for r in done if r["is_pareto"]]
    failed = len(rows) - len(done)
    fig, axes = plt.subplots(1, 3 if scan is not None else 2, figsize=(16 if scan is not None else 11, 4.8),
                             constrained_layout=True)
    if scan is not None:
        plot_hypervolume(axes[2], scan)
    time_label, energy_label = axis_labels(done or rows)
    for ax, key, label in ((axes[0], "dram_time_us", time_label), (axes[1], "dram_energy_uj", energy_label)):
        ax.errorbar([r[key] for r in done], [r["accuracy"] for r in done], yerr=[accuracy_err(r) for r in done],
                    fmt="o", ms=5, color="0.6", ecolor="0.6", elinewidth=1, capsize=2, label="trials", zorder=2)
        pts = sorted(((r[key], r["accuracy"], r) for r in front), key=lambda p: (p[0], p[1]))
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[accuracy_err(p[2]) for p in pts], fmt="o",
                    ms=9, mfc="none", mec="tab:red", mew=2, ecolor="tab:red", elinewidth=1.5, capsize=3,
                    label="Pareto front (error, time, energy)", zorder=3)
        for x, y, r in pts:
            ax.annotate(point_label(r), (x, y), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
        ax.margins(0.08)
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel(ACCURACY_AXIS)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8, framealpha=0.6)
    fig.suptitle((title + ": " if title else "") + f"{len(done)} completed trials, {len(front)} on the front"
                 + (f", {failed} failed" if failed else "")
                 + (f", hypervolume {scan.column('hypervolume')[-1].as_py():.4f}" if scan is not None and scan.num_rows else "")
                 + f"\nDRAM costs of the {front_network_label(done or rows)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def accuracy_err(row: dict) -> float:
    """A point's error bar: its training-seed sample std (0 with one seed, nothing to draw)."""
    return row.get("accuracy_std") or 0.0


def point_label(row: dict) -> str:
    """A front point's scan coordinates: ``lt=0.5 le=0`` and, when set, its budgets (``T<=40`` us, ``E<=90`` uJ)."""
    return point_text(row, coordinate_dimensions(), short=True)


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
    every = [r for e in exps for r in e.trials.to_pylist() if r["status"] == "completed"]
    for ax, label in zip(axes[:2], axis_labels(every)):
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel(ACCURACY_AXIS)
        ax.margins(0.08)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=7, framealpha=0.6)
    fig.suptitle("fronts compared: " + ", ".join(e.label for e in exps))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
