"""One driver per experiment folder (issue #24 case 1; ``results/claim.py``).

- Two real ``hwnas search`` drivers (subprocesses, each with its own local Ray) started at the same moment
  with the same name and storage: one runs, the other exits 2 before Ray naming the winner's start time,
  host and pid; the folder keeps only the winner's trials and one Tune state.
- The claim itself, local (exclusive create + flock, a holder in another process, SIGKILLed) and on S3
  (moto on 127.0.0.1: If-None-Match / If-Match, a lease for claims from another host).
- ``--resume`` / ``--overwrite`` with a live claim are refused, with a stale one take it over.
Run inside shared/tools/loopback-only (the race starts Ray).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from results.claim import CLAIM_FILE, Claim, ExperimentInUse, Holder, stale_or_absent
from results.experiment_record import TUNE_STATE_FILE, ExperimentExists, claim_folder
from results.storage import Storage
from tests.test_multinode import TINY, wait_until

ROOT = Path(__file__).resolve().parents[1]


def driver(tmp_path: Path, name: str, log: str, *args: str) -> subprocess.Popen:
    out = open(tmp_path / log, "w")
    cmd = [sys.executable, "-m", "hwnas.cli", "search", "--preset", "smoke", "--storage",
           str(tmp_path / "res"), "--name", name, *args]
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def holder_process(folder: Path, name: str) -> subprocess.Popen:
    """Another process holding the claim on ``folder`` until its stdin closes; prints its pid when held."""
    code = ("import sys; from results.claim import Claim; from results.storage import Storage; "
            f"c = Claim.create(Storage.from_uri({str(folder.parent)!r}).child({name!r}), {name!r}); "
            "print('held', flush=True); sys.stdin.read(); c.release()")
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.stdout.readline().strip() == "held"
    return p


def read_claim(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not there yet, or being written
        return None


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ---------------------------------------------------------------------------------------------- the race
def test_case1_two_drivers_at_once_one_runs_the_other_exits_2_naming_it(tmp_path):
    a = driver(tmp_path, "race", "a.out", "--set", *TINY, "lambda_time=[0]")
    b = driver(tmp_path, "race", "b.out", "--set", *TINY, "lambda_time=[1]")
    claim = tmp_path / "res" / "race" / CLAIM_FILE
    try:
        held = wait_until(lambda: read_claim(claim), 120, "the winner's claim")
        rcs = {a.pid: a.wait(timeout=300), b.pid: b.wait(timeout=300)}
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
    winner = held["pid"]
    assert winner in rcs and rcs[winner] == 0
    loser = (b if winner == a.pid else a)
    assert rcs[loser.pid] == 2
    out = (tmp_path / ("b.out" if loser is b else "a.out")).read_text()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert "Traceback" not in out and "Started a local Ray" not in out  # refused before Ray
    assert lines[-1].startswith("hwnas search: error: experiment 'race'") and "in use" in lines[-1]
    assert held["started_utc"] in lines[-1] and f"host {held['host']}" in lines[-1] and f"pid {winner}" in lines[-1]
    folder = tmp_path / "res" / "race"
    assert len(list(folder.glob("experiment_state-*.json"))) == 1
    rows = pq.read_table(folder / "trials.parquet").to_pylist()
    want = 0.0 if winner == a.pid else 1.0
    assert [(r["lambda_time"], r["status"]) for r in rows] == [(want, "completed")]
    assert json.loads((folder / "experiment.json").read_text())["config"]["lambda_time"] == [want]
    assert not claim.exists()  # released at the end


# ---------------------------------------------------------------------------------------------- local
def test_local_claim_is_exclusive_and_held_by_a_live_process(tmp_path):
    folder = tmp_path / "res" / "x"
    storage = Storage.from_uri(tmp_path / "res")
    p = holder_process(folder, "x")
    try:
        with pytest.raises(ExperimentInUse, match=f"pid {p.pid}") as err:
            Claim.create(storage.child("x"), "x")
        assert socket.gethostname() in str(err.value) and "--resume x" in str(err.value)
        with pytest.raises(ExperimentInUse, match=f"pid {p.pid}"):
            Claim.take(storage.child("x"), "x")  # a resume while it runs
        assert not stale_or_absent(storage.child("x"))
        with pytest.raises(ExperimentInUse):
            claim_folder(storage, "x", overwrite=True)  # never moved aside under a live driver
        assert (folder / CLAIM_FILE).exists()
    finally:
        p.kill()  # SIGKILL: no release; the kernel drops its lock
        p.wait()
    assert json.loads((folder / CLAIM_FILE).read_text())["pid"] == p.pid  # left behind, stale
    assert stale_or_absent(storage.child("x"))
    claim = Claim.take(storage.child("x"), "x")
    assert claim.took_over.pid == p.pid
    assert json.loads((folder / CLAIM_FILE).read_text())["pid"] == os.getpid()
    claim.release()
    assert not (folder / CLAIM_FILE).exists()


def test_local_claims_created_at_once_have_one_winner(tmp_path):
    storage = Storage.from_uri(tmp_path)
    barrier = threading.Barrier(6)
    won, lost = [], []

    def attempt():
        barrier.wait(60)
        try:
            won.append(Claim.create(storage.child("y"), "y"))
        except ExperimentInUse as exc:
            lost.append(str(exc))

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1 and len(lost) == 5
    # every loser names the winner: the claim is never seen half-made (an empty file read as "? on host ?")
    for message in lost:
        assert won[0].holder.describe() in message, message
    assert sorted(p.name for p in (tmp_path / "y").iterdir()) == [CLAIM_FILE]  # no private file left behind
    won[0].release()


def _claim_at_once(root: str, barrier, results) -> None:
    """One process of the race below: claim ``<root>/y`` when all are ready, say what happened."""
    storage = Storage.from_uri(root)
    barrier.wait(60)
    try:
        claim = Claim.create(storage.child("y"), "y")
    except ExperimentInUse as exc:
        results.put(("lost", str(exc)))
        barrier.wait(60)
        return
    results.put(("won", claim.holder.describe()))
    barrier.wait(60)  # the winner holds the claim until every loser has read it
    claim.release()


def test_processes_racing_for_a_claim_never_see_it_half_made(tmp_path):
    """Four processes (truly parallel, unlike threads) claim one folder at once, ten times: one wins, and
    every loser's error names the winner. An exclusive create followed by a write left an empty claim for
    an instant; losers reading it then named "started ? on host ?" (CI saw it; 25 of 90 losers here)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for round_ in range(10):
        root = tmp_path / str(round_)
        losers = 3
        barrier, results = ctx.Barrier(losers + 1), ctx.Queue()
        procs = [ctx.Process(target=_claim_at_once, args=(str(root), barrier, results)) for _ in range(losers + 1)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(60)
        (winner,) = [m for kind, m in outcomes if kind == "won"]
        assert [m for kind, m in outcomes if kind == "lost" and winner not in m] == [], (winner, outcomes)


def test_resume_and_overwrite_take_over_a_stale_claim(tmp_path, caplog):
    storage = Storage.from_uri(tmp_path).check()
    folder = storage.child("z")
    folder.write_bytes(TUNE_STATE_FILE, b"tune state")
    gone = Holder(socket.gethostname(), dead_pid(), None, "2020-01-01T00:00:00Z")
    folder.write_bytes(CLAIM_FILE, gone.to_json())  # a driver SIGKILLed: its claim stays
    with pytest.raises(ExperimentExists):  # a new run still refuses a folder with results
        claim_folder(storage, "z")
    claim = claim_folder(storage, "z", resume=True)
    assert claim.took_over == gone and "took over the claim" in caplog.text and "2020-01-01T00:00:00Z" in caplog.text
    claim.release()
    folder.write_bytes(CLAIM_FILE, gone.to_json())
    claim = claim_folder(storage, "z", overwrite=True)
    archived = [p for p in tmp_path.iterdir() if p.name.startswith("z.replaced-")]
    assert len(archived) == 1 and (archived[0] / TUNE_STATE_FILE).exists()
    assert not (archived[0] / CLAIM_FILE).exists()  # the archive holds no claim
    assert json.loads((tmp_path / "z" / CLAIM_FILE).read_text())["command"] == "overwrite"
    claim.release()
    # a claim alone (a driver that died before writing anything) does not block a new run
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / CLAIM_FILE).write_bytes(gone.to_json())
    claim_folder(storage, "w").release()


