"""The storage fails while an experiment runs (issue #24 case 2): no finished trial's row is lost.

- S3 (a moto server on 127.0.0.1 of this test alone) stopped after the first of three trials finished:
  `hwnas search` exits 3 with one error line naming ./hwnas-unsaved/<name>-<time>/, which holds every
  trial's row, the finished one completed with its record; no traceback; the table the live writer put
  on S3 before the stop still holds that trial.
- A local storage on a small tmpfs filled up after two of three trials: the same (the rows the full disk
  holds are never replaced by fewer). Needs a tmpfs mount (root, or a user+mount namespace); skipped
  where it cannot be made.
- ``keep_stored_rows``: a final table never has fewer trials, or fewer completed ones, than the stored one.
Each driver is a real `hwnas search` subprocess with its own local Ray. Run inside
shared/tools/loopback-only.
"""
from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from results.schema import make_row
from results.storage import Storage
from results.trial_rows import keep_stored_rows, results_tables, write_tables
from tests.conftest import S3_TEST_ENV, free_port
from tests.test_multinode import TINY, wait_until

ROOT = Path(__file__).resolve().parents[1]
THREE = [*TINY, "lambda_time=[0,1,2]", "max_concurrent_trials=1", "max_failures=0"]


def start_driver(cwd: Path, log: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "hwnas.cli", "search", *args]
    return subprocess.Popen(cmd, cwd=cwd, stdout=open(log, "w"), stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def finish(driver: subprocess.Popen, timeout: float = 300) -> int:
    try:
        return driver.wait(timeout=timeout)
    finally:
        if driver.poll() is None:
            driver.kill()


def assert_rows_kept(cwd: Path, log: Path, rc: int, name: str, completed_at_least: int) -> list[dict]:
    """Exit 3, one error line naming the local copy, no traceback; the copy holds every trial."""
    out = log.read_text()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert rc == 3, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    copies = sorted((cwd / "hwnas-unsaved").glob(f"{name}-*"))
    assert len(copies) == 1, out[-3000:]
    errors = [ln for ln in lines if ln.startswith("hwnas search: error:")]
    assert len(errors) == 1 and errors[0] == lines[-1] and str(copies[0]) in errors[0]
    rows = pq.read_table(copies[0] / "trials.parquet").to_pylist()
    assert len(rows) == 3
    done = [r for r in rows if r["status"] == "completed"]
    assert len(done) >= completed_at_least
    for r in done:
        assert r["accuracy"] is not None and r["genotype"] and r["dram_time_us"] > 0
    assert {"pareto.parquet", "points.parquet", "scan.parquet"} <= {p.name for p in copies[0].iterdir()}
    return rows


def completed_in(table_bytes: bytes | None) -> int:
    if not table_bytes:
        return 0
    return sum(r["status"] == "completed" for r in pq.read_table(io.BytesIO(table_bytes)).to_pylist())


def test_case2_s3_stopped_after_the_first_trial_keeps_every_row(tmp_path):
    from moto.server import ThreadedMotoServer

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    bucket = f"hwnas-fault-{uuid.uuid4().hex[:8]}"
    env = {**S3_TEST_ENV, "AWS_ENDPOINT_URL": endpoint}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    key = "prefix/s3fault/trials.parquet"

    def stored() -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    log = tmp_path / "driver.out"
    driver = start_driver(tmp_path, log, "--preset", "smoke", "--storage", f"s3://{bucket}/prefix", "--name", "s3fault",
                          "--set", *THREE, "max_epochs=3", "patience=3", env=env)
    stopped = False
    try:
        # the first trial is done and the live writer has put its row on S3: then the endpoint goes away
        wait_until(lambda: driver.poll() is not None or completed_in(stored()) >= 1, 180, "the first trial's row on S3")
        assert driver.poll() is None, log.read_text()[-3000:]
        server.stop()
        stopped = True
        rc = finish(driver)
    finally:
        if not stopped:
            server.stop()
        if driver.poll() is None:
            driver.kill()
    rows = assert_rows_kept(tmp_path, log, rc, "s3fault", completed_at_least=1)
    assert {r["status"] for r in rows} <= {"completed", "failed", "incomplete"}
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)  # the store is back
    server.start()
    try:
        assert completed_in(stored()) >= 1  # what reached S3 was never replaced by fewer rows
    finally:
        server.stop()


def test_case2_local_disk_full_after_two_trials_keeps_every_row(tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(res)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        log = tmp_path / "driver.out"
        driver = start_driver(tmp_path, log, "--preset", "smoke", "--storage", str(res), "--name", "full", "--set", *THREE,
                              "max_epochs=3", "patience=3")
        try:
            wait_until(lambda: driver.poll() is not None or "2 of 3 trials done" in log.read_text(), 180,
                       "two trials done")
            assert driver.poll() is None, log.read_text()[-3000:]
            fill(res / "filler")
            rc = finish(driver)
        finally:
            if driver.poll() is None:
                driver.kill()
        assert_rows_kept(tmp_path, log, rc, "full", completed_at_least=2)
        # the live writer's table from before the disk filled up is still there, never replaced by fewer
        assert sum(r["status"] == "completed" for r in pq.read_table(res / "full" / "trials.parquet").to_pylist()) >= 2
    finally:
        subprocess.run(["umount", "-l", str(res)], capture_output=True)


def fill(path: Path) -> None:
    """Write ``path`` until the filesystem is full (ENOSPC)."""
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return


def _row(i: int, status: str) -> dict:
    cfg = dict(seed=0, lambda_time=float(i), lambda_energy=0.0, profile="mobile-npu", dataset="synthetic")
    rec = dict(cfg, phase="done", accuracy=0.5, dram_time_us=1.0 + i, dram_energy_uj=1.0, genotype="{}")
    return make_row("e", f"t{i}", cfg, rec if status == "completed" else None, status=status,
                    error_message=None if status == "completed" else "x")


def test_stored_rows_are_never_replaced_by_fewer(tmp_path):
    folder = Storage.from_uri(tmp_path).check().child("e")
    write_tables(folder, *results_tables([_row(0, "completed"), _row(1, "completed"), _row(2, "incomplete")]))
    # a later run knows t0 only as incomplete, t1 not at all, t2 completed now
    rows = keep_stored_rows(folder, [_row(0, "incomplete"), _row(2, "completed")])
    assert sorted((r["trial_id"], r["status"]) for r in rows) == [
        ("t0", "completed"), ("t1", "completed"), ("t2", "completed")]
    assert keep_stored_rows(Storage.from_uri(tmp_path).child("none"), [_row(0, "failed")])[0]["status"] == "failed"
