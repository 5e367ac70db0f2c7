"""Job submission against a real `ray start --head` (job API on the dashboard port, token auth as exported):
`ray job submit --working-dir . -- hwnas search ...` runs the experiment (hwnas resolved on the cluster's
PATH) and `hwnas submit` does the same and hands back the job's exit code. Run inside loopback-only.

The head runs as `ray start --head --block` in its own process group, stopped by that group's id
(never `ray stop`, which would stop every Ray on the machine)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import free_port
from tests.test_multinode import TINY, wait_until

pytest.importorskip("ray.dashboard")
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: ray, hwnas


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.setdefault("RAY_AUTH_MODE", "token")
    port, dash = free_port(), free_port()
    log = tmp_path_factory.mktemp("head") / "ray-start.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(BIN / "ray"), "start", "--head", "--block", f"--port={port}",
                                 "--num-cpus=1", "--num-gpus=0", "--include-dashboard=true",
                                 "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--disable-usage-stats"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    try:
        from ray.job_submission import JobSubmissionClient

        def job_api_up():
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                return JobSubmissionClient(address).list_jobs() is not None
            except Exception:  # noqa: BLE001 - not up yet
                return False

        wait_until(job_api_up, 120, "the job API of the head", interval=0.5)
        yield address, env
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


def test_ray_job_submit_runs_hwnas_search(head, tmp_path):
    address, env = head
    cmd = [str(BIN / "ray"), "job", "submit", "--address", address, "--working-dir", ".", "--",
           "hwnas", "search", "--preset", "smoke", "--storage", str(tmp_path), "--name", "job",
           "--set", *TINY, "lambda_time=[0]"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in (done.stdout + done.stderr).lower()
    rows = pq.read_table(tmp_path / "job" / "trials.parquet").to_pylist()
    assert len(rows) == 1 and rows[0]["status"] == "completed"


def test_hwnas_submit_exit_code_and_output(head, tmp_path):
    """`hwnas submit` streams the job's output and returns its exit code: 2 for a bad config on the cluster."""
    address, env = head
    cmd = [str(BIN / "hwnas"), "submit", "--address", address, "--", "--preset", "smoke", "--storage",
           str(tmp_path), "--set", "profile=no-such-processor"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    assert "no-such-processor" in done.stdout  # the job's own error line, streamed back
    assert done.stdout.splitlines()[0].startswith("raysubmit_")


def test_submit_entrypoint_and_address():
    from hwnas.cli.submit import DEFAULT_ADDRESS, entrypoint, job_address

    assert entrypoint(["--", "--preset", "smoke", "--set", "seeds=[0, 1]"]) == \
        "hwnas search --preset smoke --set 'seeds=[0, 1]'"
    assert entrypoint(["search", "--name", "x"]) == "hwnas search --name x"
    assert entrypoint(["--name", "x"], verbose=True) == "hwnas -v search --name x"  # hwnas -v submit
    assert job_address("http://head:8265") == "http://head:8265"
    assert job_address("ray://head:10001") == DEFAULT_ADDRESS
