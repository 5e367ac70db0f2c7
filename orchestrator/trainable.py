"""The Ray Tune trainable: one trial = one full two-stage search (``run_search``).

The trial's config is exactly a ``SearchConfig`` dict. What the orchestrator tells a trial besides
(the cost actor's name and namespace, whether the user asked for ``-v``) is a ``TrialOptions`` bound
with ``tune.with_parameters`` (``make_trainable``), never part of the config. Every epoch the
search writes its checkpoint file and then calls the report adapter, which hands Tune the metrics with a
``tune.Checkpoint`` holding a copy of that file; a restarted trial gets it back from
``tune.get_checkpoint()`` and the search resumes where it stopped. The final report carries the record
(nested values as JSON strings) and ``done``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ray import tune

from searchspace.config import SearchConfig

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "search.ckpt"  # name of the search checkpoint inside a Tune checkpoint directory
TRIAL_LOG_HANDLER = "hwnas-trial"  # name of the handler trial_logging adds (once per worker process)


@dataclass(frozen=True)
class TrialOptions:
    """What every trial of an experiment gets besides its config (bound by ``make_trainable``)."""
    cost_service: str | None = None  # name of the experiment's cost actor; None = in-process cost model
    namespace: str | None = None  # Ray namespace of that actor
    verbose: bool = False  # hwnas -v: Ray's own lines and the search's INFO lines from the trial too


def make_trainable(options: TrialOptions, resources: Mapping[str, float]):
    """The Tune trainable of an experiment: ``search_trainable`` with ``options`` bound and its resources."""
    return tune.with_resources(tune.with_parameters(search_trainable, options=options), dict(resources))


def trial_logging(verbose: bool) -> None:
    """Trial-side log lines to stderr, which Ray forwards to the driver (``log_to_driver``): warnings by
    default (the driver's own progress lines already show every epoch), everything with ``verbose``.
    Ray's own loggers in the trial (a "Checkpoint successfully created" per epoch) stay at WARNING."""
    root = logging.getLogger()
    if not any(h.get_name() == TRIAL_LOG_HANDLER for h in root.handlers):  # a reused worker keeps its handler
        handler = logging.StreamHandler()
        handler.set_name(TRIAL_LOG_HANDLER)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose:
        for name in ("ray", "ray.tune", "ray.train"):
            logging.getLogger(name).setLevel(logging.WARNING)


def exit_on_ignored_sigterm() -> None:
    """In a trial's worker process: a ``SystemExit`` that Python cannot raise (Ray's SIGTERM handler firing
    inside a weakref callback or ``__del__``, when a stopped run shuts its workers down) exits the process
    at once, quietly. Python's default would print "Exception ignored in ..." with a traceback, which Ray
    forwards to the user's console after "interrupted", and keep the process running until Ray kills it.
    Every other unraisable exception goes to the hook that was there."""
    previous = sys.unraisablehook
    if getattr(previous, "hwnas_exit_on_sigterm", False):  # a reused worker keeps its hook
        return

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, SystemExit):
            code = unraisable.exc_value.code
            sys.stderr.flush()
            os._exit(code if isinstance(code, int) else 1)
        previous(unraisable)

    hook.hwnas_exit_on_sigterm = True
    sys.unraisablehook = hook


def record_metrics(record: Mapping[str, Any]) -> dict[str, Any]:
    """The final report: the record with nested values as JSON strings (Tune flattens dicts otherwise)."""
    out = {k: json.dumps(v, separators=(",", ":")) if isinstance(v, (dict, list, tuple)) else v
           for k, v in record.items()}
    out.update(phase="done", done=True)
    return out


class TuneReporter:
    """Adapter from ``run_search``'s ``report(metrics)`` to ``tune.report(metrics, checkpoint=...)``."""

    def __init__(self, checkpoint_path: Path, report_fn: Callable[..., None] | None = None,
                 extra: Mapping[str, Any] | None = None) -> None:
        self.checkpoint_path = Path(checkpoint_path)
        self._report = report_fn or tune.report
        self.extra = dict(extra or {})  # added to every report (where the trial runs, whether it resumed)

    def __call__(self, metrics: Mapping[str, Any], final: bool = False) -> None:
        metrics = {**self.extra, **metrics}
        if not self.checkpoint_path.exists():
            self._report(metrics)
            return
        # a copy: the search rewrites its file next epoch while Tune may still be persisting this one
        with tempfile.TemporaryDirectory(prefix="hwnas-ckpt-") as tmp:
            shutil.copy2(self.checkpoint_path, Path(tmp) / CHECKPOINT_FILE)
            self._report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def restore_checkpoint(target: Path, config: SearchConfig | None = None) -> bool:
    """Copy the trial's last intact Tune checkpoint (if any) to ``target``; True if there was one.

    Tune hands back the checkpoint its state points to. If that file cannot be resumed from (damaged,
    truncated, overwritten: ``trainables.state.load_checkpoint`` refuses it, naming the real file, never
    the local copy), the trial's earlier checkpoints in the same trial folder are tried, newest first
    (Tune keeps ``CHECKPOINTS_KEPT``); if none is intact the search starts afresh. Either way one warning
    line says which file was refused and what the trial does instead. ``weights_only`` loading stays."""
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return False
    candidates = [ckpt.path, *earlier_checkpoints(ckpt)]
    refused: list[str] = []
    for path in candidates:
        shown = checkpoint_uri(ckpt.filesystem, f"{path}/{CHECKPOINT_FILE}")
        problem = fetch_checkpoint(ckpt.filesystem, f"{path}/{CHECKPOINT_FILE}", target, shown, config)
        if problem is None:
            if refused:
                log.warning("%s; the trial resumes from the earlier checkpoint %s", refused[0], shown)
            return True
        refused.append(problem)
    target.unlink(missing_ok=True)
    if refused:
        earlier = (f" (nor {len(refused) - 1} earlier one{'s' if len(refused) > 2 else ''})"
                   if len(refused) > 1 else " (no earlier checkpoint is kept)")
        log.warning("%s%s; the trial starts afresh", refused[0], earlier)
    return False


