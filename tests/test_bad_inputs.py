"""Bad input found early, as one line on stderr, never a traceback and never accepted silently (issue #24,
cases 4, 5, 8, 9): no Ray here. Each test names the case of the issue it covers."""
from __future__ import annotations

import json

import onnx
import pytest
from onnx import helper

from hwnas.cli import main as hwnas

EDGES = [["sep_conv_3x3", 0, 2], ["skip_connect", 1, 2], ["max_pool_3x3", 0, 3], ["dil_conv_3x3", 1, 3],
         ["avg_pool_3x3", 0, 4], ["sep_conv_3x3", 2, 4], ["skip_connect", 1, 5], ["dil_conv_3x3", 3, 5]]
TRAIN = ["dataset=synthetic", "train_size=32", "test_size=32", "batch_size=32", "layers=3", "channels=4",
         "device=cpu", "epochs=1"]
TRIAL = ["dataset=synthetic", "train_size=32", "val_size=16", "test_size=16", "batch_size=16", "layers=3",
         "channels=4", "nodes=2", "max_epochs=2", "patience=2", "warmup_epochs=0", "eval_epochs=1"]


def genotype(edges0=EDGES) -> dict:
    return {"cells": [{"reduction": r, "edges": edges0 if i == 0 else EDGES} for i, r in enumerate((False, True, True))]}


