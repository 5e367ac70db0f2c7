"""One experiment on Ray Tune: preflight, the Tuner over the scan, progress, and the results tables.

``run_experiment`` is what ``hwnas search`` calls. Order matters: the config is already typed; the
profiles and the storage are checked before Ray is even contacted, the cost service is started (or
found) before the Tuner runs, and only then do trials start. Tune's own storage is the experiment's
folder, so checkpoints and experiment state live beside ``trials.parquet`` and ``pareto.parquet``.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import pyarrow as pa

from .experiment_config import ExperimentConfig
from .results import COMPLETED, FAILED, INCOMPLETE, front_of, make_row, rows_to_table
from .storage import Storage

log = logging.getLogger("hwnas.search")

TRIALS_FILE = "trials.parquet"
PARETO_FILE = "pareto.parquet"


@dataclass(frozen=True)
class ExperimentSummary:
    name: str
    uri: str  # <storage>/<name>
    trials: pa.Table
    front: pa.Table
    seconds: float
    scan: pa.Table | None = None  # scan.parquet: hypervolume per round (orchestrator/scan.py)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(self.trials.column("status").to_pylist()))

    def describe(self) -> str:
        c = self.counts
        lines = [f"experiment {self.name}: {self.trials.num_rows} trials ({c.get(COMPLETED, 0)} completed, "
                 f"{c.get(FAILED, 0)} failed, {c.get(INCOMPLETE, 0)} incomplete) in {self.seconds:.0f}s",
                 f"  trials: {self.uri}/{TRIALS_FILE}", f"  front ({self.front.num_rows}): {self.uri}/{PARETO_FILE}"]
        for r in self.front.to_pylist():
            lines.append(f"    {r['trial_id']}: seed={r['seed']} lambda_time={r['lambda_time']:g} "
                         f"lambda_energy={r['lambda_energy']:g} accuracy={r['accuracy']:.4f} "
                         f"dram_time_us={r['dram_time_us']:.4g} dram_energy_uj={r['dram_energy_uj']:.4g}")
        if self.scan is not None:
            from .scan import describe_round
            from .seedstats import describe_points, point_stats

            lines += [f"  {describe_round(r)}" for r in self.scan.to_pylist()]
            points = point_stats(self.trials)
            if any(n > 1 for n in points.column("completed").to_pylist()):  # mean +- std only means something then
                lines.append("  per lambda point over seeds (* = on the front of the means):")
                lines += describe_points(points)
        for r in self.trials.to_pylist():
            if r["status"] == FAILED:
                lines.append(f"  failed {r['trial_id']}: {r['error_message']}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- preflight
def check_profiles(exp: ExperimentConfig) -> None:
    """Unknown processor profiles fail here, before Ray and before any trial."""
    from cost_models.profile import load_profile

    for name in exp.profile_list:
        load_profile(name)  # ValueError naming the profile


def cost_service_available() -> bool:
    try:
        from . import cost_service  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name == "orchestrator.cost_service":
            return False
        raise
    return True


def connect(address: str | None, namespace: str) -> None:
    """Connect to Ray (``address`` as ``ray.init`` takes it; None = a local cluster), unless connected."""
    import ray

    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"namespace": namespace, "log_to_driver": True}
    # Inside a Ray job the cluster's address is in RAY_ADDRESS; otherwise start a fresh local Ray rather
    # than silently joining whatever cluster a stale /tmp/ray/ray_current_cluster points at.
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    kwargs["address"] = address
    if address == "local":
        kwargs["include_dashboard"] = False
    ray.init(**kwargs)


def trial_resources(exp: ExperimentConfig) -> dict[str, float]:
    """{"cpu": ..., "gpu": 1} when the cluster has GPUs (gpus_per_trial=-1), CPU only otherwise."""
    import ray

    gpus = exp.gpus_per_trial
    if gpus < 0:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
    res = {"cpu": exp.cpus_per_trial}
    if gpus > 0:
        res["gpu"] = gpus
    return res


# ---------------------------------------------------------------------------------------------- the scan
def build_param_space(exp: ExperimentConfig, options: Mapping[str, Any]) -> dict[str, Any]:
    """Tune's param_space: the base search config plus the scan dimensions (grid: tune.grid_search each).

    The one place the scan is constructed; ``exp.grid_points()`` lists the same points without Ray.
    """
    from ray import tune

    from .trainable import RESERVED_KEY

    if exp.scan != "grid":
        raise ValueError(f"scan {exp.scan!r} is not implemented by build_param_space")
    space: dict[str, Any] = exp.search.to_dict()
    space.update(seed=tune.grid_search(list(exp.seeds)), lambda_time=tune.grid_search(list(exp.lambda_time)),
                 lambda_energy=tune.grid_search(list(exp.lambda_energy)),
                 profile=tune.grid_search(list(exp.profile_list)))
    space[RESERVED_KEY] = dict(options)
    return space


def _progress_callback():
    from ray import tune

    class Progress(tune.Callback):
        """One log line per trial epoch: trials by state, the trial's point, stage, epoch, accuracy, cost."""

        def _states(self, trials) -> str:
            c = Counter(t.status for t in trials)
            return " ".join(f"{k.lower()}={v}" for k, v in sorted(c.items()))

        def on_trial_start(self, iteration, trials, trial, **info):
            log.info("[%s] started %s (%s)", trial.trial_id, _point(trial.config), self._states(trials))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if result.get("phase") == "done":
                log.info("[%s] done: accuracy=%.4f dram_time_us=%.4g dram_energy_uj=%.4g (%s)", trial.trial_id,
                         result.get("accuracy", float("nan")), result.get("dram_time_us", float("nan")),
                         result.get("dram_energy_uj", float("nan")), self._states(trials))
                return
            shown = [(label, result.get(key)) for label, key in _PROGRESS_KEYS]
            log.info("[%s] %s %s epoch %s: %s (%s)", trial.trial_id, _point(trial.config), result.get("phase"),
                     result.get("epoch"), " ".join(f"{k}={_fmt(v)}" for k, v in shown if v is not None),
                     self._states(trials))

        def on_trial_error(self, iteration, trials, trial, **info):
            log.warning("[%s] failed %s (%s)", trial.trial_id, _point(trial.config), self._states(trials))

    return Progress()


