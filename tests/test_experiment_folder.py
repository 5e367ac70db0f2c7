"""An experiment's folder is never replaced unasked, its config is kept, and its tables are never lost
(no Ray): the folder preflight (new run / --overwrite / --resume), experiment.json, one-write tables on
a local folder and on S3 (moto on 127.0.0.1), and the final write's local copy when the storage fails."""
from __future__ import annotations

import json
import logging
import os

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hwnas import cli
from orchestrator import experiment
from orchestrator.experiment import save_results
from results.experiment_config import load_experiment_config
from results.experiment_record import (RECORD_FILE, TUNE_STATE_FILE, ExperimentExists, experiment_for_resume,
                                       prepare_folder, read_record, write_record)
from results.schema import make_row, rows_to_table
from results.seedstats import point_stats
from results.storage import Storage, StorageWriteError
from results.trial_rows import results_tables, write_results


@pytest.fixture
def no_ray(monkeypatch):
    """Reaching Ray or building a Tuner fails the test: everything here happens before."""
    def forbidden(*a, **k):
        raise AssertionError("reached Ray / the Tuner")

    monkeypatch.setattr(experiment, "connect", forbidden)
    monkeypatch.setattr(experiment, "build_tuner", forbidden)


def rows(n: int) -> list[dict]:
    out = []
    for i in range(n):
        cfg = dict(seed=i, lambda_time=float(i), lambda_energy=0.0, profile="mobile-npu", dataset="synthetic")
        rec = dict(cfg, phase="done", accuracy=0.5 + 0.1 * i, dram_time_us=10.0 - i, dram_energy_uj=5.0, genotype="{}")
        out.append(make_row("exp", f"t{i}", cfg, rec, status="completed"))
    return out


def a_finished_experiment(storage: Storage, name: str, n: int = 2) -> None:
    """What a finished run leaves: experiment.json, Tune's state, the tables."""
    exp = load_experiment_config(preset="smoke", storage=storage.uri, name=name)
    write_record(storage, exp)
    folder = storage.child(name)
    folder.write_bytes(TUNE_STATE_FILE, b"tune state")
    write_results(storage, name, rows(n))


# ---------------------------------------------------------------------------------------------- new run
def test_a_second_run_is_refused_before_ray_and_changes_nothing(no_ray, tmp_path, capsys):
    storage = Storage.from_uri(tmp_path).check()
    a_finished_experiment(storage, "smoke")
    before = {p.name: p.read_bytes() for p in (tmp_path / "smoke").iterdir()}
    rc = cli.main(["search", "--preset", "smoke", "--storage", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "'smoke' already has results" in err and "--resume smoke" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in (tmp_path / "smoke").iterdir()} == before
    assert pq.read_table(tmp_path / "smoke" / "trials.parquet").num_rows == 2


def test_overwrite_moves_the_earlier_experiment_aside(tmp_path, caplog):
    storage = Storage.from_uri(tmp_path).check()
    a_finished_experiment(storage, "x")
    caplog.set_level(logging.WARNING, logger="hwnas")
    with pytest.raises(ExperimentExists):
        prepare_folder(storage, "x")
    moved = prepare_folder(storage, "x", overwrite=True)
    assert moved and moved.startswith(str(tmp_path / "x.replaced-"))
    assert not (tmp_path / "x").exists()  # the new run starts from an empty folder
    assert pq.read_table(f"{moved}/trials.parquet").num_rows == 2  # nothing deleted
    (line,) = [r.getMessage() for r in caplog.records if "--overwrite" in r.getMessage()]
    assert str(tmp_path / "x") in line and moved in line
    assert prepare_folder(storage, "x") is None  # now free; an empty folder is free too
    (tmp_path / "empty").mkdir()
    assert prepare_folder(storage, "empty") is None


def test_overwrite_on_s3_copies_then_deletes(s3_bucket, s3_env):
    storage = Storage.from_uri(f"s3://{s3_bucket}/runs").check()
    a_finished_experiment(storage, "x")
    moved = prepare_folder(storage, "x", overwrite=True)
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_env).list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert not any(k.startswith("runs/x/") for k in keys)
    assert moved.startswith(f"s3://{s3_bucket}/runs/x.replaced-")
    assert storage.child(moved.rsplit("/", 1)[1]).read_table("trials.parquet").num_rows == 2


