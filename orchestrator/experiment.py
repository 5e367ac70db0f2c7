"""One experiment on Ray: the cost actor, one Tuner (``orchestrator/tuner.py``), the tables.

``run_experiment`` is what ``hwnas search`` calls. Order matters: the config is already typed; the
profiles, the storage and (on ``--resume``) the folder and its record are checked once, before Ray is
even contacted (``results.experiment_record.preflight`` / ``resume_preflight``); this driver claims the
experiment folder (``results/claim.py``: one driver per experiment; a new run's folder check, never
replacing results unasked, is part of the claim), creates the experiment's cost actor (a name unique to
this run; trials only look it up) before the Tuner runs, and only then do trials start. What the Tuner
runs and how the tables end is the experiment's scan strategy (``orchestrator/scan_strategy.py``, grid or
adaptive, chosen once). Tune's own storage is the experiment's folder, so checkpoints and experiment state
live beside ``trials.parquet``, ``pareto.parquet``, ``points.parquet``, ``scan.parquet`` and
``experiment.json`` (the config, ``results/experiment_record.py``). The tables are rewritten as trials
finish (``orchestrator/live_results.py``) and at the end; a failed final write, or a storage that fails
inside ``tuner.fit()``, leaves a local copy of every trial's row. SIGINT and SIGTERM stop the Tuner
gracefully (``orchestrator/interrupts.py``).
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import pyarrow as pa

from results.experiment_config import ExperimentConfig
from results.experiment_record import Preflight, preflight, write_record
from results.scan_metrics import SCAN_FILE
from results.storage import Storage, one_line
from results.summary import ExperimentSummary
from results.trial_rows import result_rows, write_tables

from .interrupts import Interrupts

if TYPE_CHECKING:  # the strategies import Ray: loaded when a run starts, not with this module
    from .scan_strategy import AdaptiveScan, GridScan

log = logging.getLogger("hwnas.search")


@dataclass(frozen=True)
class RunOptions:
    """How this driver runs an experiment; none of it is the experiment's config (``experiment.json``)."""
    address: str | None = None  # the Ray to join, as ray.init takes it (None: ray_address_env, else a local Ray)
    ray_address_env: str | None = None  # $RAY_ADDRESS, read at the entry point (Ray sets it for a job's driver)
    verbose: bool = False  # hwnas -v: Ray's own log lines, here and in the trials
    fallback_dir: str | None = None  # where the rows go when the storage refuses them (None: a new temp folder)
    cost_probe_dir: str | None = None  # the cost actor marks its calls in flight there (fault tests)


def ray_init_kwargs(address: str, namespace: str) -> dict[str, Any]:
    """How hwnas starts or joins Ray (tests start their local Ray the same way). Trial output reaches this
    driver (``log_to_driver``); what the trials log is set per trial (``trainable.trial_logging``)."""
    kwargs: dict[str, Any] = {"address": address, "namespace": namespace, "log_to_driver": True}
    if address == "local":
        kwargs["include_dashboard"] = False
    return kwargs


def connect(address: str | None, namespace: str, ray_address_env: str | None = None) -> None:
    """Connect to Ray (``address`` as ``ray.init`` takes it), unless connected. Without ``address``, inside
    a Ray job the cluster's address (``ray_address_env``, the job's RAY_ADDRESS); otherwise a fresh local
    Ray rather than whatever cluster a stale /tmp/ray/ray_current_cluster points at."""
    import ray

    if ray.is_initialized():
        return
    ray.init(**ray_init_kwargs(address or ray_address_env or "local", namespace))


def build_tuner(exp: ExperimentConfig, strategy: "GridScan | AdaptiveScan", storage: Storage, options,
                resources: Mapping[str, float]):
    """A new Tuner running ``strategy``'s trials (``orchestrator/tuner.py``)."""
    from . import tuner

    return tuner.build_tuner(exp, strategy, storage, options, resources)


# ---------------------------------------------------------------------------------------------- entry
def run_experiment(exp: ExperimentConfig, options: RunOptions = RunOptions(), resume: bool = False,
                   overwrite: bool = False) -> ExperimentSummary:
    """Run (or, with ``resume``, continue via ``tune.Tuner.restore``) the experiment; write its tables.
    ``preflight`` first (``resume``: the folder must hold Tune state; ``overwrite``: a folder with results
    is moved aside), then ``run_prepared``."""
    return run_prepared(preflight(exp, resume=resume, overwrite=overwrite), options)


