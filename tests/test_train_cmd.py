"""hwnas train: tiny geometry trained one epoch; resume; picking a trial of an experiment folder."""
import json

import pyarrow.parquet as pq
import pytest

from hwnas.cli import main as hwnas
from results.schema import PARETO_FILE, TRIALS_FILE, front_of, make_row, rows_to_table

EDGES = [["sep_conv_3x3", 0, 2], ["skip_connect", 1, 2], ["max_pool_3x3", 0, 3], ["dil_conv_3x3", 1, 3],
         ["avg_pool_3x3", 0, 4], ["sep_conv_3x3", 2, 4], ["skip_connect", 1, 5], ["dil_conv_3x3", 3, 5]]
GENOTYPE = {"cells": [{"reduction": r, "edges": EDGES} for r in (False, True, True)]}
TINY = ["dataset=synthetic", "train_size=64", "test_size=64", "batch_size=32", "layers=3", "channels=4",
        "device=cpu", "cutout=4", "drop_path_prob=0.2", "auxiliary=true"]


@pytest.fixture
def genotype_file(tmp_path):
    path = tmp_path / "geno.json"
    path.write_text(json.dumps(GENOTYPE))
    return path


def test_one_epoch_then_resume(tmp_path, genotype_file, capsys):
    out = tmp_path / "run"
    assert hwnas(["train", str(genotype_file), "--set", *TINY, "epochs=1", "--out", str(out)]) == 0
    first = json.loads((out / "metrics.json").read_text())
    assert first["epochs"] == 1 and first["resumed_from_epoch"] == 0 and 0 <= first["test_accuracy"] <= 1
    assert first["params"] > 0 and first["macs"] > 0 and first["dram_time_us"] > 0 and first["profile"] == "mobile-npu"
    assert {"model.pt", "genotype.json", "config.json", "curve.png", "checkpoint.pt"} <= {p.name for p in out.iterdir()}
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    # the same command with more epochs continues after epoch 1 (as after a kill at the end of epoch 1)
    assert hwnas(["train", str(genotype_file), "--set", *TINY, "epochs=2", "--out", str(out),
                  "--profile", "eyeriss"]) == 0
    second = json.loads((out / "metrics.json").read_text())
    assert second["resumed_from_epoch"] == 1 and second["epochs"] == 2
    assert second["history"][0] == first["history"][0]  # epoch 1 came from the checkpoint, not retrained
    assert second["profile"] == "eyeriss" and second["dram_time_us"] != first["dram_time_us"]


def test_checkpoint_of_another_run_is_refused(tmp_path, genotype_file, capsys):
    out = tmp_path / "run"
    base = ["dataset=synthetic", "train_size=32", "test_size=32", "batch_size=32", "layers=3", "channels=4",
            "device=cpu", "epochs=1"]
    assert hwnas(["train", str(genotype_file), "--set", *base, "--out", str(out)]) == 0
    assert hwnas(["train", str(genotype_file), "--set", *base, "lr=0.1", "--out", str(out)]) == 2
    assert "belongs to another genotype or train config" in capsys.readouterr().err


def test_bad_input(tmp_path, genotype_file, capsys):
    assert hwnas(["train", str(tmp_path / "nope")]) == 2
    assert "no such file, folder or s3:// URI" in capsys.readouterr().err
    assert hwnas(["train", str(genotype_file), "--pick", "knee"]) == 2
    assert "--trial and --pick choose within an experiment" in capsys.readouterr().err
    assert hwnas(["train", str(genotype_file), "--set", "cutout=-1"]) == 2
    assert "cutout" in capsys.readouterr().err


def test_experiment_folder_trial_and_pick(tmp_path, monkeypatch):
    """--trial / --pick read the experiment's trials.parquet / pareto.parquet; the picked genotype is trained."""
    config = {"dataset": "synthetic", "layers": 3, "channels": 4, "profile": "edge-gpu"}
    other = {"cells": [{"reduction": r, "edges": [["skip_connect", a, b] if op == "sep_conv_3x3" else [op, a, b]
                                                  for op, a, b in EDGES]} for r in (False, True, True)]}
    rows = [make_row("x", "t_acc", config, {"accuracy": 0.9, "dram_time_us": 9.0, "dram_energy_uj": 2.0,
                                            "genotype": GENOTYPE}),
            make_row("x", "t_cheap", config, {"accuracy": 0.5, "dram_time_us": 3.0, "dram_energy_uj": 1.0,
                                              "genotype": other})]
    exp = tmp_path / "exp"
    exp.mkdir()
    table = rows_to_table(rows)
    pq.write_table(table, exp / TRIALS_FILE)
    pq.write_table(front_of(table), exp / PARETO_FILE)
    tiny = ["--set", "dataset=synthetic", "train_size=32", "test_size=32", "batch_size=32", "epochs=1",
            "device=cpu"]
    assert hwnas(["train", str(exp), "--pick", "cheapest", *tiny, "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "genotype.json").read_text()) == other
    assert json.loads((tmp_path / "a" / "config.json").read_text())["trial_id"] == "t_cheap"
    assert hwnas(["train", str(exp), "--trial", "t_acc", *tiny, "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "genotype.json").read_text()) == GENOTYPE
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["profile"] == "edge-gpu" and metrics["trial_id"] == "t_acc"  # the experiment's config travels
    assert metrics["layers"] == 3 and metrics["channels"] == 4

