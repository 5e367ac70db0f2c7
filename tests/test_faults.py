"""Faults, each on a real multi-node Ray (``ray.cluster_utils.Cluster``: a head and two logical-GPU nodes):

(a) a trial's worker process SIGKILLed mid-stage resumes from its checkpoint; its final record equals an
    uninterrupted run_search of the same config (CPU, one thread, same seed);
(b) the experiment's cost actor SIGKILLed while a trial's query is in flight is restarted by Ray, the call
    re-sent, and the trial completes without being retried, the costs unchanged;
(c) the driver (`hwnas search` in a subprocess) gets SIGINT after one trial finished (exit 1: a trial is
    incomplete); `hwnas search --resume NAME` with only the storage finishes the rest from experiment.json
    without redoing the finished trial;
(d) the worker node running a trial is removed: the trial resumes from its checkpoint on the other node
    and ends equal to an uninterrupted run;
(e) an adaptive scan's driver gets SIGINT after one trial; `--resume` (Tuner.restore) runs exactly the rest;
(f) the driver is SIGKILLed after one trial finished: trials.parquet already holds that trial, completed.
In every case trials.parquet has every trial, completed. Run inside shared/tools/loopback-only.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.test_multinode import TINY, cost_actors, final_results, run, search, start_cluster, stop_cluster, \
    trial_rows, wait_until

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]
KEYS = ("genotype", "stage1_choice", "accuracy", "supernet_accuracy", "dram_time_us", "dram_energy_uj",
        "stage1_epochs", "stage2_epochs", "params", "flops")


@pytest.fixture(scope="module")
def cluster():
    c, nodes = start_cluster()
    try:
        yield c, nodes
    finally:
        stop_cluster(c)


def trial_actors(state: str = "ALIVE") -> dict[str, dict]:
    """Tune trial actors (function trainables run in ImplicitFunc actors, which Ray names
    ``ImplicitFunc`` here and ``wrap_function.<locals>.ImplicitFunc`` on a fresh install: one CI run) in
    ``state``, by actor id."""
    return {k: a for k, a in ray._private.state.actors().items()
            if a["ActorClassName"].rpartition(".")[2] == "ImplicitFunc" and a["State"] == state}


def first_checkpoint(exp_dir: Path) -> Path | None:
    return next(iter(exp_dir.glob("search_trainable_*/checkpoint_*")), None)


def second_checkpoint(exp_dir: Path) -> bool:
    """Two persisted checkpoints: the trial's report() of the first returned, so Tune's controller has
    registered it and a restarted trial gets it back (the first alone can be on disk but not yet known)."""
    return len(list(exp_dir.glob("search_trainable_*/checkpoint_*"))) >= 2


def latest_node_id(exp_dir: Path) -> str | None:
    """The node_id of the newest epoch report in the (single) trial's result.json, if any yet."""
    for path in exp_dir.glob("search_trainable_*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        ids = [r["node_id"] for r in lines if r.get("node_id")]
        if ids:
            return ids[-1]
    return None


def search_config(row: dict):
    """The trial's SearchConfig from its trials.parquet row (the config column is exactly that config)."""
    from searchspace.config import SearchConfig

    return SearchConfig.from_dict(json.loads(row["config"]))


def in_background(fn) -> threading.Thread:
    """Run ``fn`` in a thread; the test re-raises its exception (if any) via ``t.error``."""
    def body():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            t.error = exc
    t = threading.Thread(target=body, daemon=True)
    t.error = None
    t.start()
    return t


def test_a_killed_trial_resumes_with_identical_record(cluster, tmp_path, capsys):
    c, _ = cluster
    killed: dict = {}
    seen: list[str] = []  # why a round ended without a kill (the failure message)
    # a trial of 12 epochs (patience = max_epochs: no stage ends early); if it still ends before the killer
    # finds its actor (a loaded machine), the same scenario runs again with 4x the steps per epoch
    for train_size in (512, 2048):
        shutil.rmtree(tmp_path / "a", ignore_errors=True)
        before = set(trial_actors())
        done = threading.Event()  # the search returned: the killer must not outlive it

        def kill_after_second_checkpoint():
            wait_until(lambda: done.is_set() or second_checkpoint(tmp_path / "a"), 300, "the trial's second checkpoint")
            if done.is_set():
                seen.append(f"train_size={train_size}: search returned before a second checkpoint")
                return
            actors = wait_until(lambda: done.is_set() or [a for k, a in trial_actors().items() if k not in before],
                                60, "the trial actor")
            if done.is_set():
                seen.append(f"train_size={train_size}: search returned before its actor was found; alive: "
                            f"{[(a['ActorClassName'], a['State']) for a in ray._private.state.actors().values()]}")
                return
            killed["pid"] = actors[0]["Pid"]
            os.kill(actors[0]["Pid"], signal.SIGKILL)

        killer = in_background(kill_after_second_checkpoint)
        rc = search(c, tmp_path, "a", "lambda_time=[0.5]", f"train_size={train_size}", "max_epochs=6", "patience=6",
                    "max_failures=1")
        done.set()
        killer.join(5)
        assert rc == 0 and killer.error is None
        if killed:
            break
    assert killed, f"the trial ended before it could be killed, twice: {seen}"
    capsys.readouterr()
    (row,) = trial_rows(tmp_path, "a")
    assert row["status"] == "completed"
    final = final_results(tmp_path, "a")[row["trial_id"]]
    assert final["resumed"] is True and final["worker_pid"] != killed["pid"]

    assert_equals_uninterrupted(row)


def assert_equals_uninterrupted(row: dict) -> None:
    """The row's record equals the same config run uninterrupted in this process (one thread, as Ray
    gives a 1-CPU trial)."""
    import torch

    from cost_models import derived_network_cost, search_cost_table
    from trainables import run_search

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = search_config(row)
        ref = run_search(cfg, search_cost_table(cfg), network_cost=lambda g: derived_network_cost(g, cfg)).to_record()
    finally:
        torch.set_num_threads(threads)
    for key in KEYS:
        got = json.loads(row[key]) if key in ("genotype", "stage1_choice") else row[key]
        assert got == ref[key], key


def test_b_cost_service_killed_mid_call_trial_completes_without_retry(cluster, tmp_path, capsys):
    """The cost actor marks each call in flight (probe_dir) and holds it while probe/hold exists: the test
    SIGKILLs it exactly then, releases the hold, and Ray's restarted actor answers the re-sent call."""
    from orchestrator.experiment import RunOptions, run_experiment
    from results.experiment_config import load_experiment_config

    c, _ = cluster
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "hold").write_text("")
    killed: dict = {}

    def kill_cost_service_in_call():
        marker = wait_until(lambda: next(iter(probe.glob("query-*")), None), 120, "a cost query in flight")
        pid = int(marker.name.split("-")[1])
        (actor,) = cost_actors("b")
        assert actor["Pid"] == pid  # the experiment's own actor holds the call
        killed.update(pid=pid, marker=marker.name)
        os.kill(pid, signal.SIGKILL)
        (probe / "hold").unlink()  # the restarted actor answers at once

    killer = in_background(kill_cost_service_in_call)
    exp = load_experiment_config(preset="smoke", storage=str(tmp_path), name="b",
                                 sets=[*TINY, "lambda_time=[1]", "lambda_energy=[1]", "max_failures=0"])
    summary = run_experiment(exp, RunOptions(address=c.address, cost_probe_dir=str(probe)))
    killer.join(5)
    assert killer.error is None and killed
    capsys.readouterr()
    assert (probe / killed["marker"]).exists()  # the killed process never answered that call
    stats = summary.cost_stats
    assert stats["pid"] != killed["pid"] and stats["calls"] >= 1  # a new process answered the trial
    (row,) = trial_rows(tmp_path, "b")
    assert row["status"] == "completed"  # with max_failures=0: the trial itself never failed
    final = final_results(tmp_path, "b")[row["trial_id"]]
    assert final["resumed"] is False  # one run of the trial, not a retry from a checkpoint
    # the costs the trial got from the restarted service are those of the in-process model
    from cost_models.network import network_cost
    from searchspace.genotype import Genotype
    from searchspace.layout import expand_genotype, network_spec

    cfg = search_config(row)
    local = network_cost(expand_genotype(Genotype.from_dict(json.loads(row["genotype"])), cfg.layers),
                         network_spec(cfg), cfg.profile, cfg.cost_batch, None)
    assert row["dram_time_us"] == pytest.approx(local.dram_time_us, rel=1e-12)
    assert row["dram_energy_uj"] == pytest.approx(local.dram_energy_uj, rel=1e-12)


