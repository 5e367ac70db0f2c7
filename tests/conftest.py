"""Shared fixtures. Others may add theirs below; keep each fixture self-contained."""
from __future__ import annotations

import os
import socket

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# dummy credentials of the moto S3 server (moto accepts any)
S3_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_server():
    """moto's threaded S3 server on 127.0.0.1 (a real HTTP endpoint, reached as any S3 store is).

    Yields its endpoint URL. Use ``s3_env`` in a test to point the AWS credential chain at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Dummy credentials + AWS_ENDPOINT_URL for this test; yields the endpoint URL."""
    for key, value in S3_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    return s3_server


@pytest.fixture
def s3_bucket(s3_env):
    """A fresh, empty bucket on the moto server; yields its name."""
    import uuid

    import boto3

    name = f"hwnas-test-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def no_aws_config(monkeypatch, tmp_path):
    """No credentials anywhere in the chain (env, files, instance metadata) for this test."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray (2 CPUs) for one test module, started the way ``hwnas search`` starts it (trial output
    forwarded to this driver). Dummy S3 credentials are in the environment *before* Ray starts: trial
    workers inherit them, as on a real cluster whose nodes carry credentials (the endpoint travels inside
    Tune's filesystem object). Run inside shared/tools/loopback-only."""
    ray = pytest.importorskip("ray")
    from orchestrator.experiment import ray_init_kwargs

    mp = pytest.MonkeyPatch()
    for key, value in S3_TEST_ENV.items():
        mp.setenv(key, value)
    mp.setenv("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, **ray_init_kwargs("local", "hwnas"))
    try:
        yield
    finally:
        ray.shutdown()
        mp.undo()
