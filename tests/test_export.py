"""hwnas export: a trained network to ONNX (opset 17, dynamic batch), checked with onnxruntime; its ONNX
cost equals the DRAM cost hwnas train reported for the genotype."""
import json

import onnx
import pytest

from hwnas.cli import main as hwnas

EDGES = [["sep_conv_3x3", 0, 2], ["max_pool_3x3", 1, 2], ["dil_conv_3x3", 0, 3], ["skip_connect", 1, 3],
         ["avg_pool_3x3", 0, 4], ["sep_conv_5x5", 1, 4], ["skip_connect", 0, 5], ["dil_conv_5x5", 2, 5]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    (root / "geno.json").write_text(json.dumps({"cells": [{"reduction": r, "edges": EDGES}
                                                          for r in (False, True, True)]}))
    assert hwnas(["train", str(root / "geno.json"), "--out", str(root / "run"), "--set", "dataset=synthetic",
                  "train_size=64", "test_size=64", "batch_size=32", "epochs=1", "layers=3", "channels=4",
                  "device=cpu", "profile=edge-gpu", "cost_batch=4"]) == 0
    return root / "run"


def test_round_trip_within_tolerance(trained, capsys):
    capsys.readouterr()
    assert hwnas(["export", str(trained), "--format", "onnx", "--images", "16"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["max_abs_diff"] <= 1e-4 and out["argmax_agreement"] == 1.0 and out["images"] == 16
    model = onnx.load(str(trained / "model.onnx"))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 17
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # exported at 2, checked at 16


def test_onnx_cost_equals_train_metrics(trained, capsys):
    if not (trained / "model.onnx").exists():
        assert hwnas(["export", str(trained)]) == 0
    metrics = json.loads((trained / "metrics.json").read_text())
    capsys.readouterr()
    assert hwnas(["cost", "--onnx", str(trained / "model.onnx"), "--profile", metrics["profile"],
                  "--batch", str(metrics["cost_batch"])]) == 0
    cost = json.loads(capsys.readouterr().out)
    assert cost["dram_bytes"] == metrics["dram_bytes"] and cost["macs"] == 4 * metrics["macs"]
    assert cost["dram_time_us"] == pytest.approx(metrics["dram_time_us"], rel=1e-12)


def test_tolerance_and_bad_folder(trained, tmp_path, capsys):
    capsys.readouterr()
    rc = hwnas(["export", str(trained), "--atol", "0"])
    captured = capsys.readouterr()
    if json.loads(captured.out)["max_abs_diff"] > 0:  # float reassociation: not bit-identical
        assert rc == 2 and "above --atol 0" in captured.err
    else:
        assert rc == 0
    assert hwnas(["export", str(tmp_path)]) == 2
    assert "not an hwnas train folder (missing model.pt, config.json, genotype.json)" in capsys.readouterr().err
    (tmp_path / "model.pt").write_bytes((trained / "model.pt").read_bytes())
    config = json.loads((trained / "config.json").read_text())
    config["train"]["channels"] = 8
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "genotype.json").write_text((trained / "genotype.json").read_text())
    assert hwnas(["export", str(tmp_path)]) == 2
    assert "does not fit the network of config.json" in capsys.readouterr().err