def test_c_sigint_driver_then_resume(cluster, tmp_path):
    c, _ = cluster
    before_dead = set(trial_actors("DEAD"))
    cmd = [sys.executable, "-m", "hwnas.cli", "search", "--preset", "smoke", "--storage", str(tmp_path),
           "--name", "c", "--address", c.address, "--set", *TINY, "lambda_time=[0,1]", "max_concurrent_trials=1"]
    driver = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # one trial finished (its actor is gone) while the other runs: interrupt as a user's Ctrl-C would
        wait_until(lambda: driver.poll() is not None or set(trial_actors("DEAD")) - before_dead, 180,
                   "the first trial to finish")
        assert driver.poll() is None, driver.stdout.read()
        driver.send_signal(signal.SIGINT)
        out, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    first = {r["trial_id"]: r for r in trial_rows(tmp_path, "c")}
    done = {k: r for k, r in first.items() if r["status"] == "completed"}
    assert len(first) == 2 and len(done) == 1, out[-3000:]
    assert driver.returncode == 1, out[-3000:]  # a trial is incomplete: not a success

    # only the storage and the name: the rest comes from <storage>/c/experiment.json
    assert cli_main(["search", "--storage", str(tmp_path), "--resume", "c", "--address", c.address]) == 0
    after = {r["trial_id"]: r for r in trial_rows(tmp_path, "c")}
    assert set(after) == set(first) and {r["status"] for r in after.values()} == {"completed"}
    for trial_id, row in done.items():  # not redone: the very same record (its own wall time included);
        same = {k: v for k, v in after[trial_id].items() if k != "is_pareto"}  # the front now has both trials
        assert same == {k: v for k, v in row.items() if k != "is_pareto"}
    (resumed_id,) = set(after) - set(done)
    assert final_results(tmp_path, "c")[resumed_id]["phase"] == "done"


