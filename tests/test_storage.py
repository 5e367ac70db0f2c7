"""Storage: local folders and S3 (moto's threaded server on 127.0.0.1), Parquet round trips that replace,
and the preflight errors (unreachable endpoint, missing bucket, no credentials). No Ray."""
from __future__ import annotations

import time

import pyarrow as pa
import pytest

from results.storage import Storage, StorageError
from tests.conftest import free_port


def _table(n: int) -> pa.Table:
    return pa.table({"x": list(range(n))})


def test_parse_uris(tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    s = Storage.from_uri("s3://bucket/a/b/")
    assert (s.is_s3, s.bucket, s.prefix, s.root, s.uri) == (True, "bucket", "a/b", "bucket/a/b", "s3://bucket/a/b")
    assert s.endpoint_url is None
    assert s.child("exp").uri == "s3://bucket/a/b/exp"
    assert Storage.from_uri("s3://bucket").root == "bucket"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert Storage.from_uri("s3://b/p").endpoint_url == "http://127.0.0.1:1"
    assert Storage.from_uri("s3://b/p", endpoint_url="http://h:2").endpoint_url == "http://h:2"
    local = Storage.from_uri(str(tmp_path / "r"))
    assert not local.is_s3 and local.root == str(tmp_path / "r")
    assert Storage.from_uri(f"file://{tmp_path}/r").root == str(tmp_path / "r")
    monkeypatch.chdir(tmp_path)
    assert Storage.from_uri(None).root == str(tmp_path / "hwnas-results")
    with pytest.raises(StorageError, match="bucket"):
        Storage.from_uri("s3:///prefix")
    with pytest.raises(StorageError, match="gs"):
        Storage.from_uri("gs://bucket/x")
    with pytest.raises(StorageError, match="endpoint"):
        Storage.from_uri("s3://b/p", endpoint_url="localhost:9000")


def test_local_roundtrip_replaces(tmp_path):
    s = Storage.from_uri(tmp_path / "results").check().child("exp")
    s.write_table("trials.parquet", _table(3))
    s.write_table("trials.parquet", _table(2))
    assert s.read_table("trials.parquet").num_rows == 2
    assert sorted(p.name for p in (tmp_path / "results" / "exp").iterdir()) == ["trials.parquet"]
    with pytest.raises(FileNotFoundError, match="pareto.parquet"):
        s.read_table("pareto.parquet")


def test_local_not_a_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StorageError, match="cannot create"):
        Storage.from_uri(f / "sub").check()


def test_s3_roundtrip_replaces(s3_bucket, s3_env):
    s = Storage.from_uri(f"s3://{s3_bucket}/runs").check()
    exp = s.child("exp")
    exp.write_table("trials.parquet", _table(3))
    exp.write_table("trials.parquet", _table(5))
    assert exp.read_table("trials.parquet").num_rows == 5
    import boto3

    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_env).list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["runs/exp/trials.parquet"]
    path, fs = s.tune_storage()
    assert path == f"{s3_bucket}/runs" and fs is s.filesystem


def test_s3_explicit_endpoint_without_env(s3_bucket, s3_env, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    s = Storage.from_uri(f"s3://{s3_bucket}/p", endpoint_url=s3_env).check()
    s.write_table("t.parquet", _table(1))
    assert s.read_table("t.parquet").num_rows == 1


def test_s3_missing_bucket(s3_env):
    with pytest.raises(StorageError, match="does not exist"):
        Storage.from_uri("s3://no-such-bucket-hwnas/p").check()


def test_s3_unreachable_endpoint(s3_env):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.perf_counter()
    with pytest.raises(StorageError, match="cannot reach"):
        Storage.from_uri("s3://bucket/p", endpoint_url=endpoint).check()
    assert time.perf_counter() - t0 < 30


def test_s3_no_credentials(s3_bucket, s3_env, no_aws_config):
    with pytest.raises(StorageError, match="credentials"):
        Storage.from_uri(f"s3://{s3_bucket}/p").check()
