"""The driver stopped, resumed, or asked for the impossible (issue #24 cases 3, 6, 7, 9), each with a real
`hwnas search` subprocess and its own local Ray:

- SIGTERM (kill, timeout, docker stop, a scheduler) is handled as Ctrl-C: trials stopped, tables written,
  exit 1, `hwnas search --resume NAME` printed, no Ray stack dump; the resume finishes the rest and warns
  only about the keys given (`--set lambda_time=[9]`); a resume with nothing left changes nothing.
- SIGINT: the console says "interrupted", never "finished" nor Tune's `Tuner.restore(...)`.
- cpus_per_trial larger than the local Ray: exit 2 before any trial, instead of waiting forever.
- A trial checkpoint that Tune's state points to overwritten with garbage: the resume uses the trial's
  earlier checkpoint, with one warning naming the real file.
Run inside shared/tools/loopback-only.
"""
from __future__ import annotations

import logging
import re
import signal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from results.claim import CLAIM_FILE
from tests.test_faults import second_checkpoint
from tests.test_multinode import TINY, final_results, wait_until
from tests.test_storage_faults import finish, start_driver

TWO = [*TINY, "lambda_time=[0,1]", "max_concurrent_trials=1", "max_epochs=4", "patience=4", "train_size=64"]


def lines_of(log: Path) -> list[str]:
    return [ln for ln in log.read_text().splitlines() if ln.strip()]


def interrupted_run(tmp_path: Path, name: str, sig: signal.Signals, log: Path) -> int:
    """`hwnas search` of two trials, one at a time, sent ``sig`` once the first is done."""
    driver = start_driver(tmp_path, log, "--preset", "smoke", "--storage", str(tmp_path / "res"), "--name", name,
                          "--set", *TWO)
    try:
        wait_until(lambda: driver.poll() is not None or "1 of 2 trials done" in log.read_text(), 180,
                   "the first trial")
        assert driver.poll() is None, log.read_text()[-3000:]
        driver.send_signal(sig)
        return finish(driver, 120)
    finally:
        if driver.poll() is None:
            driver.kill()


def assert_interrupted(tmp_path: Path, name: str, log: Path, rc: int, sig: str) -> list[dict]:
    out = log.read_text()
    lines = lines_of(log)
    assert rc == 1, out[-3000:]
    for noise in ("Traceback", "Tuner.restore", f"*** {sig} received", "INFO hwnas.search: finished"):
        assert noise not in out, (noise, out[-3000:])
    assert lines[-1] == (f"hwnas search: interrupted by {sig}; the tables hold the trials so far; continue with: "
                         f"hwnas search --resume {name} --storage {tmp_path / 'res'}")
    assert f"WARNING hwnas.search: interrupted by {sig}" in out
    rows = pq.read_table(tmp_path / "res" / name / "trials.parquet").to_pylist()
    # the second trial is incomplete, or (one trial at a time: Tune creates the next when a slot frees) the
    # signal came before Tune created it; then it has no row and the summary counts it as not started
    statuses = sorted(r["status"] for r in rows)
    assert statuses in (["completed", "incomplete"], ["completed"]), out[-3000:]
    summary = f"experiment {name}: {len(rows)} trials (1 completed, 0 failed, {len(rows) - 1} incomplete" + \
        ("" if len(rows) == 2 else ", 1 not started")
    assert summary in out, out[-3000:]
    assert not (tmp_path / "res" / name / CLAIM_FILE).exists()  # released: a resume may start at once
    return rows


def test_case7_sigterm_is_handled_as_ctrl_c_then_resume(tmp_path):
    log = tmp_path / "a.out"
    rc = interrupted_run(tmp_path, "term", signal.SIGTERM, log)
    first = assert_interrupted(tmp_path, "term", log, rc, "SIGTERM")
    done = next(r for r in first if r["status"] == "completed")

    # case 9: --resume with one key given warns about that key only; the saved settings apply
    log2 = tmp_path / "b.out"
    rc = finish(start_driver(tmp_path, log2, "--storage", str(tmp_path / "res"), "--resume", "term",
                             "--set", "lambda_time=[9]"))
    out = log2.read_text()
    assert rc == 0, out[-3000:]
    (warning,) = [ln for ln in lines_of(log2) if "ignored from the command line" in ln]
    assert warning.endswith("ignored from the command line: lambda_time")
    rows = {r["trial_id"]: r for r in pq.read_table(tmp_path / "res" / "term" / "trials.parquet").to_pylist()}
    assert {r["status"] for r in rows.values()} == {"completed"} and {r["lambda_time"] for r in rows.values()} == {0.0, 1.0}
    assert {k: v for k, v in rows[done["trial_id"]].items() if k != "is_pareto"} == \
        {k: v for k, v in done.items() if k != "is_pareto"}  # the finished trial was not redone

    # case 9: a resume with nothing left to run changes no table (scan.parquet's seconds included)
    scan = pq.read_table(tmp_path / "res" / "term" / "scan.parquet")
    trials = pq.read_table(tmp_path / "res" / "term" / "trials.parquet")
    rc = finish(start_driver(tmp_path, tmp_path / "c.out", "--storage", str(tmp_path / "res"), "--resume", "term"))
    assert rc == 0, (tmp_path / "c.out").read_text()[-3000:]
    assert pq.read_table(tmp_path / "res" / "term" / "scan.parquet").equals(scan)
    assert pq.read_table(tmp_path / "res" / "term" / "trials.parquet").equals(trials)


