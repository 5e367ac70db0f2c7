"""One experiment on Ray: preflight, the cost actor, one Tuner (``orchestrator/tuner.py``), the tables.

``run_experiment`` is what ``hwnas search`` calls. Order matters: the config is already typed; the
profiles and the storage are checked before Ray is even contacted, this driver creates the experiment's
cost actor (a name unique to this run; trials only look it up) before the Tuner runs, and only then do
trials start. Tune's own storage is the experiment's folder, so checkpoints and experiment state live
beside ``trials.parquet``, ``pareto.parquet``, ``points.parquet``, ``scan.parquet`` and ``experiment.json``
(the config, ``orchestrator/experiment_record.py``). The folder check (never replace results unasked;
resume only what exists) and this driver's claim on the folder (``orchestrator/claim.py``: one driver per
experiment) run before Ray too. The tables are rewritten as trials finish
(``orchestrator/live_results.py``) and at the end; a failed final write, or a storage that fails inside
``tuner.fit()``, leaves a local copy of every trial's row. SIGINT and SIGTERM stop the Tuner gracefully
(``orchestrator/interrupts.py``).
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

from .experiment_config import ExperimentConfig
from .experiment_record import claim_folder, read_record, write_record
from .results import COMPLETED, FAILED, INCOMPLETE, front_network_label
from .storage import Storage, one_line
from .scan_metrics import SCAN_FILE
from .trial_rows import (PARETO_FILE, TRIALS_FILE, error_text, keep_stored_rows, result_rows,  # noqa: F401
                         results_tables, write_results, write_tables)

if TYPE_CHECKING:
    from .scan_policy import ScanPolicy

log = logging.getLogger("hwnas.search")



@dataclass(frozen=True)
class ExperimentSummary:
    name: str
    uri: str  # <storage>/<name>
    trials: pa.Table
    front: pa.Table
    seconds: float
    scan: pa.Table | None = None  # scan.parquet: hypervolume per suggestion batch (orchestrator/scan_metrics.py)
    cost_stats: Mapping[str, int] | None = None  # the cost actor's counters at the end (None: no actor)
    unsaved: str | None = None  # why the final write to the storage (or the run inside Tune) failed, else None
    local_copy: str | None = None  # where the tables went instead when it failed
    interrupted: str | None = None  # the signal that stopped the run ("SIGINT", "SIGTERM"), else None

    @property
    def all_completed(self) -> bool:
        return self.trials.num_rows > 0 and self.counts.get(COMPLETED, 0) == self.trials.num_rows

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(self.trials.column("status").to_pylist()))

    def describe(self) -> str:
        c = self.counts
        where = self.local_copy or self.uri
        lines = [f"experiment {self.name}: {self.trials.num_rows} trials ({c.get(COMPLETED, 0)} completed, "
                 f"{c.get(FAILED, 0)} failed, {c.get(INCOMPLETE, 0)} incomplete) in {self.seconds:.0f}s",
                 f"  trials: {where}/{TRIALS_FILE}", f"  front ({self.front.num_rows}): {where}/{PARETO_FILE}"
                 f" (DRAM costs of the {front_network_label(self.front.to_pylist())})"]
        for r in self.front.to_pylist():
            budgets = "".join(f" {k}={r[k]:g}" for k in ("dram_time_budget_us", "dram_energy_budget_uj") if r.get(k))
            std = "" if r.get("accuracy_std") is None else f" ± {r['accuracy_std']:.4f}"
            lines.append(f"    {r['trial_id']}: seed={r['seed']} lambda_time={r['lambda_time']:g} "
                         f"lambda_energy={r['lambda_energy']:g}{budgets} accuracy={r['accuracy']:.4f}{std} "
                         f"dram_time_us={r['dram_time_us']:.4g} dram_energy_uj={r['dram_energy_uj']:.4g}")
        if self.scan is not None:
            from .scan_metrics import describe_round
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


def preflight(exp: ExperimentConfig) -> Storage:
    """Everything that can fail without running a trial: profiles and storage (StorageError/ValueError)."""
    check_profiles(exp)
    return Storage.from_uri(exp.storage, exp.endpoint_url or None).check()


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


# ---------------------------------------------------------------------------------------------- results
# rows and tables: orchestrator/trial_rows.py (also used by the live writer, orchestrator/live_results.py)


# ---------------------------------------------------------------------------------------------- entry
def build_tuner(exp: ExperimentConfig, storage: Storage, options, resources: Mapping[str, float]):
    """A new Tuner and its searcher (``orchestrator/tuner.py``, imported late: reading results needs no Ray)."""
    from . import tuner

    return tuner.build_tuner(exp, storage, options, resources)


def warn_if_scan_changed(exp: ExperimentConfig, storage: Storage) -> None:
    """Tuner.restore brings the searcher back as it was saved: say so when the config now says otherwise."""
    from .scan_policy import ScanSettings
    from .scan_searcher import load_policy

    saved = load_policy(storage.child(exp.name))
    if saved is not None and saved.settings != ScanSettings.of(exp):
        log.warning("adaptive scan %s: the resumed scan keeps the settings it started with (%s); the current "
                    "config's (%s) apply to a new experiment name only", exp.name, saved.settings,
                    ScanSettings.of(exp))


def scan_rows_from(policy: "ScanPolicy | None", rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict], str | None]:
    """Every trial row gets its suggestion batch (``round``); the batches and the stop reason of ``policy``."""
    if policy is None:
        log.warning("adaptive scan: no searcher state found; every trial is counted in batch 0")
        return rows, [], None
    for r in rows:
        b = policy.batch_of(r["trial_id"])
        r["round"] = 0 if b is None else b
    return rows, policy.batch_mappings(), policy.stop_reason


def run_experiment(exp: ExperimentConfig, address: str | None = None, resume: bool = False, verbose: bool = False,
                   ray_address_env: str | None = None, overwrite: bool = False, fallback_dir: str | None = None,
                   cost_probe_dir: str | None = None) -> ExperimentSummary:
    """Run (or, with ``resume``, continue via ``tune.Tuner.restore``) the experiment; write its tables.

    Before Ray: profiles, storage and the experiment folder (``experiment_record.claim_folder``: a new
    run refuses a folder with results unless ``overwrite``, which moves it aside; ``resume`` needs Tune
    state; either way this driver claims the folder, so two drivers never share it, and releases the
    claim at the end). After Ray starts and before any trial: a trial that fits on no node of a local Ray
    is refused (``tuner.check_resources``). Tables are written as trials finish
    (``live_results.LiveResults``) and once more at the end; if that final write fails, or if the storage
    (or anything else) fails inside ``tuner.fit()``, every trial's row goes to ``fallback_dir`` (default:
    a new temporary folder) from what the driver holds in memory, and the summary says where
    (``unsaved``, ``local_copy``). SIGINT and SIGTERM stop the trials gracefully
    (``orchestrator/interrupts.py``; ``interrupted``). ``verbose`` (hwnas -v) lets Ray's own log lines
    through, here and in the trials. ``cost_probe_dir``: the cost actor marks its calls in flight there
    (``cost_service.CostServiceImpl``; for fault tests)."""
    from .interrupts import Interrupts

    t0 = time.perf_counter()
    # Tune warns whenever per-epoch checkpoints with num_to_keep force state snapshots; expected here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not verbose:  # Tune's console reporter prints its tables even at verbose=0; the legacy one does not
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    storage = preflight(exp)
    with Interrupts() as interrupts, claim_folder(storage, exp.name, resume=resume, overwrite=overwrite):
        return _run(exp, storage, interrupts, t0, address=address, resume=resume, verbose=verbose,
                    ray_address_env=ray_address_env, fallback_dir=fallback_dir, cost_probe_dir=cost_probe_dir)


def _run(exp: ExperimentConfig, storage: Storage, interrupts, t0: float, *, address: str | None, resume: bool,
         verbose: bool, ray_address_env: str | None, fallback_dir: str | None,
         cost_probe_dir: str | None) -> ExperimentSummary:
    """``run_experiment`` once the folder is claimed."""
    from .progress import quiet_ray

    saved = read_record(storage, exp.name) if resume else None
    quiet_ray(verbose)
    connect(address, exp.namespace, ray_address_env)
    interrupts.install()  # ray.init set its own SIGTERM handler
    import ray

    from . import live_results
    from .cost_service import cost_service_name, start_cost_service
    from .trainable import TrialOptions
    from .tuner import check_resources, restore_tuner, trial_count, trial_resources

    namespace = ray.get_runtime_context().namespace
    resources = trial_resources(exp)
    check_resources(resources, local=not (address or ray_address_env))  # before any trial or actor
    actor_name = cost_service_name(exp.cost_service, exp.name)
    # This driver owns the actor (not detached) and holds the handle until every trial is over.
    cost_actor = start_cost_service(actor_name, namespace, probe_dir=cost_probe_dir)
    ray.get(cost_actor.ping.remote())  # it is up (a broken service fails here, not in a trial)
    options = TrialOptions(cost_service=actor_name, namespace=namespace, verbose=verbose)
    log.info("experiment %s: %s%d trials (%s) -> %s, resources per trial %s, cost service %s", exp.name,
             "at most " if exp.scan == "adaptive" else "", trial_count(exp), exp.scan, storage.uri_of(exp.name),
             resources, actor_name)
    searcher = None
    if resume:
        tuner = restore_tuner(exp, storage, options, resources)
        if exp.scan == "adaptive":
            warn_if_scan_changed(exp, storage)
    else:
        tuner, searcher = build_tuner(exp, storage, options, resources)
    started = saved.started_utc if saved is not None else None
    record_started = write_record(storage, exp, started_utc=started).started_utc  # before the first trial
    uri = storage.uri_of(exp.name)
    live_results.forget(uri)
    failure: str | None = None
    rows: list[dict[str, Any]] | None = None
    try:
        with interrupts.fitting():
            grid = tuner.fit()
        rows = result_rows(exp.name, grid)
    except KeyboardInterrupt:  # a second signal: stop at once, keep what the driver holds
        log.warning("stopped at once (%s); the rows are those the driver holds", interrupts.received or "interrupt")
    except Exception as exc:  # noqa: BLE001 - the storage (or Tune) failed inside fit: never lose the rows
        failure = f"{type(exc).__name__}: {one_line(exc)}"
        log.debug("tuner.fit() failed", exc_info=True)
        log.error("the run failed inside Ray Tune (%s); saving the rows of every trial this driver holds", failure)
    if rows is None:
        rows = live_results.live_rows(exp.name, live_results.trials_seen(uri))
    ran_trials = live_results.started_here(uri) > 0
    live_results.forget(uri)
    try:
        cost_stats = ray.get(cost_actor.stats.remote(), timeout=30)
    except Exception:  # noqa: BLE001 - only counters for the summary
        cost_stats = None
    del cost_actor  # every trial is over
    exp_dir = storage.child(exp.name)
    table, front, points, scan = final_tables(exp, storage, rows, searcher, resume, ran_trials,
                                              time.perf_counter() - t0)
    if failure is None:
        unsaved, local_copy = save_results(exp_dir, exp.name, fallback_dir, table, front, points, scan)
    else:  # Tune's state or checkpoints may be missing from the storage: a local copy, whatever happens next
        local_copy = save_locally(exp.name, fallback_dir, table, front, points, scan, SCAN_FILE)
        stored, _ = save_results(exp_dir, exp.name, None, table, front, points, scan, fallback=False)
        unsaved = stored or failure  # the storage's own words when it refused the tables too
        log.error("every trial's row is in %s%s", local_copy, "" if stored is None else
                  f"; the storage refused them too ({stored})")
    if unsaved is None:
        try:
            write_record(storage, exp, started_utc=record_started, counts=dict(Counter(table.column("status").to_pylist())))
        except (OSError, ValueError) as exc:
            log.warning("could not update %s/experiment.json: %s", exp_dir.uri, one_line(exc))
    return ExperimentSummary(exp.name, storage.uri_of(exp.name), table, front, time.perf_counter() - t0, scan=scan,
                             cost_stats=cost_stats, unsaved=unsaved, local_copy=local_copy,
                             interrupted=interrupts.received)


def final_tables(exp: ExperimentConfig, storage: Storage, rows: list[dict[str, Any]], searcher, resume: bool,
                 ran_trials: bool, seconds: float) -> tuple[pa.Table, pa.Table, pa.Table, pa.Table]:
    """(trials, front, points, scan) at the end of a run, never with fewer trials than the storage's table
    (``trial_rows.keep_stored_rows``). A grid's scan seconds add this run's time to the earlier runs'
    (nothing when this run started no trial: a resume with nothing left to run changes nothing)."""
    from .scan_metrics import batch_scan_rows, grid_scan_table, scan_table

    exp_dir = storage.child(exp.name)
    rows = keep_stored_rows(exp_dir, rows)
    if exp.scan == "adaptive":
        from .scan_searcher import load_policy

        try:
            policy = searcher.policy if searcher is not None else load_policy(exp_dir)
        except (OSError, ValueError, pa.ArrowException) as exc:
            log.warning("adaptive scan: its searcher state could not be read (%s)", one_line(exc))
            policy = None
        rows, batches, stop_reason = scan_rows_from(policy, rows)
        table, front, points = results_tables(rows)
        return table, front, points, scan_table(batch_scan_rows(table, batches, stop_reason))
    table, front, points = results_tables(rows)
    before = earlier_seconds(exp_dir) if resume else 0.0
    return table, front, points, grid_scan_table(table, before + (seconds if ran_trials or not resume else 0.0))


def earlier_seconds(exp_dir: Storage) -> float:
    """The grid's scan seconds so far (scan.parquet of the earlier runs; 0 without one)."""
    from .scan_metrics import SCAN_FILE, conform_scan

    try:
        scan = conform_scan(exp_dir.read_table(SCAN_FILE))
    except (OSError, ValueError, pa.ArrowException):
        return 0.0
    values = [v for v in scan.column("seconds").to_pylist() if v is not None]
    return float(values[-1]) if values else 0.0


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


def resume_experiment(exp: ExperimentConfig, address: str | None = None, verbose: bool = False) -> ExperimentSummary:
    """The hook for ``hwnas search --resume NAME``: restores Tune's state from <storage>/<name>."""
    return run_experiment(exp, address=address, resume=True, verbose=verbose)
