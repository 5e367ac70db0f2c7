"""The adaptive scan end to end on a local Ray (2 CPUs), tiny synthetic trials: `hwnas search --scan
adaptive` runs a coarse grid and one gap-filling batch in one Tuner (one Tune experiment in one folder),
the resume hook (Tuner.restore) brings the searcher's batches back without rerunning anything, a grid
experiment gets its one-batch scan table, and `hwnas pareto --compare` / `--plot` read both. Run
inside shared/tools/loopback-only."""
from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

from hwnas import cli
from results.schema import SCHEMA
from results.scan_metrics import SCAN_SCHEMA
from results.seedstats import POINT_SCHEMA

ray = pytest.importorskip("ray")

TINY = ["dataset=synthetic", "train_size=64", "val_size=32", "test_size=32", "batch_size=16", "eval_batch_size=32",
        "layers=3", "channels=4", "max_epochs=2", "patience=1", "warmup_epochs=0", "eval_epochs=1", "augment=false",
        "seeds=[0]", "lambda_time=[0,1]"]
ADAPTIVE = ["scan_init=1", "scan_budget=3", "scan_rounds=3", "scan_batch=1", "scan_min_gain=0"]


def test_adaptive_scan_resume_and_compare(ray_local, tmp_path, capsys):
    # coarse grid lambda_time in {0, 1}, then one round: the geometric mean of 0 (two octaves below 1) and 1
    args = ["search", "--preset", "smoke", "--storage", str(tmp_path), "--name", "adaptive", "--scan", "adaptive",
            "--set", *TINY, *ADAPTIVE]
    assert cli.main(args) == 0
    exp_dir = tmp_path / "adaptive"
    trials = pq.read_table(exp_dir / "trials.parquet")
    assert trials.schema.equals(SCHEMA)
    rows = sorted(trials.to_pylist(), key=lambda r: (r["round"], r["lambda_time"]))
    assert [(r["round"], r["lambda_time"]) for r in rows] == [(0, 0.0), (0, 1.0), (1, 0.5)]
    assert {r["status"] for r in rows} == {"completed"}
    scan = pq.read_table(exp_dir / "scan.parquet")
    assert scan.schema.equals(SCAN_SCHEMA)
    s = scan.to_pylist()
    assert [r["round"] for r in s] == [0, 1] and [r["trials"] for r in s] == [2, 3]
    assert json.loads(s[1]["new_points"]) == [[0.5, 0.0]] and s[1]["stop_reason"] == "budget"
    assert 0 < s[0]["hypervolume"] <= s[1]["hypervolume"] <= 1.21 and s[1]["hv_gain"] >= 0
    assert s[0]["ref_time_us"] == pytest.approx(rows[0]["dram_time_us"])  # T0: the lambda = 0 trial
    points = pq.read_table(exp_dir / "points.parquet")
    assert points.schema.equals(POINT_SCHEMA) and points.num_rows == 3
    names = os.listdir(exp_dir)  # one Tune experiment: its state, its searcher's state, no round folders
    assert any(n.startswith("experiment_state") for n in names) and any(n.startswith("searcher-state") for n in names)
    assert not any(n.startswith("round-") for n in names)
    assert len([n for n in names if n.startswith("search_trainable")]) == 3
    out = capsys.readouterr()
    assert "scan batch 1 (adaptive)" in out.out  # the summary lists the batches with their hypervolume

    # resume (Tuner.restore) of the finished scan: the searcher's state comes back from the folder, nothing
    # runs again, the batches (round column, scan.parquet) are the same
    from orchestrator.experiment import resume_experiment
    from results.experiment_config import load_experiment_config

    exp = load_experiment_config(preset="smoke", storage=str(tmp_path), name="adaptive",
                                 sets=[*TINY, *ADAPTIVE, "scan=adaptive"])
    summary = resume_experiment(exp)
    again = sorted(pq.read_table(exp_dir / "trials.parquet").to_pylist(), key=lambda r: (r["round"], r["lambda_time"]))
    assert [(r["trial_id"], r["round"], r["status"]) for r in again] == [(r["trial_id"], r["round"], r["status"])
                                                                        for r in rows]
    assert summary.scan.to_pylist()[-1]["stop_reason"] == "budget" and summary.scan.num_rows == 2
    assert [r["hypervolume"] for r in summary.scan.to_pylist()] == pytest.approx([r["hypervolume"] for r in s])

    # a grid experiment records its one batch too; --compare reads both into one table and one plot
    assert cli.main(["search", "--preset", "smoke", "--storage", str(tmp_path), "--name", "grid", "--set", *TINY]) == 0
    grid_scan = pq.read_table(tmp_path / "grid" / "scan.parquet").to_pylist()
    assert [(r["round"], r["scan"], r["trials"]) for r in grid_scan] == [(0, "grid", 2)]
    capsys.readouterr()
    png = tmp_path / "compare.png"
    assert cli.main(["pareto", str(exp_dir), "--compare", str(tmp_path / "grid"), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "hypervolume" in text and "adaptive" in text and "grid" in text and png.stat().st_size > 10_000
    assert cli.main(["pareto", str(exp_dir), "--compare", str(tmp_path / "grid"), "--format", "json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert [(r["scan"], r["trials"]) for r in table] == [("adaptive", 3), ("grid", 2)]
    # the grid's two points are the adaptive scan's coarse grid: same seeds, same config, same trials
    assert table[0]["hypervolume"] >= table[1]["hypervolume"] - 1e-9
    assert cli.main(["pareto", str(exp_dir), "--plot", str(tmp_path / "front.png")]) == 0
    assert (tmp_path / "front.png").stat().st_size > 10_000
