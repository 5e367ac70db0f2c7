"""End to end on a local Ray (2 CPUs): `hwnas search --preset smoke` into a local folder and into S3
(moto's threaded server on 127.0.0.1), then `hwnas pareto` reading both back with the same front; and
a failing experiment whose trials stay as rows. Run inside shared/tools/loopback-only."""
from __future__ import annotations

import json
import logging
import os
import re

import pyarrow.parquet as pq
import pytest

from hwnas import cli
from results.schema import SCHEMA
from hwnas.cli.trial import load_search_config
from searchspace.config import SearchConfig

ray = pytest.importorskip("ray")


def front_key(rows: list[dict]) -> list[tuple]:
    return [(r["seed"], r["lambda_time"], r["lambda_energy"], r["profile"], r["genotype"],
             round(r["accuracy"], 6), round(r["dram_time_us"], 6), round(r["dram_energy_uj"], 6)) for r in rows]


def pareto_json(capsys, uri: str) -> list[dict]:
    assert cli.main(["pareto", uri, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_smoke_local_and_s3_same_front(ray_local, tmp_path, s3_env, s3_bucket, capfd, caplog):
    # local folder (AWS_ENDPOINT_URL is set but irrelevant to a local path)
    local = tmp_path / "results"
    caplog.set_level(logging.INFO, logger="hwnas")
    assert cli.main(["search", "--preset", "smoke", "--storage", str(local)]) == 0
    # quiet by default: hwnas's progress lines and the overall count, none of Ray's per-checkpoint lines
    # (trial output is forwarded to this process's stdout/stderr; hwnas's own lines go through logging)
    console = capfd.readouterr()
    shown = console.out + console.err + caplog.text
    assert "Checkpoint successfully created" not in shown
    assert re.search(r"\] started seed=0 lambda_time=", caplog.text) and "stage1 epoch 1" in caplog.text
    assert "1 of 2 trials done, ETA" in caplog.text and "2 of 2 trials done" in caplog.text
    # the start and done lines name the network the costs are for (smoke: its own 3-cell x 4-ch network)
    assert re.search(r"\] done: accuracy=0\.\d{4} dram_time_us=\S+ dram_energy_uj=\S+ of the 3-cell x 4-ch "
                     r"network, 32x32 input, batch 1, on mobile-npu", caplog.text)
    assert "costs of the 3-cell x 4-ch network" in caplog.text
    trials = pq.read_table(local / "smoke" / "trials.parquet")
    assert trials.schema.equals(SCHEMA)
    assert trials.num_rows == 2 and set(trials.column("status").to_pylist()) == {"completed"}
    assert sorted(trials.column("lambda_time").to_pylist()) == [0.0, 1.0]
    front = pq.read_table(local / "smoke" / "pareto.parquet")
    assert 1 <= front.num_rows <= 2
    for row in trials.to_pylist():
        assert 0 <= row["accuracy"] <= 1 and row["dram_time_us"] > 0 and row["dram_energy_uj"] > 0
        assert json.loads(row["genotype"])["cells"] and row["stage1_epochs"] >= 1
        config = json.loads(row["config"])  # exactly the trial's SearchConfig, no orchestrator options
        assert config == SearchConfig.from_dict(config).to_dict() and config["lambda_time"] == row["lambda_time"]
        # ... and a file `hwnas trial --config` takes as it is
        cfg_file = tmp_path / f"{row['trial_id']}.json"
        cfg_file.write_text(row["config"])
        args = cli.build_parser().parse_args(["trial", "--config", str(cfg_file)])
        assert load_search_config(args.config, args.preset, args.sets).to_dict() == config
    # the experiment's config is kept beside its results
    record = json.loads((local / "smoke" / "experiment.json").read_text())
    assert record["config"]["name"] == "smoke" and record["counts"] == {"completed": 2} and record["finished_utc"]
    # running the same name again is refused before anything runs, and changes nothing
    before = (local / "smoke" / "trials.parquet").read_bytes()
    assert cli.main(["search", "--preset", "smoke", "--storage", str(local)]) == 2
    assert "already has results" in capfd.readouterr().err
    assert (local / "smoke" / "trials.parquet").read_bytes() == before
    # Tune's state and the trials' checkpoints live beside the results
    names = os.listdir(local / "smoke")
    assert any(n.startswith("experiment_state") for n in names)
    trial_dirs = [n for n in names if n.startswith("search_trainable")]
    assert len(trial_dirs) == 2
    assert all(any(c.startswith("checkpoint_") for c in os.listdir(local / "smoke" / d)) for d in trial_dirs)

    # S3 through AWS_ENDPOINT_URL (moto), same experiment
    uri = f"s3://{s3_bucket}/runs"
    assert cli.main(["search", "--preset", "smoke", "--storage", uri]) == 0
    import boto3

    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_env).list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert "runs/smoke/trials.parquet" in keys and "runs/smoke/pareto.parquet" in keys
    assert any("/checkpoint_" in k for k in keys) and any("experiment_state" in k for k in keys)
    capfd.readouterr()

    # hwnas pareto reads both back: the same front (same seeds and config on CPU = same genotypes)
    front_local = pareto_json(capfd, str(local / "smoke"))
    front_s3 = pareto_json(capfd, f"{uri}/smoke")
    assert front_local and front_key(front_local) == front_key(front_s3)
    errors = [r["error"] for r in front_local]
    assert errors == sorted(errors)


def test_failed_trials_stay_as_rows(ray_local, tmp_path, capsys):
    rc = cli.main(["search", "--preset", "smoke", "--storage", str(tmp_path), "--name", "broken",
                   "--set", "data_dir=/nonexistent/hwnas-data", "max_failures=0"])
    assert rc == 1  # no completed trial, no front
    trials = pq.read_table(tmp_path / "broken" / "trials.parquet").to_pylist()
    assert len(trials) == 2
    assert {r["status"] for r in trials} == {"failed"}
    assert all(r["error_message"] and r["accuracy"] is None and not r["is_pareto"] for r in trials)
    assert pq.read_table(tmp_path / "broken" / "pareto.parquet").num_rows == 0

    # the resume hook (tune.Tuner.restore) reruns the errored trials and rewrites, never duplicates, rows
    from orchestrator.experiment import resume_experiment
    from results.experiment_config import load_experiment_config

    exp = load_experiment_config(preset="smoke", storage=str(tmp_path), name="broken",
                                 sets=["data_dir=/nonexistent/hwnas-data", "max_failures=0"])
    summary = resume_experiment(exp)
    again = pq.read_table(tmp_path / "broken" / "trials.parquet").to_pylist()
    assert sorted(r["trial_id"] for r in again) == sorted(r["trial_id"] for r in trials)
    assert summary.counts == {"failed": 2}