def resume_experiment(exp: ExperimentConfig, options: RunOptions = RunOptions()) -> ExperimentSummary:
    """Continue the experiment from Tune's state in <storage>/<name>."""
    return run_experiment(exp, options, resume=True)


def run_prepared(checked: Preflight, options: RunOptions = RunOptions()) -> ExperimentSummary:
    """Run the experiment ``checked`` by its preflight (nothing is checked twice).

    This driver claims the folder (``Preflight.claim``: so two drivers never share it; released at the
    end). After Ray starts and before any trial: a trial that fits on no node of a local Ray is refused
    (``tuner.check_resources``). Tables are written as trials finish (``live_results.LiveResults``) and
    once more at the end; if that final write fails, or if the storage (or anything else) fails inside
    ``tuner.fit()``, every trial's row goes to ``options.fallback_dir`` (default: a new temporary folder)
    from what the driver holds in memory, and the summary says where (``unsaved``, ``local_copy``). SIGINT
    and SIGTERM stop the trials gracefully (``orchestrator/interrupts.py``; ``interrupted``)."""
    t0 = time.perf_counter()
    # Tune warns whenever per-epoch checkpoints with num_to_keep force state snapshots; expected here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not options.verbose:  # Tune's console reporter prints its tables even at verbose=0; the legacy one does not
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    with Interrupts() as interrupts, checked.claim():
        return _run(checked, options, interrupts, t0)


def _run(checked: Preflight, options: RunOptions, interrupts: Interrupts, t0: float) -> ExperimentSummary:
    """``run_prepared`` once the folder is claimed: Ray, the cost actor, the Tuner, the tables."""
    from .progress import quiet_ray
    from .scan_strategy import scan_strategy

    exp, storage, strategy = checked.experiment, checked.storage, scan_strategy(checked.experiment)
    quiet_ray(options.verbose)
    connect(options.address, exp.namespace, options.ray_address_env)
    interrupts.install()  # ray.init set its own SIGTERM handler
    import ray

    from .cost_service import cost_service_name, start_cost_service
    from .trainable import TrialOptions
    from .tuner import check_resources, restore_tuner, trial_resources

    namespace = ray.get_runtime_context().namespace
    resources = trial_resources(exp)
    check_resources(resources, local=not (options.address or options.ray_address_env))  # before any trial or actor
    actor_name = cost_service_name(exp.cost_service, exp.name)
    # This driver owns the actor (not detached) and holds the handle until every trial is over.
    cost_actor = start_cost_service(actor_name, namespace, probe_dir=options.cost_probe_dir)
    ray.get(cost_actor.ping.remote())  # it is up (a broken service fails here, not in a trial)
    trial_options = TrialOptions(cost_service=actor_name, namespace=namespace, verbose=options.verbose)
    log.info("experiment %s: %s%d trials (%s) -> %s, resources per trial %s, cost service %s", exp.name,
             "at most " if strategy.upper_bound else "", strategy.trial_count(), strategy.name,
             storage.uri_of(exp.name), resources, actor_name)
    if checked.resume:
        tuner = restore_tuner(exp, storage, trial_options, resources)
        strategy.restored(storage)
    else:
        tuner = build_tuner(exp, strategy, storage, trial_options, resources)
    started = checked.record.started_utc if checked.record is not None else None
    record_started = write_record(storage, exp, started_utc=started).started_utc  # before the first trial
    rows, failure, ran_trials = fit(tuner, interrupts, exp.name, storage.uri_of(exp.name))
    try:
        cost_stats = ray.get(cost_actor.stats.remote(), timeout=30)
    except Exception:  # noqa: BLE001 - only counters for the summary
        cost_stats = None
    del cost_actor  # every trial is over
    tables = strategy.final_tables(storage, rows, checked.resume, ran_trials, time.perf_counter() - t0)
    unsaved, local_copy = save(exp, storage, tables, record_started, failure, options.fallback_dir)
    table, front, _points, scan = tables
    return ExperimentSummary(exp.name, storage.uri_of(exp.name), table, front, time.perf_counter() - t0, scan=scan,
                             cost_stats=cost_stats, unsaved=unsaved, local_copy=local_copy,
                             interrupted=interrupts.received,
                             planned=None if strategy.upper_bound else strategy.trial_count())


