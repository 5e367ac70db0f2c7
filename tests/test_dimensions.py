"""The scan dimensions are declared once (``results/dimensions.py``): the grid, the Tune param space, the
rows, the points, the front and the texts follow the registry, and a dimension added there alone shows up
in all of them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from results.dimensions import DIMENSIONS, coordinate_dimensions, keys, of_kind, point_dimensions, point_text
from results.experiment_config import TRIAL_KEYS, ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]


def test_the_registry_holds_the_six_dimensions_in_their_order():
    assert TRIAL_KEYS == {"seed": "seeds", "lambda_time": "lambda_time", "lambda_energy": "lambda_energy",
                          "dram_time_budget_us": "dram_time_budget_us",
                          "dram_energy_budget_uj": "dram_energy_budget_uj", "profile": "profiles"}
    assert keys(point_dimensions()) == ("profile", "lambda_time", "lambda_energy", "dram_time_budget_us",
                                        "dram_energy_budget_uj")
    assert keys(coordinate_dimensions()) == ("lambda_time", "lambda_energy", "dram_time_budget_us",
                                             "dram_energy_budget_uj")
    assert keys(of_kind("seed", "profile", "weight")) == ("seed", "profile", "lambda_time", "lambda_energy")


def test_texts_name_a_budget_only_when_it_is_set():
    row = {"seed": 1, "lambda_time": 0.5, "lambda_energy": 0.0, "dram_time_budget_us": 40.0,
           "dram_energy_budget_uj": 0.0, "profile": "eyeriss"}
    assert point_text(row, DIMENSIONS, numbers="raw") == ("seed=1 lambda_time=0.5 lambda_energy=0.0 "
                                                          "dram_time_budget_us=40.0 profile=eyeriss")
    assert point_text(row, coordinate_dimensions(), short=True) == "lt=0.5 le=0 T<=40"
    assert point_text({**row, "dram_time_budget_us": None}, of_kind("seed", "weight", "budget")) == \
        "seed=1 lambda_time=0.5 lambda_energy=0"


def test_every_dimension_is_an_experiment_key_and_a_grid_axis():
    exp = ExperimentConfig.from_dict({"seeds": [0, 1], "lambda_time": [0, 2], "profiles": ["eyeriss", "h100"]})
    points = exp.grid_points()
    assert len(points) == 8 and all(list(p) == list(TRIAL_KEYS) for p in points)
    assert {p["profile"] for p in points} == {"eyeriss", "h100"} and {p["seed"] for p in points} == {0, 1}
    assert exp.values(DIMENSIONS[-1]) == ("eyeriss", "h100")


# A new dimension, added to the registry before anything else reads it: a weight of the loss (beta-DARTS's
# final penalty weight), a search key that was never a scan dimension.
ADDED = r'''
import json
import results.dimensions as dims

dims.DIMENSIONS += (dims.ScanDimension(
    "beta_decay_weight", "beta_decay_weights", "weight", float, (), "scan dimension: beta-decay weights",
    "final weight of the beta-decay penalty", "final weight of the beta-decay penalty", bounds={"ge": 0},
    label="bd="),)

from hwnas.cli.pareto import TABLE_COLUMNS
from orchestrator.scan_strategy import GridScan
from results.experiment_config import EXPERIMENT_KEYS, ExperimentConfig
from results.plot import point_label
from results.schema import SCHEMA, front_of, make_row, rows_to_table
from results.seedstats import POINT_SCHEMA, point_stats

exp = ExperimentConfig.from_dict({"lambda_time": [0, 2], "beta_decay_weights": [0.5, 4], "search": {"layers": 3}})
grid = exp.grid_points()
space = GridScan(exp).param_space()
rows = []
for i, point in enumerate(grid):
    config = exp.trial_config(point).to_dict()
    record = {"genotype": {"cells": []}, "accuracy": 0.9 - 0.1 * i, "dram_time_us": 10.0 + i,
              "dram_energy_uj": 10.0 - i, "config": config}
    rows.append(make_row("added", f"t{i}", config, record))
table = rows_to_table(rows)
front = front_of(table)
print(json.dumps({
    "experiment_key": "beta_decay_weights" in EXPERIMENT_KEYS,
    "grid": sorted({p["beta_decay_weight"] for p in grid}), "trials": len(grid),
    "param_space": space["beta_decay_weight"],
    "trials_column": "beta_decay_weight" in SCHEMA.names, "points_column": "beta_decay_weight" in POINT_SCHEMA.names,
    "rows": sorted(table.column("beta_decay_weight").to_pylist()),
    "front": [(r["trial_id"], r["beta_decay_weight"]) for r in front.to_pylist()],
    "points": point_stats(table).num_rows, "table_columns": "beta_decay_weight" in TABLE_COLUMNS,
    "label": point_label(front.to_pylist()[0]),
}))
'''


def test_a_dimension_added_to_the_registry_reaches_the_grid_the_rows_and_the_front():
    out = subprocess.run([sys.executable, "-c", ADDED], cwd=ROOT, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["experiment_key"] and got["grid"] == [0.5, 4.0] and got["trials"] == 4
    assert got["param_space"] == {"grid_search": [0.5, 4.0]}
    assert got["trials_column"] and got["points_column"] and got["table_columns"]
    assert got["rows"] == [0.5, 0.5, 4.0, 4.0]
    assert got["points"] == 4  # the new coordinate tells the lambda points apart
    # every trial is on the front here (accuracy falls as energy falls); each front row carries its value
    assert len(got["front"]) == 4 and all(v in (0.5, 4.0) for _, v in got["front"])
    assert got["label"].startswith("lt=0 le=0 bd=")