def test_case9_ctrl_c_says_interrupted_and_how_to_resume(tmp_path):
    log = tmp_path / "a.out"
    rc = interrupted_run(tmp_path, "int", signal.SIGINT, log)
    assert_interrupted(tmp_path, "int", log, rc, "SIGINT")


# ---------------------------------------------------------------------------------------------- case 6
def test_case6_more_cpus_per_trial_than_the_local_ray_has_exits_2_before_any_trial(tmp_path):
    log = tmp_path / "a.out"
    driver = start_driver(tmp_path, log, "--preset", "smoke", "--storage", str(tmp_path / "res"), "--name", "big",
                          "--set", *TINY,
                          "cpus_per_trial=64")
    rc = finish(driver, 180)  # it used to wait forever
    out = log.read_text()
    assert rc == 2, out[-3000:]
    assert "Traceback" not in out
    assert lines_of(log)[-1].startswith("hwnas search: error: a trial needs 64 CPUs on one node")
    folder = tmp_path / "res" / "big"
    assert not list(folder.glob("search_trainable_*")) and not (folder / "experiment.json").exists()
    assert not (folder / CLAIM_FILE).exists()


def test_case6_on_a_cluster_it_is_a_warning(monkeypatch, caplog):
    from orchestrator import tuner

    nodes = [{"Alive": True, "Resources": {"CPU": 1.0}}, {"Alive": True, "Resources": {"CPU": 2.0, "GPU": 1.0}},
             {"Alive": False, "Resources": {"CPU": 64.0}}]
    monkeypatch.setattr(tuner.ray, "nodes", lambda: nodes)
    tuner.check_resources({"cpu": 2.0, "gpu": 1.0}, local=True)  # fits the second node
    with pytest.raises(ValueError, match="needs 4 CPUs on one node.*largest node .* 2 CPUs and 1 GPUs"):
        tuner.check_resources({"cpu": 4.0}, local=True)
    with pytest.raises(ValueError, match="1 CPUs and 2 GPUs"):
        tuner.check_resources({"cpu": 1.0, "gpu": 2.0}, local=True)
    caplog.set_level(logging.WARNING, logger="hwnas")
    tuner.check_resources({"cpu": 4.0}, local=False)  # --address: an autoscaler may add such a node
    assert "needs 4 CPUs" in caplog.text and "autoscaler" in caplog.text