def fit(tuner, interrupts: Interrupts, name: str, uri: str) -> tuple[list[dict[str, Any]], str | None, bool]:
    """``tuner.fit()``: (every trial's row, why the run failed inside Tune or None, whether this run started
    a trial). A second signal or a failure inside Tune keeps the rows the driver holds (``live_results``)."""
    from . import live_results

    live_results.forget(uri)
    failure: str | None = None
    rows: list[dict[str, Any]] | None = None
    try:
        with interrupts.fitting():
            grid = tuner.fit()
        rows = result_rows(name, grid)
    except KeyboardInterrupt:  # a second signal: stop at once, keep what the driver holds
        log.warning("stopped at once (%s); the rows are those the driver holds", interrupts.received or "interrupt")
    except Exception as exc:  # noqa: BLE001 - the storage (or Tune) failed inside fit: never lose the rows
        failure = f"{type(exc).__name__}: {one_line(exc)}"
        log.debug("tuner.fit() failed", exc_info=True)
        log.error("the run failed inside Ray Tune (%s); saving the rows of every trial this driver holds", failure)
    if rows is None:
        rows = live_results.live_rows(name, live_results.trials_seen(uri))
    ran_trials = live_results.started_here(uri) > 0
    live_results.forget(uri)
    return rows, failure, ran_trials


def save(exp: ExperimentConfig, storage: Storage, tables: tuple[pa.Table, pa.Table, pa.Table, pa.Table],
         record_started: str, failure: str | None, fallback_dir: str | None) -> tuple[str | None, str | None]:
    """The final write of the tables and, when it worked, of ``experiment.json`` with the trials' counts;
    (why the results are not in the storage or None, where the local copy is or None)."""
    exp_dir = storage.child(exp.name)
    table = tables[0]
    if failure is None:
        unsaved, local_copy = save_results(exp_dir, exp.name, fallback_dir, *tables)
    else:  # Tune's state or checkpoints may be missing from the storage: a local copy, whatever happens next
        local_copy = save_locally(exp.name, fallback_dir, *tables, SCAN_FILE)
        stored, _ = save_results(exp_dir, exp.name, None, *tables, fallback=False)
        unsaved = stored or failure  # the storage's own words when it refused the tables too
        log.error("every trial's row is in %s%s", local_copy, "" if stored is None else
                  f"; the storage refused them too ({stored})")
    if unsaved is None:
        try:
            write_record(storage, exp, started_utc=record_started, counts=dict(Counter(table.column("status").to_pylist())))
        except (OSError, ValueError) as exc:
            log.warning("could not update %s/experiment.json: %s", exp_dir.uri, one_line(exc))
    return unsaved, local_copy


def save_results(exp_dir: Storage, name: str, fallback_dir: str | None, table: pa.Table, front: pa.Table,
                 points: pa.Table, scan: pa.Table, fallback: bool = True) -> tuple[str | None, str | None]:
    """The final write of every table to ``exp_dir``; if the storage refuses it (an OSError or Arrow error:
    a bucket gone, a full disk, no permission), the tables go to a local folder instead (unless not
    ``fallback``).

    Returns (None, None) when saved, else (why, the local copy's path or None)."""
    try:
        write_tables(exp_dir, table, front, points)
        exp_dir.write_table(SCAN_FILE, scan)
        return None, None
    except (OSError, pa.ArrowException, ValueError) as exc:
        unsaved = one_line(exc)
    if not fallback:
        return unsaved, None
    local_copy = save_locally(name, fallback_dir, table, front, points, scan, SCAN_FILE)
    log.error("could not write the results to %s (%s); a local copy is in %s", exp_dir.uri, unsaved, local_copy)
    return unsaved, local_copy


def save_locally(name: str, fallback_dir: str | None, table: pa.Table, front: pa.Table, points: pa.Table,
                 scan: pa.Table, scan_file: str) -> str:
    """The tables in a local folder when the storage refused them: ``<fallback_dir>/<name>-<UTC time>``."""
    root = Path(fallback_dir) if fallback_dir else Path(tempfile.mkdtemp(prefix="hwnas-unsaved-"))
    folder = Storage.from_uri(str(root / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"))
    write_tables(folder, table, front, points)
    folder.write_table(scan_file, scan)
    return folder.uri