def one_error_line(capsys, *names: str) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder written by hwnas train (one tiny epoch)."""
    root = tmp_path_factory.mktemp("trained")
    (root / "geno.json").write_text(json.dumps(genotype()))
    assert hwnas(["train", str(root / "geno.json"), "--out", str(root / "run"), "--set", *TRAIN]) == 0
    return root / "run"


def copy_of(trained, tmp_path):
    dst = tmp_path / "run"
    dst.mkdir()
    for p in trained.iterdir():
        if p.is_file():
            (dst / p.name).write_bytes(p.read_bytes())
    return dst


# ------------------------------------------------------------------ case 4: hwnas trial --checkpoint
def test_case4_trial_checkpoint_is_checked_before_the_search(tmp_path, capsys, monkeypatch):
    import trainables

    def no_search(*a, **k):
        raise AssertionError("the search ran")

    monkeypatch.setattr(trainables, "run_search", no_search)
    (tmp_path / "afile").write_text("a file where a folder should be")
    rc = hwnas(["trial", "--set", *TRIAL, "--checkpoint", str(tmp_path / "afile" / "sub" / "c.ckpt")])
    line = one_error_line(capsys, "--checkpoint", str(tmp_path / "afile" / "sub" / "c.ckpt"))
    assert rc == 2 and ".tmp" not in line and ".probe" not in line
    (tmp_path / "folder").mkdir()
    assert hwnas(["trial", "--set", *TRIAL, "--checkpoint", str(tmp_path / "folder")]) == 2
    assert "is a folder" in one_error_line(capsys, "--checkpoint")


# ------------------------------------------------------------------ case 5: tracebacks of train / export
def test_case5_train_on_a_garbage_checkpoint_is_one_line_naming_it(tmp_path, capsys):
    (tmp_path / "geno.json").write_text(json.dumps(genotype()))
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"garbage\n")
    assert hwnas(["train", str(tmp_path / "geno.json"), "--out", str(out), "--set", *TRAIN]) == 2
    line = one_error_line(capsys, str(out / "checkpoint.pt"))
    assert "weights_only" not in line and "unreadable" in line
    (out / "checkpoint.pt").write_bytes(b"")
    assert hwnas(["train", str(tmp_path / "geno.json"), "--out", str(out), "--set", *TRAIN]) == 2
    assert "empty" in one_error_line(capsys, str(out / "checkpoint.pt"))


def test_case5_export_of_garbage_files_is_one_line_naming_the_file(trained, tmp_path, capsys):
    run = copy_of(trained, tmp_path)
    (run / "model.pt").write_bytes(b"garbage\n")
    assert hwnas(["export", str(run)]) == 2
    assert "weights_only" not in one_error_line(capsys, str(run / "model.pt"))
    (tmp_path / "b").mkdir()
    run2 = copy_of(trained, tmp_path / "b")
    (run2 / "config.json").write_text("{bad")
    assert hwnas(["export", str(run2)]) == 2
    one_error_line(capsys, str(run2 / "config.json"), "not valid JSON")
    (run2 / "config.json").write_text("{}")
    assert hwnas(["export", str(run2)]) == 2
    one_error_line(capsys, str(run2 / "config.json"))
    (run2 / "config.json").write_text((trained / "config.json").read_text())
    (run2 / "genotype.json").write_text('{"cells": [}')
    assert hwnas(["export", str(run2)]) == 2
    one_error_line(capsys, str(run2 / "genotype.json"))


def test_case9_export_write_error_names_model_onnx_not_a_temp_file(trained, tmp_path, capsys):
    run = copy_of(trained, tmp_path)
    (run / "model.onnx").mkdir()  # something that cannot be replaced by a file
    assert hwnas(["export", str(run)]) == 3
    line = one_error_line(capsys, str(run / "model.onnx"))
    assert ".tmp" not in line
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []  # no temporary file left


@pytest.mark.parametrize("edge, words", [
    (["classifier", 1, 2], ["'classifier' is not an edge operator"]),
    (["skip_connect", 1.7, 2], ["whole number", "1.7"]),
    (["skip_connect", 3, 2], ["not an edge of a cell"]),
])
def test_case5_case8_a_bad_genotype_edge_is_refused_by_train_and_cost_alike(tmp_path, capsys, edge, words):
    edges = [edge, *EDGES[1:]]
    path = tmp_path / "geno.json"
    path.write_text(json.dumps(genotype(edges)))
    assert hwnas(["cost", "--genotype", str(path), "--profile", "mobile-npu"]) == 2
    one_error_line(capsys, str(path), "cell 0 edge 0", *words)
    assert hwnas(["train", str(path), "--out", str(tmp_path / "run"), "--set", *TRAIN]) == 2
    one_error_line(capsys, str(path), *words)
    assert not (tmp_path / "run" / "model.pt").exists()


# ------------------------------------------------------------------ case 8: accepted silently
def test_case8_onnx_empty_file_empty_graph_and_a_folder(tmp_path, capsys):
    (tmp_path / "zero.onnx").write_bytes(b"")
    assert hwnas(["cost", "--onnx", str(tmp_path / "zero.onnx"), "--profile", "mobile-npu"]) == 2
    one_error_line(capsys, "zero.onnx", "empty (0 bytes)")
    onnx.save(helper.make_model(helper.make_graph([], "g", [], [])), str(tmp_path / "nodes0.onnx"))
    assert hwnas(["cost", "--onnx", str(tmp_path / "nodes0.onnx"), "--profile", "mobile-npu"]) == 2
    one_error_line(capsys, "nodes0.onnx", "no nodes")
    assert hwnas(["cost", "--onnx", str(tmp_path), "--profile", "mobile-npu"]) == 2
    line = one_error_line(capsys, str(tmp_path), "is a folder")
    assert "no such file" not in line


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_case8_an_empty_config_file_is_refused(tmp_path, capsys, text):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(text)
    assert hwnas(["trial", "--config", str(cfg), "--set", *TRIAL]) == 2
    one_error_line(capsys, str(cfg), "empty")
    assert hwnas(["search", "--config", str(cfg), "--storage", str(tmp_path / "res")]) == 2
    one_error_line(capsys, str(cfg), "empty")
    assert not (tmp_path / "res").exists()


# ------------------------------------------------------------------ case 9: pareto --out names its file
def test_case9_pareto_out_error_names_the_file_before_reading(tmp_path, capsys):
    from results.trial_rows import write_results
    from results.schema import make_row
    from results.storage import Storage

    cfg = dict(seed=0, lambda_time=0.0, lambda_energy=0.0, profile="mobile-npu", dataset="synthetic")
    rec = dict(cfg, phase="done", accuracy=0.5, dram_time_us=1.0, dram_energy_uj=1.0, genotype="{}")
    write_results(Storage.from_uri(tmp_path).check(), "e", [make_row("e", "t0", cfg, rec, status="completed")])
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "front.csv"
    assert hwnas(["pareto", str(tmp_path / "e"), "--out", str(target)]) == 2
    line = one_error_line(capsys, "--out", str(target))
    assert ".tmp" not in line
    assert capsys.readouterr().out == ""  # refused before the front was printed
    assert hwnas(["pareto", str(tmp_path / "e"), "--out", "/proc/front.csv"]) == 2
    line = one_error_line(capsys, "/proc/front.csv")
    assert ".tmp" not in line and ".probe" not in line
