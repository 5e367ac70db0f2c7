"""Threads per trial (issue 12): trials x threads fill the cores without oversubscription.

The choice function, `hwnas trial --threads`, and (under loopback-only, real Ray) a trial's torch threads
set from the CPU slots Ray assigned it.
"""
from __future__ import annotations

import os

import pytest
import torch

from hwnas import cli
from trainables.threads import trial_threads, usable_cores


@pytest.mark.parametrize("slots, cores, threads", [
    (1, 2, 1),  # the presets: one slot per trial; 4 trials on 2 cores run two at a time, one thread each
    (2, 2, 2),  # one trial holding the whole machine
    (4, 8, 4),  # two such trials fill 8 cores
    (3.5, 8, 3),  # a fractional slot count rounds down: never more threads than slots
    (0.5, 2, 1),  # torch cannot run on less than one thread
    (16, 4, 4),  # more slots than the machine's cores (a fake multi-node cluster on one host): the cores
])
def test_one_thread_per_slot_within_the_cores(slots, cores, threads):
    assert trial_threads(slots, cores) == threads


def test_threads_times_concurrent_trials_never_exceed_the_cores():
    for cores in (1, 2, 4, 8, 16):
        for slots in (1, 2, 3, 4):
            concurrent = max(1, cores // slots)  # what Tune runs at once with `slots` CPUs per trial
            assert concurrent * trial_threads(slots, cores) <= max(cores, concurrent)


@pytest.mark.parametrize("slots, cores, message", [
    (0, 2, "CPU slots must be positive"), (-1, 2, "CPU slots must be positive"),
    (float("nan"), 2, "CPU slots must be positive"), (1, 0, "cores must be at least 1"),
])
def test_bad_counts_are_refused(slots, cores, message):
    with pytest.raises(ValueError, match=message):
        trial_threads(slots, cores)


def test_usable_cores_is_what_this_process_may_run_on():
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_trial_threads_flag(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        rc = cli.main(["trial", "--preset", "smoke", "--set", "dataset=synthetic", "train_size=32", "val_size=16",
                       "test_size=16", "max_epochs=1", "patience=1", "layers=1", "channels=2", "nodes=1",
                       "--threads", "1", "--out", str(tmp_path / "r.json")])
        assert rc == 0 and (tmp_path / "r.json").exists()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_negative_threads_is_one_line_and_runs_nothing(tmp_path, capsys):
    rc = cli.main(["trial", "--preset", "smoke", "--threads", "-2", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--threads -2" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r.json").exists()


def test_a_ray_trial_uses_its_assigned_cpus_as_threads():
    """Real Ray (run under shared/tools/loopback-only): a worker holding N CPU slots runs torch on N threads."""
    ray = pytest.importorskip("ray")
    from orchestrator.trainable import trial_threads_from_ray

    @ray.remote
    def threads_seen() -> tuple[int, int]:
        return trial_threads_from_ray(), torch.get_num_threads()

    if ray.is_initialized():
        ray.shutdown()
    # address="local": a fresh Ray of its own, never a cluster an earlier test or `ray start` left behind
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        one = ray.get(threads_seen.options(num_cpus=1).remote())
        two = ray.get(threads_seen.options(num_cpus=2).remote())
    finally:
        ray.shutdown()
    cores = usable_cores()
    assert one == (1, 1)
    assert two == (min(2, cores), min(2, cores))