def cli_main(argv: list[str]) -> int:
    from hwnas import cli

    return cli.main(argv)


def test_d_removed_node_trial_runs_elsewhere(cluster, tmp_path, capsys):
    c, nodes = cluster
    removed: dict = {}

    def remove_node_of_trial():
        wait_until(lambda: second_checkpoint(tmp_path / "d"), 120, "the trial's second checkpoint")
        # the node that runs the trial, as the trial itself reports it with every epoch (node_id); the
        # actor table is not used: a short trial's actor can be gone before a lookup there lands
        node_id = wait_until(lambda: latest_node_id(tmp_path / "d"), 30, "the trial's reported node")
        node = next(n for n in nodes if n.node_id == node_id)
        removed["node_id"] = node.node_id
        c.remove_node(node)

    remover = in_background(remove_node_of_trial)
    assert search(c, tmp_path, "d", "lambda_time=[2]", "train_size=128", "max_epochs=6", "max_failures=2") == 0
    remover.join(30)
    assert remover.error is None and removed
    capsys.readouterr()
    (row,) = trial_rows(tmp_path, "d")
    assert row["status"] == "completed"
    final = final_results(tmp_path, "d")[row["trial_id"]]
    assert final["node_id"] != removed["node_id"]  # ran again elsewhere,
    assert final["resumed"] is True  # from its checkpoint (the second was registered before the removal),
    assert_equals_uninterrupted(row)  # and ends as an uninterrupted run does