# (label, metric) shown per epoch: stage progress, accuracy, expected DRAM cost of the supernet
_PROGRESS_KEYS = (("train_loss", "train_loss"), ("train_acc", "train_acc"), ("val_acc", "val_acc"),
                  ("E[dram_time_us]", "expected_dram_time_us"), ("E[dram_energy_uj]", "expected_dram_energy_uj"))


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) else str(v)


def _point(config: Mapping[str, Any]) -> str:
    return (f"seed={config.get('seed')} lambda_time={config.get('lambda_time')} "
            f"lambda_energy={config.get('lambda_energy')} profile={config.get('profile')}")


def build_tuner(exp: ExperimentConfig, storage: Storage, options: Mapping[str, Any], resume: bool = False):
    from ray import tune

    from .trainable import search_trainable

    trainable = tune.with_resources(search_trainable, trial_resources(exp))
    storage_path, storage_fs = storage.tune_storage()
    if resume:
        path = storage.path(exp.name)
        if not tune.Tuner.can_restore(path, storage_filesystem=storage_fs):
            raise ValueError(f"no Tune experiment state to resume under {storage.uri_of(exp.name)}")
        return tune.Tuner.restore(path, trainable=trainable, resume_errored=True, storage_filesystem=storage_fs)
    run_config = tune.RunConfig(
        name=exp.name, storage_path=storage_path, storage_filesystem=storage_fs,
        failure_config=tune.FailureConfig(max_failures=exp.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        callbacks=[_progress_callback()], verbose=0)
    tune_config = tune.TuneConfig(max_concurrent_trials=exp.max_concurrent_trials or None)
    return tune.Tuner(trainable, param_space=build_param_space(exp, options), run_config=run_config,
                      tune_config=tune_config)


# ---------------------------------------------------------------------------------------------- results
def error_text(error: BaseException | None) -> str | None:
    """The failure as one line: the original exception's type and message (not Ray's wrapper)."""
    if error is None:
        return None
    cause = getattr(error, "cause", None) or error
    msg = str(cause).strip()
    text = f"{type(cause).__name__}: {msg}" if msg else type(cause).__name__
    return text[-4000:]


def _decode(v: Any) -> Any:
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def result_rows(experiment: str, results: Iterable[Any]) -> list[dict[str, Any]]:
    """Tune ``Result``s (``.metrics``, ``.config``, ``.error``) -> result rows; every trial gives one row."""
    from .trainable import RESERVED_KEY

    rows = []
    for i, r in enumerate(results):
        metrics = dict(r.metrics or {})
        config = {k: v for k, v in (r.config or metrics.get("config") or {}).items() if k != RESERVED_KEY}
        trial_id = metrics.get("trial_id") or f"trial_{i:05d}"
        completed = metrics.get("phase") == "done" and "genotype" in metrics and r.error is None
        record = {k: _decode(v) for k, v in metrics.items()} if completed else None
        if record and isinstance(record.get("config"), dict):
            config = record["config"]
        status = COMPLETED if completed else (FAILED if r.error is not None else INCOMPLETE)
        msg = error_text(r.error) if r.error is not None else (None if completed else "stopped without a final record")
        rows.append(make_row(experiment, trial_id, config, record, status=status, error_message=msg))
    return rows


def write_results(storage: Storage, name: str, rows: list[dict[str, Any]]) -> tuple[pa.Table, pa.Table]:
    """Both tables of an experiment, replacing earlier ones (never appending), and the per-point seed
    statistics (points.parquet, orchestrator/seedstats.py)."""
    from .seedstats import POINTS_FILE, point_stats

    table = rows_to_table(rows)
    front = front_of(table)
    exp_dir = storage.child(name)
    exp_dir.write_table(TRIALS_FILE, table)
    exp_dir.write_table(PARETO_FILE, front)
    exp_dir.write_table(POINTS_FILE, point_stats(table))
    return table, front


# ---------------------------------------------------------------------------------------------- entry
def preflight(exp: ExperimentConfig) -> Storage:
    """Everything that can fail without running a trial: profiles and storage (StorageError/ValueError)."""
    check_profiles(exp)
    return Storage.from_uri(exp.storage, exp.endpoint_url or None).check()


def run_experiment(exp: ExperimentConfig, address: str | None = None, resume: bool = False) -> ExperimentSummary:
    """Run (or, with ``resume``, continue via ``tune.Tuner.restore``) the experiment; write its tables."""
    t0 = time.perf_counter()
    # Tune warns whenever per-epoch checkpoints with num_to_keep force state snapshots; expected here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    storage = preflight(exp)
    connect(address, exp.namespace)
    import ray

    options: dict[str, Any] = {"namespace": ray.get_runtime_context().namespace}
    cost_actor = None  # the driver keeps this handle for the whole experiment (see below)
    if cost_service_available():
        from .cost_service import get_cost_service

        # Started or found before any trial, and owned by this driver: a non-detached actor dies with its
        # owner, so if the driver dropped its handle the first trial would re-create it, own it, and take
        # it down for every other trial when it exits. On a shared cluster (--address) it is detached so
        # that concurrent experiments using the same name do not depend on one driver.
        cost_actor = get_cost_service(name=exp.cost_service, namespace=options["namespace"],
                                      detached=address is not None)
        ray.get(cost_actor.ping.remote())  # it is up (a broken service fails here, not in a trial)
        options["cost_service"] = exp.cost_service
    else:
        log.warning("cost_models.service not available: trials use the in-process cost model")
    if exp.scan == "adaptive":  # rounds of Tune runs in the same folder (orchestrator/scan.py)
        from .scan import run_adaptive

        outcome = run_adaptive(exp, storage, options, resume=resume)
        del cost_actor
        return ExperimentSummary(exp.name, storage.uri_of(exp.name), outcome.trials, outcome.front,
                                 time.perf_counter() - t0, scan=outcome.scan)
    points = exp.grid_points()
    log.info("experiment %s: %d trials (%s) -> %s, resources per trial %s", exp.name, len(points), exp.scan,
             storage.uri_of(exp.name), trial_resources(exp))
    tuner = build_tuner(exp, storage, options, resume=resume)
    grid = tuner.fit()
    del cost_actor  # every trial is over
    rows = result_rows(exp.name, grid)
    table, front = write_results(storage, exp.name, rows)
    from .scan import SCAN_FILE, grid_scan_table

    scan = grid_scan_table(table, time.perf_counter() - t0)  # the grid is one round: its hypervolume
    storage.child(exp.name).write_table(SCAN_FILE, scan)
    return ExperimentSummary(exp.name, storage.uri_of(exp.name), table, front, time.perf_counter() - t0, scan=scan)


def resume_experiment(exp: ExperimentConfig, address: str | None = None) -> ExperimentSummary:
    """The hook for ``hwnas search --resume NAME``: restores Tune's state from <storage>/<name>."""
    return run_experiment(exp, address=address, resume=True)