def earlier_checkpoints(ckpt) -> list[str]:
    """The trial's other ``checkpoint_NNNNNN`` folders older than ``ckpt``, newest first."""
    import pyarrow.fs as pafs

    parent, _, name = ckpt.path.rstrip("/").rpartition("/")
    try:
        infos = ckpt.filesystem.get_file_info(pafs.FileSelector(parent, allow_not_found=True))
    except OSError:
        return []
    names = sorted((i.base_name for i in infos if i.type == pafs.FileType.Directory
                    and i.base_name.startswith("checkpoint_") and i.base_name < name), reverse=True)
    return [f"{parent}/{n}" for n in names]


def checkpoint_uri(filesystem, path: str) -> str:
    return f"s3://{path}" if getattr(filesystem, "type_name", "") == "s3" else path


def fetch_checkpoint(filesystem, path: str, target: Path, shown: str, config: SearchConfig | None) -> str | None:
    """Copy ``path`` to ``target`` and check that a search can resume from it; None if so, else why not
    (one line naming ``shown``)."""
    from trainables.state import CheckpointError, load_checkpoint

    try:
        with filesystem.open_input_stream(path) as f:
            target.write_bytes(f.readall())
    except (OSError, ValueError) as exc:  # missing from the storage, or the storage failed
        return f"checkpoint {shown} cannot be read ({' '.join(str(exc).split())})"
    if config is None:
        return None
    try:
        load_checkpoint(target, config, shown=shown)
    except CheckpointError as exc:
        return str(exc).split("; remove it", 1)[0]  # the trial handles it: no advice to the user
    return None


def cost_query_fn(options: TrialOptions):
    """The cost service's query function (the driver's actor, looked up by name), or None for the
    in-process cost model. The trial never creates the actor: a missing one is an error here."""
    if not options.cost_service:
        return None
    from .cost_service import actor_query_fn, find_cost_service

    return actor_query_fn(find_cost_service(options.cost_service, options.namespace))


def _where(resumed: bool) -> dict[str, Any]:
    """Reported with every result: the Ray node id (on one machine every node_ip is 127.0.0.1), the
    worker's pid, whether this run of the trial started from a checkpoint, and its GPU ids ("" on CPU)."""
    import os

    import ray

    gpus = ",".join(str(g) for g in ray.get_runtime_context().get_accelerator_ids().get("GPU", []))
    return {"node_id": ray.get_runtime_context().get_node_id(), "worker_pid": os.getpid(), "resumed": resumed,
            "gpu_ids": gpus}


def trial_threads_from_ray() -> int:
    """Torch threads = the CPU slots Tune gave this trial (``cpus_per_trial``), set explicitly rather than
    left to OMP_NUM_THREADS, so trials x threads never oversubscribe the cores (``trial_threads``)."""
    import ray

    from trainables.threads import set_trial_threads, trial_threads, usable_cores

    slots = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    return set_trial_threads(trial_threads(slots, usable_cores()))


def search_trainable(config: dict[str, Any], options: TrialOptions = TrialOptions()) -> None:
    trial_logging(options.verbose)
    exit_on_ignored_sigterm()
    search_config = SearchConfig.from_dict(config)
    threads = trial_threads_from_ray()
    from cost_models import derived_network_cost, search_cost_table
    from trainables import run_search  # torch and the data modules load in the trial's worker only

    query_fn = cost_query_fn(options)
    workdir = Path(tempfile.mkdtemp(prefix="hwnas-trial-"))
    try:
        checkpoint = workdir / CHECKPOINT_FILE
        resumed = restore_checkpoint(checkpoint, search_config)
        if resumed:
            log.info("trial resumes from its checkpoint")
        reporter = TuneReporter(checkpoint, extra=_where(resumed))
        log.info("trial runs torch on %d threads", threads)
        result = run_search(search_config, search_cost_table(search_config, query_fn), report=reporter,
                            checkpoint=checkpoint,
                            network_cost=lambda g: derived_network_cost(g, search_config, query_fn))
        reporter(record_metrics(result.to_record()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
