"""The scripts in examples/ run, shrunk with --smoke: a search and its front as a DataFrame, pick / re-cost /
train / export / cost the ONNX file, and a budget scan driven from another process on an existing cluster
(``ray.cluster_utils.Cluster``) with its results on S3 (moto's threaded server on 127.0.0.1).

The first two run in this process on the module's cluster (``hwnas.search`` joins the Ray it finds); the
third is a separate driver joining the cluster by its address, as a user's script would. Run inside
shared/tools/loopback-only.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import S3_TEST_ENV

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def example(name: str):
    """The example script ``name`` as a module (its ``main(argv)`` is what running it calls)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cluster():
    """An existing Ray cluster: a head with 2 CPUs, started before the drivers (S3 credentials in its
    environment, as a real cluster's nodes carry them)."""
    from ray.cluster_utils import Cluster

    mp = pytest.MonkeyPatch()
    for key, value in S3_TEST_ENV.items():
        mp.setenv(key, value)
    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 0, "include_dashboard": False})
    c.wait_for_nodes()
    ray.init(address=c.address, namespace="hwnas", log_to_driver=False)
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        mp.undo()


@pytest.fixture(scope="module")
def front_experiment(cluster, tmp_path_factory):
    """examples/search_front.py --smoke: (its storage, its stdout)."""
    storage = tmp_path_factory.mktemp("examples")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert example("search_front").main(["--smoke", "--storage", str(storage),
                                             "--plot", str(storage / "front.png")]) == 0
    return storage, out.getvalue()


def test_search_front(front_experiment):
    storage, out = front_experiment
    trials = pq.read_table(storage / "example-front" / "trials.parquet")
    assert trials.num_rows == 2 and set(trials.column("status").to_pylist()) == {"completed"}
    assert "experiment example-front: 2 trials (2 completed" in out
    assert "dram_energy_uj" in out and "trial_id" in out  # the DataFrame's header
    assert (storage / "front.png").read_bytes()[:4] == b"\x89PNG"
    # run again: the experiment exists, so it is read back (hwnas.ExperimentExists), not searched again
    import contextlib
    import io

    again = io.StringIO()
    with contextlib.redirect_stdout(again):
        assert example("search_front").main(["--smoke", "--storage", str(storage),
                                             "--plot", str(storage / "front2.png")]) == 0
    assert "experiment example-front: 2 trials (2 completed" in again.getvalue()


def test_pick_recost_export(front_experiment, tmp_path, capsys):
    storage, _ = front_experiment
    out_dir = tmp_path / "knee"
    assert example("pick_recost_export").main([str(storage / "example-front"), "--smoke", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "picked " in out and "mobile-npu" in out and "eyeriss" in out
    assert (out_dir / "model.onnx").is_file() and (out_dir / "metrics.json").is_file()
    assert out.count("kernel groups") == 2


def test_cluster_budget_scan_on_s3(cluster, s3_server, tmp_path):
    import boto3

    bucket = "hwnas-example"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", **{
        "aws_access_key_id": S3_TEST_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_TEST_ENV["AWS_SECRET_ACCESS_KEY"]}).create_bucket(Bucket=bucket)
    env = {**os.environ, **S3_TEST_ENV}
    env.pop("AWS_ENDPOINT_URL", None)
    cmd = [sys.executable, str(EXAMPLES / "cluster_budget_s3.py"), "--smoke", "--address", cluster.address,
           "--storage", f"s3://{bucket}/runs", "--endpoint-url", s3_server]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "experiment budget-scan: 2 trials (2 completed" in done.stdout
    assert "dram_time_budget_us" in done.stdout  # the trials read back from S3, as a DataFrame
    assert "most accurate within 3.0 us" in done.stdout or "no point within 3.0 us" in done.stdout
    keys = {o["Key"] for o in boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", **{
        "aws_access_key_id": S3_TEST_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_TEST_ENV["AWS_SECRET_ACCESS_KEY"]}).list_objects_v2(
        Bucket=bucket, Prefix="runs/budget-scan/")["Contents"]}
    assert {"runs/budget-scan/trials.parquet", "runs/budget-scan/pareto.parquet"} <= keys
