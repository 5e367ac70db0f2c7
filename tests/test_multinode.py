"""Multi-node on one machine: ``ray.cluster_utils.Cluster`` with a CPU-only head and two worker nodes that
declare one logical GPU each (torch sees no CUDA device, so trials run on CPU with device=auto).

- One experiment of two trials: one trial per worker node, one GPU each, both asking the experiment's one
  cost actor, every trial completed in trials.parquet, and the actor gone with its driver's handle.
- Two experiments at once on the cluster (two `hwnas search --address` driver processes): the first
  driver is SIGKILLed mid-run and the second still completes every trial (each run has its own actor).

Run inside shared/tools/loopback-only. The helpers here (``TINY``, ``start_cluster``, ``trial_rows``,
``search``, ``run``, ``cost_actors``, ``wait_until``) are shared with test_faults.py.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hwnas import cli

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]

# a trial in seconds on one CPU thread: 2 batches per epoch, 2-node cells, no patience stop
TINY = ["dataset=synthetic", "train_size=32", "val_size=16", "test_size=16", "batch_size=16", "eval_batch_size=16",
        "layers=3", "channels=4", "nodes=2", "max_epochs=2", "patience=2", "eval_epochs=1", "augment=false"]


def start_cluster(workers: int = 2, gpus_per_worker: int = 1):
    """A head without GPUs (it holds the driver side and the cost service) and ``workers`` GPU nodes."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0,
                                                            "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1, num_gpus=gpus_per_worker) for _ in range(workers)]
    cluster.wait_for_nodes()
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address=cluster.address, namespace="hwnas", log_to_driver=False)
    return cluster, nodes


def stop_cluster(cluster) -> None:
    ray.shutdown()
    cluster.shutdown()


def wait_until(condition, timeout: float, what: str, interval: float = 0.1):
    """Poll ``condition()`` until it returns something truthy (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def search(cluster, storage: Path, name: str, *sets: str) -> int:
    """``hwnas search`` against the cluster (as a driver on it would), tiny trials."""
    return cli.main(["search", "--preset", "smoke", "--storage", str(storage), "--name", name,
                     "--address", cluster.address, "--set", *TINY, *sets])


def trial_rows(storage: Path, name: str) -> list[dict]:
    return pq.read_table(storage / name / "trials.parquet").to_pylist()


def final_results(storage: Path, name: str) -> dict[str, dict]:
    """trial_id -> its final Tune result (from result.json; the record plus node_id, gpu_ids, resumed)."""
    out = {}
    for path in (storage / name).glob("search_trainable_*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        done = [r for r in lines if r.get("phase") == "done"]
        if done:
            out[done[-1]["trial_id"]] = done[-1]
    return out


def run(cluster, storage: Path, name: str, *sets: str):
    """``run_experiment`` against the cluster, tiny trials; the ExperimentSummary (with ``cost_stats``)."""
    from orchestrator.experiment import RunOptions, run_experiment
    from results.experiment_config import load_experiment_config

    exp = load_experiment_config(preset="smoke", storage=str(storage), name=name, sets=[*TINY, *sets])
    return run_experiment(exp, RunOptions(address=cluster.address))


def cost_actors(experiment: str) -> list[dict]:
    """The live cost actors of ``experiment`` (named ``hwnas-cost-<experiment>-<run id>``), from Ray's state."""
    return [a for a in ray._private.state.actors().values()
            if a["State"] == "ALIVE" and (a.get("Name") or "").startswith(f"hwnas-cost-{experiment}-")]


@pytest.fixture(scope="module")
def cluster():
    c, nodes = start_cluster()
    try:
        yield c, nodes
    finally:
        stop_cluster(c)


