"""The experiment's one Tune ``Tuner`` in ``<storage>/<name>``, and the resources of its trials.

What the Tuner runs comes from the experiment's scan strategy (``orchestrator/scan_strategy.py``: the
grid's ``param_space``, or the adaptive scan's searcher). Either way the trainable is
``make_trainable(options, resources)``: the orchestrator's ``TrialOptions`` travel through
``tune.with_parameters``, so a trial's config is exactly its ``SearchConfig`` dict. The callbacks: the
console's progress lines and ``LiveResults`` (the tables rewritten as trials finish). ``restore_tuner``
continues an interrupted experiment (``Tuner.restore``, errored trials rerun) with a fresh trainable,
i.e. this run's options (a new cost actor); the searcher comes back from Tune's state.
"""
from __future__ import annotations

import logging
from typing import Mapping

import ray
from ray import tune

from results.experiment_config import ExperimentConfig
from results.storage import Storage

from .live_results import LiveResults
from .progress import ProgressCallback
from .scan_strategy import AdaptiveScan, GridScan
from .trainable import TrialOptions, make_trainable

log = logging.getLogger("hwnas.search")

CHECKPOINTS_KEPT = 2  # per trial; the last one is what a restarted trial resumes from


def trial_resources(exp: ExperimentConfig) -> dict[str, float]:
    """{"cpu": ..., "gpu": 1} when the cluster has GPUs (gpus_per_trial=-1), CPU only otherwise."""
    gpus = exp.gpus_per_trial
    if gpus < 0:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
    res = {"cpu": exp.cpus_per_trial}
    if gpus > 0:
        res["gpu"] = gpus
    return res


def check_resources(resources: Mapping[str, float], local: bool) -> None:
    """A trial must fit on one node, or Tune waits for it forever. On a local Ray (this driver started it,
    nothing can add nodes) a trial that fits on no node is a ValueError (exit 2, before any trial); on a
    cluster (``--address``) it is a warning: an autoscaler may still add such a node."""
    problem = resource_problem(resources, [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")])
    if problem is None:
        return
    if local:
        raise ValueError(f"{problem}, so no trial could ever start; lower it (--set cpus_per_trial=N / "
                         "gpus_per_trial=N) or run on a cluster that has such a node (--address)")
    log.warning("%s; the trials wait until a node that large joins the cluster (an autoscaler may start one, "
                "otherwise they never start: stop with Ctrl-C and lower cpus_per_trial / gpus_per_trial)", problem)


def resource_problem(resources: Mapping[str, float], nodes: list[Mapping[str, float]]) -> str | None:
    """Why a trial needing ``resources`` ({"cpu", "gpu"}) fits on none of ``nodes`` (their resources), or
    None when one node has enough."""
    cpu, gpu = float(resources.get("cpu", 0.0)), float(resources.get("gpu", 0.0))
    if any(n.get("CPU", 0.0) >= cpu and n.get("GPU", 0.0) >= gpu for n in nodes):
        return None
    most_cpu = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    most_gpu = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    need = f"{cpu:g} CPUs" + (f" and {gpu:g} GPUs" if gpu else "")
    return (f"a trial needs {need} on one node (cpus_per_trial / gpus_per_trial), but the largest node of the "
            f"Ray cluster has {most_cpu:g} CPUs and {most_gpu:g} GPUs ({len(nodes)} node{'s' if len(nodes) != 1 else ''})")


def run_config(exp: ExperimentConfig, strategy: GridScan | AdaptiveScan, storage: Storage) -> tune.RunConfig:
    """Where the Tuner writes, how it retries and checkpoints, its callbacks; the strategy numbers the live
    tables' rows (an adaptive scan's suggestion batches) and says how many trials the console counts."""
    storage_path, storage_fs = storage.tune_storage()
    live = LiveResults(storage, exp.name)
    live.round_of = strategy.round_of
    return tune.RunConfig(
        name=exp.name, storage_path=storage_path, storage_filesystem=storage_fs,
        failure_config=tune.FailureConfig(max_failures=exp.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
        callbacks=[ProgressCallback(strategy.trial_count(), upper_bound=strategy.upper_bound), live], verbose=0)


def build_tuner(exp: ExperimentConfig, strategy: GridScan | AdaptiveScan, storage: Storage, options: TrialOptions,
                resources: Mapping[str, float]) -> tune.Tuner:
    """A new Tuner for the experiment, running its strategy's trials."""
    tune_config = strategy.tune_config(exp.max_concurrent_trials or None)  # the searcher first: round_of reads it
    return tune.Tuner(make_trainable(options, resources), param_space=strategy.param_space(),
                      run_config=run_config(exp, strategy, storage), tune_config=tune_config)


def restore_tuner(exp: ExperimentConfig, storage: Storage, options: TrialOptions,
                  resources: Mapping[str, float]) -> tune.Tuner:
    """The interrupted experiment's Tuner from its state in ``<storage>/<name>`` (ValueError if none)."""
    storage_path, storage_fs = storage.tune_storage()
    path = storage.path(exp.name)
    if not tune.Tuner.can_restore(path, storage_filesystem=storage_fs):
        raise ValueError(f"no Tune experiment state to resume under {storage.uri_of(exp.name)}")
    return tune.Tuner.restore(path, trainable=make_trainable(options, resources), resume_errored=True,
                              storage_filesystem=storage_fs)
