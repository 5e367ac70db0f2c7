"""Cost budgets end to end on a local Ray: `hwnas search --preset smoke --set dram_time_budget_us=[a,b]`
runs one trial per budget and writes both budgets in trials.parquet and points.parquet. Run inside
shared/tools/loopback-only."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from hwnas import cli
from results.schema import SCHEMA

ray = pytest.importorskip("ray")

TINY = ["dataset=synthetic", "train_size=64", "val_size=32", "test_size=32", "batch_size=16", "eval_batch_size=32",
        "layers=3", "channels=4", "max_epochs=2", "patience=1", "warmup_epochs=0", "eval_epochs=1", "augment=false",
        "seeds=[0]", "lambda_time=[0]"]


def test_smoke_search_over_two_budgets(ray_local, tmp_path):
    args = ["search", "--preset", "smoke", "--storage", str(tmp_path), "--name", "budgets",
            "--set", *TINY, "dram_time_budget_us=[5,50]"]
    assert cli.main(args) == 0
    trials = pq.read_table(tmp_path / "budgets" / "trials.parquet")
    assert trials.schema.equals(SCHEMA)
    rows = sorted(trials.to_pylist(), key=lambda r: r["dram_time_budget_us"])
    assert [r["dram_time_budget_us"] for r in rows] == [5.0, 50.0]
    assert {r["status"] for r in rows} == {"completed"}
    assert {r["budget_penalty"] for r in rows} == {"hinge"} and {r["dram_energy_budget_uj"] for r in rows} == {0.0}
    points = pq.read_table(tmp_path / "budgets" / "points.parquet").to_pylist()
    assert sorted(p["dram_time_budget_us"] for p in points) == [5.0, 50.0]
