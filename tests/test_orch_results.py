"""Results rows and tables from hand-made records and fake Tune results; rewrites replace; the trainable's
report adapter; `hwnas pareto` output and plot. No Ray cluster."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from hwnas import cli
from results.trial_rows import PARETO_FILE, TRIALS_FILE, error_text, result_rows, write_results
from results.schema import SCHEMA, schema_markdown
from results.storage import Storage


def record(acc: float, t: float, e: float, lt: float = 0.0, seed: int = 0) -> dict:
    return {
        "seed": seed, "dataset": "fashion", "profile": "mobile-npu", "lambda_time": lt, "lambda_energy": 0.0,
        "genotype": {"cells": [{"reduction": False, "edges": [["sep_conv_3x3", 0, 2], ["skip_connect", 1, 2]]}]},
        "groups": {"pool": ["max_pool_3x3", "avg_pool_3x3"], "skip": ["skip_connect"]},
        "stage1_choice": [["pool", "skip"]], "stage2_candidates": [[["max_pool_3x3"], ["skip_connect"]]],
        "stage1_epochs": 2, "stage2_epochs": 1, "supernet_accuracy": acc - 0.1, "accuracy": acc,
        "params": 1234, "flops": 56789, "skip_count": 1, "skip_counts": [1], "dram_time_us": t,
        "dram_energy_uj": e, "dram_bytes": 4096, "seconds": 12.5, "phase_seconds": {"stage1": 5.0},
        "config": {"seed": seed, "lambda_time": lt, "dataset": "fashion"},
    }


def tune_result(trial_id: str, rec: dict | None, error: BaseException | None = None, lt: float = 0.0):
    from orchestrator.trainable import record_metrics

    config = {"seed": 0, "lambda_time": lt, "lambda_energy": 0.0, "profile": "mobile-npu", "dataset": "fashion"}
    metrics = {"trial_id": trial_id, "config": config}
    if rec is not None:
        metrics.update(record_metrics(rec))  # exactly what the trainable's final report carries
    elif error is None:
        metrics.update(phase="stage1", epoch=1, val_acc=0.3)  # interrupted mid-search
    return SimpleNamespace(metrics=metrics, config=config, error=error)


def results_fixture():
    class Wrapped(ValueError):
        cause = RuntimeError("CUDA out of memory")

    return [
        tune_result("t0", record(0.80, 10.0, 5.0)),
        tune_result("t1", record(0.75, 4.0, 2.0, lt=1.0), lt=1.0),
        tune_result("t2", record(0.70, 6.0, 3.0, lt=0.5), lt=0.5),  # dominated by t1
        tune_result("t3", None, error=Wrapped("ray wrapper text"), lt=2.0),
        tune_result("t4", None, lt=4.0),
    ]


def test_rows_from_tune_results():
    rows = result_rows("exp", results_fixture())
    by = {r["trial_id"]: r for r in rows}
    assert [by[t]["status"] for t in ("t0", "t1", "t2", "t3", "t4")] == ["completed"] * 3 + ["failed", "incomplete"]
    assert by["t3"]["error_message"] == "RuntimeError: CUDA out of memory"
    assert by["t3"]["lambda_time"] == 2.0 and by["t3"]["accuracy"] is None
    assert by["t4"]["error_message"] == "stopped without a final record"
    assert json.loads(by["t0"]["genotype"])["cells"][0]["edges"][0] == ["sep_conv_3x3", 0, 2]
    assert json.loads(by["t0"]["groups"])["skip"] == ["skip_connect"]
    assert by["t0"]["error"] == pytest.approx(0.2) and by["t0"]["search_seconds"] == 12.5
    assert json.loads(by["t3"]["config"]) == results_fixture()[3].config  # the trial's config, as it was


def test_write_replaces_and_front(tmp_path):
    storage = Storage.from_uri(tmp_path).check()
    rows = result_rows("exp", results_fixture())
    for _ in range(2):  # the same experiment written twice: replaced, not duplicated
        table, front = write_results(storage, "exp", rows)
    trials = pq.read_table(tmp_path / "exp" / TRIALS_FILE)
    assert trials.schema.equals(SCHEMA) and trials.num_rows == 5
    pareto = pq.read_table(tmp_path / "exp" / PARETO_FILE)
    assert pareto.column("trial_id").to_pylist() == ["t0", "t1"]  # sorted by error
    assert all(pareto.column("is_pareto").to_pylist())
    assert sorted(trials.filter(trials.column("is_pareto")).column("trial_id").to_pylist()) == ["t0", "t1"]


def test_pareto_command_formats_and_plot(tmp_path, capsys):
    storage = Storage.from_uri(tmp_path).check()
    write_results(storage, "exp", result_rows("exp", results_fixture()))
    uri = str(tmp_path / "exp")
    assert cli.main(["pareto", uri]) == 0
    out = capsys.readouterr().out
    title, *lines = out.strip().splitlines()
    assert title.startswith("DRAM costs of the ") and "on mobile-npu" in title  # which network dram_* are for
    assert lines[0].split()[0] == "trial_id" and [l.split()[0] for l in lines[1:]] == ["t0", "t1"]
    assert cli.main(["pareto", uri, "--format", "json", "--out", str(tmp_path / "f.json"),
                     "--plot", str(tmp_path / "f.png")]) == 0
    front = json.loads(capsys.readouterr().out)
    assert [r["trial_id"] for r in front] == ["t0", "t1"] and set(front[0]) == set(SCHEMA.names)
    assert json.loads((tmp_path / "f.json").read_text()) == front
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["pareto", uri, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("experiment,trial_id,")
    assert cli.main(["pareto", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_report_adapter_copies_checkpoint(tmp_path):
    from orchestrator.trainable import CHECKPOINT_FILE, TuneReporter, record_metrics

    calls = []

    def fake_report(metrics, checkpoint=None):
        files = None
        if checkpoint is not None:
            with checkpoint.as_directory() as d:
                files = {p.name: p.read_text() for p in __import__("pathlib").Path(d).iterdir()}
        calls.append((metrics, files))

    ckpt = tmp_path / CHECKPOINT_FILE
    rep = TuneReporter(ckpt, report_fn=fake_report)
    rep({"phase": "stage1", "epoch": 0})  # no file yet: metrics only
    ckpt.write_text("state-1")
    rep({"phase": "stage1", "epoch": 1})
    final = record_metrics(record(0.8, 1.0, 2.0))
    rep(final)
    assert calls[0] == ({"phase": "stage1", "epoch": 0}, None)
    assert calls[1][1] == {CHECKPOINT_FILE: "state-1"}
    assert calls[2][0]["done"] is True and calls[2][0]["phase"] == "done"
    assert isinstance(calls[2][0]["genotype"], str) and json.loads(calls[2][0]["genotype"])["cells"]
    assert all(not isinstance(v, (dict, list)) for v in final.values())


def test_error_text_plain_exception():
    assert error_text(ValueError("bad")) == "ValueError: bad"
    assert error_text(None) is None


def test_schema_documented_in_the_reference():
    """The docs' results reference is generated from the schema (scripts/docs_reference.py)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "docs_reference.py"
    spec = importlib.util.spec_from_file_location("docs_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert schema_markdown() in module.schemas_page()


def test_deployed_geometry_columns():
    """trials.parquet says which network its dram_* columns are for: the record's deploy_* numbers, else
    resolved from a whole config (0 = eval = search), else null (a scan point holds only swept keys)."""
    import pyarrow as pa

    from results.schema import DEPLOY_COLUMNS, conform, make_row, rows_to_table
    from searchspace.config import SearchConfig
    from trainables.result import deploy_record

    full = SearchConfig(layers=5, channels=6, eval_layers=8, deploy_channels=36).to_dict()
    assert deploy_record(SearchConfig.from_dict(full)) == {"deploy_layers": 8, "deploy_channels": 36,
                                                           "deploy_image_size": 32}
    rec = {**record(0.8, 1.0, 2.0), "deploy_layers": 20, "deploy_channels": 36, "deploy_image_size": 64}
    old = {**record(0.7, 1.0, 2.0), "config": full}  # a record written before the deploy_* keys
    rows = [make_row("e", "a", full, rec), make_row("e", "b", {}, old),
            make_row("e", "c", {"seed": 1, "lambda_time": 0.5}, None, error_message="boom"),
            make_row("e", "d", full, None, error_message="boom")]
    table = rows_to_table(rows)
    got = {r["trial_id"]: tuple(r[k] for k in DEPLOY_COLUMNS) for r in table.to_pylist()}
    assert got == {"a": (20, 36, 64), "b": (8, 36, 32), "c": (None, None, None), "d": (8, 36, 32)}
    assert table.schema.names[-3:] == list(DEPLOY_COLUMNS) and table.schema.equals(SCHEMA)
    # a table written before these columns reads back with them null, every other column as it was
    older = table.drop_columns(list(DEPLOY_COLUMNS))
    back = conform(older)
    assert back.schema.equals(SCHEMA) and back.column("deploy_layers").null_count == 4
    assert back.column("dram_time_us").equals(table.column("dram_time_us"))
    assert pa.compute.all(pa.compute.equal(back.column("trial_id"), table.column("trial_id"))).as_py()


def test_accuracy_std_column_from_the_record():
    """accuracy is the training seeds' mean and accuracy_std their spread, from the trial's final record through
    Tune's flattened report; null with one seed, for a failed trial, and in tables written before the column."""
    from results.schema import conform, rows_to_table

    two = {**record(0.8, 1.0, 2.0), "accuracy": 0.8, "accuracy_std": 0.02, "eval_accuracies": [0.786, 0.814]}
    one = {**record(0.7, 1.0, 2.0), "accuracy_std": None, "eval_accuracies": [0.7]}
    rows = result_rows("e", [tune_result("a", two), tune_result("b", one),
                             tune_result("c", None, error=RuntimeError("boom"))])
    table = rows_to_table(rows)
    got = {r["trial_id"]: (r["accuracy"], r["accuracy_std"], r["error"]) for r in table.to_pylist()}
    assert got["a"] == (0.8, 0.02, pytest.approx(0.2)) and got["b"][1] is None and got["c"] == (None, None, None)
    back = conform(table.drop_columns(["accuracy_std"]))
    assert back.schema.equals(SCHEMA) and back.column("accuracy_std").null_count == 3


def test_progress_lines_name_the_eval_seed_and_the_deployed_network():
    from orchestrator.progress import done_line, phase_of
    from searchspace.config import SearchConfig, preset

    config = SearchConfig.from_dict(preset("fashion")).to_dict()
    assert phase_of({"phase": "eval", "eval_seed": 1}, config) == "eval seed 2/2"
    assert phase_of({"phase": "eval", "eval_seed": 0}, {**config, "eval_seeds": 1}) == "eval"
    assert phase_of({"phase": "stage1"}, config) == "stage1"
    line = done_line({"accuracy": 0.77, "accuracy_std": 0.005, "dram_time_us": 250.0, "dram_energy_uj": 390.0}, config)
    assert line == ("accuracy=0.7700 ± 0.0050 dram_time_us=250 dram_energy_uj=390 of the 20-cell x 36-ch network, "
                    "32x32 input, batch 1, on mobile-npu")
    assert "±" not in done_line({"accuracy": 0.77, "accuracy_std": None}, config)