# ---------------------------------------------------------------------------------------------- resume
def test_resume_of_an_unknown_name_fails_before_ray_and_creates_nothing(no_ray, tmp_path, capsys):
    storage = Storage.from_uri(tmp_path).check()
    a_finished_experiment(storage, "known")
    rc = cli.main(["search", "--storage", str(tmp_path), "--resume", "nosuch"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot resume 'nosuch'" in err and "does not exist" in err and "known" in err
    assert not (tmp_path / "nosuch").exists()
    rc = cli.main(["search", "--storage", str(tmp_path / "no-such-storage"), "--resume", "known"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no-such-storage").exists()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "trials.parquet").write_bytes(b"x")
    rc = cli.main(["search", "--storage", str(tmp_path), "--resume", "half"])
    assert rc == 2 and "no Tune experiment state" in capsys.readouterr().err
    rc = cli.main(["search", "--storage", str(tmp_path), "--resume", "known", "--overwrite"])
    assert rc == 2 and "exclude each other" in capsys.readouterr().err


def test_resume_needs_only_storage_and_name(tmp_path, caplog):
    storage = Storage.from_uri(tmp_path).check()
    exp = load_experiment_config(preset="fashion", storage=str(tmp_path), name="f",
                                 sets=["seeds=[3,4]", "scan=adaptive", "scan_budget=12", "max_epochs=2"])
    write_record(storage, exp)
    storage.child("f").write_bytes(TUNE_STATE_FILE, b"tune state")
    record = json.loads((tmp_path / "f" / RECORD_FILE).read_text())
    assert record["config"]["search"]["max_epochs"] == 2 and record["format"] == "hwnas-experiment/1"
    assert experiment_for_resume("f", str(tmp_path), "", None) == exp
    # settings given besides are ignored, with a warning naming them
    caplog.set_level(logging.WARNING, logger="hwnas")
    other = load_experiment_config(preset="smoke", storage=str(tmp_path), name="f")
    assert experiment_for_resume("f", str(tmp_path), "", other) == exp
    assert "ignored from the command line" in caplog.text and "scan_budget" in caplog.text
    # a folder from before records needs the first run's settings again
    (tmp_path / "f" / RECORD_FILE).unlink()
    with pytest.raises(ValueError, match="give the first run's"):
        experiment_for_resume("f", str(tmp_path), "", None)
    assert experiment_for_resume("f", str(tmp_path), "", other) == other


def test_record_marks_the_end_and_refuses_foreign_json(tmp_path):
    storage = Storage.from_uri(tmp_path).check()
    exp = load_experiment_config(preset="smoke", storage=str(tmp_path), name="r")
    started = write_record(storage, exp).started_utc
    write_record(storage, exp, started_utc=started, counts={"completed": 2})
    rec = read_record(storage, "r")
    assert rec.started_utc == started and rec.finished_utc and rec.counts == {"completed": 2}
    (tmp_path / "r" / RECORD_FILE).write_text('{"something": "else"}')
    with pytest.raises(ValueError, match="not an hwnas experiment record"):
        read_record(storage, "r")


# ---------------------------------------------------------------------------------------------- writes
def test_failed_writes_are_one_oserror_naming_the_object(tmp_path, s3_bucket, s3_env):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the experiment folder should be")
    with pytest.raises(StorageWriteError, match=r"cannot write .*blocked/t\.parquet"):
        Storage.from_uri(tmp_path).child("blocked").write_table("t.parquet", pa.table({"x": [1]}))
    storage = Storage.from_uri(f"s3://{s3_bucket}/runs").check()
    storage.child("e").write_table("t.parquet", pa.table({"x": [1, 2]}))  # one put: the whole object
    assert storage.child("e").read_table("t.parquet").num_rows == 2
    boto3.client("s3", endpoint_url=s3_env).delete_object(Bucket=s3_bucket, Key="runs/e/t.parquet")
    boto3.client("s3", endpoint_url=s3_env).delete_bucket(Bucket=s3_bucket)
    with pytest.raises(StorageWriteError, match=f"cannot write s3://{s3_bucket}/runs/e/t.parquet"):
        storage.child("e").write_table("t.parquet", pa.table({"x": [1]}))


def test_a_failed_final_write_keeps_a_local_copy(tmp_path, s3_bucket, s3_env, caplog):
    from results.scan_metrics import grid_scan_table

    table, front, points = results_tables(rows(3))
    scan = grid_scan_table(table, 1.0)
    storage = Storage.from_uri(f"s3://{s3_bucket}/runs").check()
    assert save_results(storage.child("ok"), "ok", str(tmp_path / "unsaved"), table, front, points, scan) == (None, None)
    # the bucket goes away while the experiment runs: the final write fails, the rows are kept locally
    client = boto3.client("s3", endpoint_url=s3_env)
    for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]:
        client.delete_object(Bucket=s3_bucket, Key=o["Key"])
    client.delete_bucket(Bucket=s3_bucket)
    caplog.set_level(logging.ERROR, logger="hwnas")
    why, copy = save_results(storage.child("gone"), "gone", str(tmp_path / "unsaved"), table, front, points, scan)
    assert why and s3_bucket in why and copy.startswith(str(tmp_path / "unsaved" / "gone-"))
    assert pq.read_table(f"{copy}/trials.parquet").equals(table)
    assert pq.read_table(f"{copy}/pareto.parquet").num_rows == front.num_rows
    assert {"points.parquet", "scan.parquet"} <= set(os.listdir(copy))
    assert copy in caplog.text


def test_results_tables_match_the_schema_and_points():
    table, front, points = results_tables(rows(3))
    assert table.equals(rows_to_table(rows(3))) and points.equals(point_stats(table))
    assert 1 <= front.num_rows <= 3
