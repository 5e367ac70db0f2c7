"""`hwnas search` fails with one clear error, before Ray is contacted and before any trial, on a bad
config key, an unknown profile, an unreachable S3 endpoint, a missing bucket, missing credentials."""
from __future__ import annotations

import pytest

from hwnas import cli
from orchestrator import experiment
from tests.conftest import free_port


@pytest.fixture
def no_trials(monkeypatch):
    """Any attempt to reach Ray or build the Tuner fails the test."""
    def forbidden(*a, **k):
        raise AssertionError("reached Ray / the Tuner despite a preflight error")

    monkeypatch.setattr(experiment, "connect", forbidden)
    monkeypatch.setattr(experiment, "build_tuner", forbidden)


def run(capsys, *argv) -> tuple[int, str]:
    rc = cli.main(["search", "--preset", "smoke", *argv])
    return rc, capsys.readouterr().err


def test_bad_config_key(no_trials, capsys, tmp_path):
    rc, err = run(capsys, "--storage", str(tmp_path), "--set", "max_epoch=3")
    assert rc == 2 and "max_epoch" in err and "3" in err
    rc, err = run(capsys, "--storage", str(tmp_path), "--set", "lambda_time=[0,fast]")
    assert rc == 2 and "lambda_time" in err and "fast" in err
    assert not (tmp_path / "smoke").exists()


def test_unknown_profile(no_trials, capsys, tmp_path):
    rc, err = run(capsys, "--storage", str(tmp_path), "--set", "profiles=[no-such-processor]")
    assert rc == 2 and "no-such-processor" in err


def test_unreachable_endpoint(no_trials, capsys, s3_env):
    endpoint = f"http://127.0.0.1:{free_port()}"
    rc, err = run(capsys, "--storage", "s3://bucket/runs", "--endpoint-url", endpoint)
    assert rc == 2 and "cannot reach" in err and endpoint in err


def test_missing_bucket(no_trials, capsys, s3_env):
    rc, err = run(capsys, "--storage", "s3://no-such-bucket-hwnas/runs")
    assert rc == 2 and "no-such-bucket-hwnas" in err and "does not exist" in err


def test_no_credentials(no_trials, capsys, s3_bucket, no_aws_config):
    rc, err = run(capsys, "--storage", f"s3://{s3_bucket}/runs")
    assert rc == 2 and "credentials" in err


def test_help_explains_every_flag(capsys):
    for cmd, flags in (("search", ["--config", "--preset", "--storage", "--name", "--address", "--set", "--endpoint-url"]),
                       ("pareto", ["--format", "--out", "--plot", "--endpoint-url"])):
        with pytest.raises(SystemExit):
            cli.main([cmd, "--help"])
        out = capsys.readouterr().out
        for flag in flags:
            assert flag in out