def test_e_adaptive_scan_interrupted_then_restored(cluster, tmp_path):
    """The adaptive scan's searcher state survives the driver: SIGINT after the first trial, then --resume
    (Tuner.restore) runs exactly the rest of the scan, batches numbered on from where it stopped."""
    c, _ = cluster
    before_dead = set(trial_actors("DEAD"))
    sets = [*TINY, "lambda_time=[0,1]", "scan=adaptive", "scan_init=1", "scan_budget=4", "scan_batch=1",
            "scan_rounds=5", "scan_min_gain=0", "max_concurrent_trials=1"]
    cmd = [sys.executable, "-m", "hwnas.cli", "search", "--preset", "smoke", "--storage", str(tmp_path),
           "--name", "e", "--address", c.address, "--set", *sets]
    driver = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: driver.poll() is not None or set(trial_actors("DEAD")) - before_dead, 180,
                   "the first trial to finish")
        assert driver.poll() is None, driver.stdout.read()
        driver.send_signal(signal.SIGINT)
        out, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    first = trial_rows(tmp_path, "e")
    assert 1 <= sum(r["status"] == "completed" for r in first) < 4, out[-3000:]

    assert cli_main(["search", "--preset", "smoke", "--storage", str(tmp_path), "--resume", "e",
                     "--address", c.address, "--set", *sets]) == 0
    rows = sorted(trial_rows(tmp_path, "e"), key=lambda r: r["round"])
    assert len(rows) == 4 and {r["status"] for r in rows} == {"completed"}
    assert len({r["lambda_time"] for r in rows}) == 4  # no point run twice across the restart
    assert [r["round"] for r in rows] == [0, 0, 1, 2]
    assert {r["trial_id"] for r in first} <= {r["trial_id"] for r in rows}
    scan = pq.read_table(tmp_path / "e" / "scan.parquet").to_pylist()
    assert [r["round"] for r in scan] == [0, 1, 2] and [r["trials"] for r in scan] == [2, 3, 4]
    assert scan[-1]["stop_reason"] == "budget"


def test_f_sigkilled_driver_leaves_the_finished_trials_rows(cluster, tmp_path):
    """Rows reach storage as trials finish (orchestrator/live_results.py): a driver killed with SIGKILL
    (no chance to write anything at the end) leaves trials.parquet with the finished trial completed."""
    c, _ = cluster
    cmd = [sys.executable, "-m", "hwnas.cli", "search", "--preset", "smoke", "--storage", str(tmp_path),
           "--name", "f", "--address", c.address, "--set", *TINY, "lambda_time=[0,1]", "max_concurrent_trials=1"]
    driver = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    table = tmp_path / "f" / "trials.parquet"
    try:
        wait_until(lambda: driver.poll() is not None or table.exists(), 180, "the first trial's row")
        assert driver.poll() is None, driver.stdout.read()
        driver.send_signal(signal.SIGKILL)
        out, _ = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    rows = trial_rows(tmp_path, "f")
    # one trial at a time: Tune creates the second only when the first is done, so the table written
    # when the first finished holds it (a trial running then would be a row marked incomplete)
    assert rows and {r["status"] for r in rows} <= {"completed", "incomplete"}, out[-3000:]
    done = [r for r in rows if r["status"] == "completed"]
    assert len(done) == 1 and done[0]["accuracy"] is not None and json.loads(done[0]["genotype"])["cells"]
    record = json.loads((tmp_path / "f" / "experiment.json").read_text())
    assert record["finished_utc"] is None  # the driver never reached its final write: the live writer did it