def test_trials_spread_over_gpu_nodes_one_cost_service(cluster, tmp_path, capsys):
    c, nodes = cluster
    worker_ids = {n.node_id for n in nodes}
    assert ray.cluster_resources().get("GPU") == 2
    summary = run(c, tmp_path, "multi", "lambda_time=[0,1]")
    capsys.readouterr()
    # every trial is in trials.parquet, completed
    rows = trial_rows(tmp_path, "multi")
    assert len(rows) == 2 and {r["status"] for r in rows} == {"completed"}
    assert sorted(r["lambda_time"] for r in rows) == [0.0, 1.0]
    # one trial per worker node (each node has one GPU, each trial holds one), never the GPU-less head
    finals = final_results(tmp_path, "multi")
    assert set(finals) == {r["trial_id"] for r in rows}
    used = [f["node_id"] for f in finals.values()]
    assert set(used) == worker_ids, (used, worker_ids)
    assert all(f["gpu_ids"] != "" and "," not in f["gpu_ids"] for f in finals.values())
    # both trials asked the experiment's one cost actor: batches from both, the second hitting its cache
    stats = summary.cost_stats
    assert stats["calls"] >= 2 * len(rows) and stats["hits"] > 0
    # the driver owned it: with the driver's handle gone, so is the actor
    wait_until(lambda: not cost_actors("multi"), 60, "the cost actor to end with its driver's handle")


def test_two_experiments_one_driver_killed_the_other_completes(cluster, tmp_path):
    c, _ = cluster

    def driver(name: str, *sets: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{name}.log"
        cmd = [sys.executable, "-m", "hwnas.cli", "search", "--preset", "smoke", "--storage", str(tmp_path),
               "--name", name, "--address", c.address, "--set", *TINY, *sets]
        with open(log, "w") as out:
            return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT), log

    def checkpointed(name: str) -> bool:
        return any((tmp_path / name).glob("search_trainable_*/checkpoint_*"))

    # first: one long trial; second: two trials long enough that it is still running (its cost actor
    # alive) when the first driver is killed. Both run at once, one worker node each.
    # patience = max_epochs (no stage ends early) and enough steps (64 / 48 per epoch, 12 epochs a trial)
    # that both are still running, whichever driver starts first, when the first is killed
    first, first_log = driver("first", "lambda_time=[0.5]", "train_size=1024", "max_epochs=6", "patience=6")
    # the second runs its two trials one at a time: one worker node each, whichever driver starts first
    second, second_log = driver("second", "lambda_time=[0,1]", "train_size=768", "max_epochs=6", "patience=6",
                                "max_concurrent_trials=1")
    try:
        wait_until(lambda: first.poll() is not None or second.poll() is not None
                   or (checkpointed("first") and checkpointed("second")), 240, "both experiments to checkpoint a trial")
        assert first.poll() is None, first_log.read_text()[-3000:]
        assert second.poll() is None, second_log.read_text()[-3000:]
        # a cost actor is created by its driver before its trials start; look until both are listed
        try:
            wait_until(lambda: len(cost_actors("first")) == 1 and len(cost_actors("second")) == 1, 60,
                       "both cost actors")
        except AssertionError as exc:
            names = [(a.get("Name"), a["State"]) for a in ray._private.state.actors().values() if a.get("Name")]
            raise AssertionError(f"{exc}; named actors: {names}; second: {second_log.read_text()[-1500:]}") from None
        (first_actor,) = cost_actors("first")
        (second_actor,) = cost_actors("second")
        assert first_actor["Name"] != second_actor["Name"]
        first.send_signal(signal.SIGKILL)  # the driver dies mid-run, its trial and its cost actor with it
        first.wait(30)
        assert second.wait(300) == 0, second_log.read_text()[-3000:]
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
    rows = trial_rows(tmp_path, "second")
    assert len(rows) == 2 and {r["status"] for r in rows} == {"completed"}
    assert not (tmp_path / "first" / "trials.parquet").exists()  # the killed driver never wrote its tables
    wait_until(lambda: not cost_actors("first"), 60, "the killed driver's cost actor to end with it")