# ---------------------------------------------------------------------------------------------- S3
def test_s3_claim_is_a_conditional_put_with_a_lease(s3_bucket, s3_env, monkeypatch):
    storage = Storage.from_uri(f"s3://{s3_bucket}/runs").check()
    folder = storage.child("e")
    first = Claim.create(folder, "e")
    with pytest.raises(ExperimentInUse, match=f"pid {os.getpid()}"):
        Claim.create(folder, "e")  # If-None-Match: the second create loses
    with pytest.raises(ExperimentInUse, match="renewed"):
        Claim.take(folder, "e")  # its driver (this process) runs
    first.release()
    assert folder.get_versioned(CLAIM_FILE) is None
    # the same host, a dead pid: stale at once
    folder.put_new(CLAIM_FILE, Holder(socket.gethostname(), dead_pid(), None, "t0").to_json())
    taken = Claim.take(folder, "e")
    assert taken.took_over.started_utc == "t0"
    taken.release()
    # another host: stale once it has gone the lease without renewal, by the store's clock
    monkeypatch.setenv("HWNAS_CLAIM_LEASE_S", "2")
    folder.put_new(CLAIM_FILE, Holder("elsewhere", 4242, None, "t1").to_json())
    with pytest.raises(ExperimentInUse, match="host elsewhere"):
        Claim.take(folder, "e")
    taken = wait_until(lambda: try_take(folder), 20, "the other host's lease to run out", interval=0.5)
    assert taken.took_over.host == "elsewhere"
    taken.release()


def try_take(folder):
    try:
        return Claim.take(folder, "e")
    except ExperimentInUse:
        return None


def test_s3_takeover_is_conditional_on_the_stale_object(s3_bucket, s3_env):
    """Two drivers that both judged a claim stale: the second one's If-Match on the old ETag fails."""
    storage = Storage.from_uri(f"s3://{s3_bucket}/runs").check()
    folder = storage.child("c")
    old = folder.put_new(CLAIM_FILE, Holder(socket.gethostname(), dead_pid(), None, "t0").to_json())
    assert folder.put_if_match(CLAIM_FILE, b"first", old) is not None
    assert folder.put_if_match(CLAIM_FILE, b"second", old) is None
    assert folder.get_versioned(CLAIM_FILE)[0] == b"first"