# ---------------------------------------------------------------------------------------------- case 3
def pointed_checkpoint(exp_dir: Path) -> Path:
    """The trial checkpoint the newest Tune experiment state names (its last reported checkpoint)."""
    state = max(exp_dir.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    names = re.findall(r'checkpoint_dir_name\\?": \\?"(checkpoint_\d{6})', state.read_text())
    (path,) = exp_dir.glob(f"search_trainable_*/{names[-1]}")
    return path / "search.ckpt"


def test_case3_a_corrupt_checkpoint_resumes_from_the_earlier_one(tmp_path):
    log = tmp_path / "a.out"
    sets = [*TINY, "lambda_time=[0]", "max_epochs=6", "patience=6", "train_size=256"]
    driver = start_driver(tmp_path, log, "--preset", "smoke", "--storage", str(tmp_path / "res"), "--name", "ck",
                          "--set", *sets)
    exp_dir = tmp_path / "res" / "ck"
    try:
        wait_until(lambda: driver.poll() is not None or second_checkpoint(exp_dir), 180, "two checkpoints")
        assert driver.poll() is None, log.read_text()[-3000:]
        driver.send_signal(signal.SIGINT)
        assert finish(driver, 120) == 1, log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
    pointed = pointed_checkpoint(exp_dir)
    kept = sorted(pointed.parent.parent.glob("checkpoint_*"))
    assert kept[0] < pointed.parent, "Tune kept no earlier checkpoint"
    # every checkpoint but the oldest kept is damaged, the one Tune's state names among them: whichever of
    # them Tune hands back (a trial stopped mid-report can leave one on disk that the state does not name
    # yet), the trial must refuse it and resume from the oldest
    bad = [ckpt / "search.ckpt" for ckpt in kept[1:]]
    for path in bad:
        path.write_bytes(b"garbage\n")
    intact = kept[0] / "search.ckpt"

    log2 = tmp_path / "b.out"
    rc = finish(start_driver(tmp_path, log2, "--storage", str(tmp_path / "res"), "--resume", "ck"))
    out = log2.read_text()
    assert rc == 0, out[-3000:]
    warnings = [ln for ln in lines_of(log2) if "search.ckpt" in ln and "WARNING" in ln]
    assert len(warnings) == 1, (bad, out[-3000:])
    assert any(f"checkpoint {path} is unreadable" in warnings[0] for path in bad), (bad, warnings[0])
    assert f"resumes from the earlier checkpoint {intact}" in warnings[0]
    assert "weights_only" not in out and "/tmp/hwnas-trial" not in out and "Traceback" not in out
    (row,) = pq.read_table(exp_dir / "trials.parquet").to_pylist()
    assert row["status"] == "completed"
    assert final_results(tmp_path / "res", "ck")[row["trial_id"]]["resumed"] is True


def test_case3_no_intact_checkpoint_starts_afresh_and_names_the_file(tmp_path, monkeypatch, caplog):
    """restore_checkpoint alone (no Ray): the newest checkpoint garbage, the earlier one cut short."""
    from ray import tune

    from orchestrator import trainable
    from tests.search_helpers import tiny
    from trainables.state import SearchState, save_checkpoint

    cfg = tiny()
    trial = tmp_path / "trial"
    for i in range(3):
        (trial / f"checkpoint_00000{i}").mkdir(parents=True)
        save_checkpoint(trial / f"checkpoint_00000{i}" / "search.ckpt", SearchState(), cfg)
    (trial / "checkpoint_000002" / "search.ckpt").write_bytes(b"garbage\n")
    good = (trial / "checkpoint_000001" / "search.ckpt").read_bytes()
    monkeypatch.setattr(trainable.tune, "get_checkpoint", lambda: tune.Checkpoint(str(trial / "checkpoint_000002")))
    caplog.set_level(logging.WARNING)
    target = tmp_path / "work" / "search.ckpt"
    target.parent.mkdir()
    assert trainable.restore_checkpoint(target, cfg) is True and target.read_bytes() == good
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(trial / "checkpoint_000002" / "search.ckpt") in line and "checkpoint_000001" in line
    assert "weights_only" not in line
    caplog.clear()
    for i in (0, 1):
        path = trial / f"checkpoint_00000{i}" / "search.ckpt"
        path.write_bytes(path.read_bytes()[:100])
    assert trainable.restore_checkpoint(target, cfg) is False and not target.exists()
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(trial / "checkpoint_000002" / "search.ckpt") in line and "starts afresh" in line
    assert "nor 2 earlier ones" in line


# ---------------------------------------------------------------------------------------------- case 9
@pytest.mark.parametrize("hooked, code", [(True, 7), (False, 0)])
def test_a_sigterm_exit_python_cannot_raise_ends_the_trial_process_quietly(tmp_path, hooked, code):
    """Ray's SIGTERM handler raises SystemExit; landing in a weakref callback (as it did when a stopped run
    shut a trial's worker down), Python ignores it with a traceback that Ray forwards to the console. A
    trial's worker (``exit_on_ignored_sigterm``) exits at once instead, and says nothing."""
    import subprocess
    import sys

    script = tmp_path / "worker.py"
    script.write_text(
        "import sys\n"
        f"if {hooked}:\n"
        "    from orchestrator.trainable import exit_on_ignored_sigterm\n"
        "    exit_on_ignored_sigterm(); exit_on_ignored_sigterm()  # twice: a reused worker\n"
        "class Dying:\n"
        "    def __del__(self):\n"
        "        raise SystemExit(7)\n"
        "Dying()\n"
        "print('still running')\n")
    ROOT = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == code, done.stderr
    if hooked:
        assert done.stdout == "" and "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    else:  # what Python does without the hook: the traceback, and the process goes on
        assert "Exception ignored" in done.stderr and done.stdout == "still running\n"
