"""What the driver's console shows while an experiment runs, and what it keeps quiet.

``ProgressCallback`` (a Tune callback) logs, on ``hwnas.search``: a line when a trial starts, one per
trial epoch (the trial's point, stage, epoch, accuracy, expected DRAM cost), one when it is done or
failed, and after every finished trial an overall "k of N trials done, ETA ..." line.

``quiet_ray`` lowers Ray's own loggers (Tune's checkpoint and restore chatter, "Started a local Ray
instance", ...) to warnings in this process unless the user asked for ``hwnas -v``; the trials do the
same on their side (``orchestrator/trainable.py``), so a default run shows hwnas's lines only.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, Mapping

from ray import tune

from results.dimensions import DIMENSIONS, point_text
from results.schema import config_network_label

log = logging.getLogger("hwnas.search")

RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.data")  # quiet unless verbose
QUIET_LOGGERS = ("botocore", "boto3")  # "Found credentials in environment variables" per client

# (label, metric) shown per epoch: stage progress, accuracy, expected DRAM cost of the supernet
PROGRESS_KEYS = (("train_loss", "train_loss"), ("train_acc", "train_acc"), ("val_acc", "val_acc"),
                 ("E[dram_time_us]", "expected_dram_time_us"), ("E[dram_energy_uj]", "expected_dram_energy_uj"))
FINISHED_STATES = ("TERMINATED", "ERROR")


def quiet_ray(verbose: bool) -> None:
    """Ray's loggers at WARNING (or left as Ray set them with ``verbose``), in this process; Tune's advice
    to call ``Tuner.restore`` is dropped either way (``hwnas search`` prints ``--resume NAME``), and
    without ``verbose`` Ray's errors are one line each (``RayLines``: the traceback goes to ``-v``)."""
    ray_logger = logging.getLogger("ray")
    for handler in [*ray_logger.handlers, *logging.getLogger().handlers]:
        if not any(isinstance(f, RayLines) for f in handler.filters):
            handler.addFilter(RayLines())
    RayLines.verbose = verbose
    if verbose:
        return
    for name in (*RAY_LOGGERS, *QUIET_LOGGERS):
        logging.getLogger(name).setLevel(logging.WARNING)


class RayLines(logging.Filter):
    """On Ray's log handlers: Tune's interrupt lines (hwnas says it its own way) are dropped; without
    ``verbose`` an error record from Ray keeps only its first line, its traceback is left out."""

    verbose = False
    DROPPED = ("Tuner.restore(", "Stop signal received (e.g. via SIGINT/Ctrl+C)")

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("ray"):
            return True
        msg = record.getMessage()
        if any(d in msg for d in self.DROPPED):
            return False
        if not self.verbose and (record.exc_info or "\n" in msg) and record.levelno >= logging.WARNING:
            first = next((ln for ln in msg.splitlines() if ln.strip()), "")
            record.msg, record.args = f"{first} (hwnas -v shows the details)", None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) else str(v)


def point_of(config: Mapping[str, Any]) -> str:
    """A trial's scan point for its console lines: every scan dimension, a budget only when it is set."""
    return point_text(config, DIMENSIONS, numbers="raw")


def phase_of(result: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """A progress line's phase: ``eval`` says which training seed trains when there are several
    (``eval seed 2/2``)."""
    phase, seeds = result.get("phase"), config.get("eval_seeds", 1)
    if phase == "eval" and result.get("eval_seed") is not None and seeds > 1:
        return f"eval seed {result['eval_seed'] + 1}/{seeds}"
    return str(phase)


def done_line(result: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """A finished trial: accuracy (mean ± std over its training seeds) and the deployed network's DRAM cost,
    naming that network."""
    std = result.get("accuracy_std")
    acc = f"{result.get('accuracy', float('nan')):.4f}" + (f" ± {std:.4f}" if isinstance(std, float) else "")
    return (f"accuracy={acc} dram_time_us={result.get('dram_time_us', float('nan')):.4g} "
            f"dram_energy_uj={result.get('dram_energy_uj', float('nan')):.4g} "
            f"of the {config_network_label(config)}")


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class ProgressCallback(tune.Callback):
    """Per-trial lines and the overall "k of N trials done, ETA" line (module docstring).

    ``total`` is the number of trials the experiment runs (grid), or at most runs (adaptive: the budget,
    ``upper_bound=True``)."""

    def __init__(self, total: int, upper_bound: bool = False) -> None:
        self.total = total
        self.upper_bound = upper_bound
        self._started = time.monotonic()
        self._finished_here: set[str] = set()  # finished while this driver ran (for the ETA)
        self._resumed_shown: set[str] = set()

    def setup(self, **info) -> None:
        # also called when a restored Tuner starts: the ETA counts from this driver's start
        self._started = time.monotonic()
        self._finished_here = set()

    @staticmethod
    def _states(trials) -> str:
        c = Counter(t.status for t in trials)
        return " ".join(f"{k.lower()}={v}" for k, v in sorted(c.items()))

    def on_trial_start(self, iteration, trials, trial, **info):
        log.info("[%s] started %s, costs of the %s (%s)", trial.trial_id, point_of(trial.config),
                 config_network_label(trial.config), self._states(trials))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("resumed") and trial.trial_id not in self._resumed_shown:
            self._resumed_shown.add(trial.trial_id)
            log.info("[%s] resumed from its last checkpoint", trial.trial_id)
        if result.get("phase") == "done":
            log.info("[%s] done: %s (%s)", trial.trial_id, done_line(result, trial.config), self._states(trials))
            return
        shown = [(label, result.get(key)) for label, key in PROGRESS_KEYS]
        log.info("[%s] %s %s epoch %s: %s (%s)", trial.trial_id, point_of(trial.config), phase_of(result, trial.config),
                 result.get("epoch"), " ".join(f"{k}={fmt(v)}" for k, v in shown if v is not None),
                 self._states(trials))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._overall(trials, trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        log.warning("[%s] failed %s (%s)", trial.trial_id, point_of(trial.config), self._states(trials))
        self._overall(trials, trial)

    def _overall(self, trials, trial) -> None:
        self._finished_here.add(trial.trial_id)
        done = len({t.trial_id for t in trials if t.status in FINISHED_STATES} | {trial.trial_id})
        total = max(self.total, done)
        of = f"at most {total}" if self.upper_bound else str(total)
        left = total - done
        if left <= 0:
            log.info("%d of %s trials done", done, of)
            return
        elapsed = time.monotonic() - self._started
        eta = elapsed / len(self._finished_here) * left
        log.info("%d of %s trials done, ETA %s", done, of, duration(eta))
