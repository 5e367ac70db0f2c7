"""Rows reach storage as trials finish: a Tune callback in the driver rewrites the experiment's tables.

``LiveResults.on_trial_complete`` / ``on_trial_error`` rebuild every trial's row from Tune's live
``Trial`` objects (finished ones with their record or error, the others ``incomplete``) and rewrite
trials.parquet, pareto.parquet and points.parquet, each in one write (a local rename, one S3 put). A
driver killed with SIGKILL therefore leaves a table with every trial finished so far; only the running
trials' rows say ``incomplete``. ``run_experiment`` still writes the tables once more at the end (with
the adaptive scan's final batch numbers and scan.parquet).

A failed write here is logged and the run goes on (the next trial's write, or the final one, tries
again): losing a progress snapshot must never stop the trials. The callback travels pickled with the
Tuner (``Tuner.restore`` brings it back), so it holds only the storage's location; ``round_of`` (the
adaptive scan's batch of a trial) is set by the driver for this run and never pickled.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from ray import tune

from results.storage import Storage
from results.trial_rows import TrialOutcome, error_text, keep_stored_rows, result_rows, results_tables, write_tables

log = logging.getLogger("hwnas.search")

RUNNING = "not finished when this table was written"  # error_message of a live incomplete row


def outcome_of(trial, errors: dict[tuple[str, int], BaseException]) -> TrialOutcome:
    """A live Tune ``Trial`` as a ``TrialOutcome``; an errored trial's exception is read once from its
    error file (cached in ``errors`` by trial id and failure count)."""
    error = None
    if trial.status == "ERROR":
        key = (trial.trial_id, int(getattr(trial, "num_failures", 0)))
        if key not in errors:
            errors[key] = read_error(trial)
        error = errors[key]
    return TrialOutcome(trial.trial_id, dict(trial.last_result or {}), dict(trial.config or {}), error)


def read_error(trial) -> BaseException:
    """The trial's exception: from its error file in the storage, else from the driver's own staging copy
    (the storage may be what failed), else a one-line RuntimeError saying why it could not be read."""
    try:
        exc = trial.get_pickled_error()
        if exc is not None:
            return exc
        text = trial.get_error()
    except Exception as exc:  # noqa: BLE001 - an unreadable error file still makes a failed row
        text = staged_error(trial)
        if text is None:
            return RuntimeError(f"trial failed (its error file could not be read: {' '.join(str(exc).split())})")
    last = [line for line in str(text or "").splitlines() if line.strip()]
    return RuntimeError(last[-1] if last else "trial failed")


def staged_error(trial) -> str | None:
    """The last line of the trial's error text in the driver's staging folder (written there before Tune
    syncs it to the storage), or None."""
    try:
        from ray import cloudpickle

        if trial.pickled_error_file:
            with open(trial.pickled_error_file, "rb") as f:
                return error_text(cloudpickle.load(f))
    except Exception:  # noqa: BLE001 - fall through to the text file
        pass
    try:
        if trial.error_file:
            with open(trial.error_file, encoding="utf-8", errors="replace") as f:
                lines = [ln for ln in f.read().splitlines() if ln.strip() and not ln.startswith("Failure # ")]
            return lines[-1] if lines else None
    except OSError:
        pass
    return None


#: the driver's live Tune trials of each experiment (``<storage>/<name>`` URI -> Tune's own list), kept by
#: ``LiveResults.on_step_begin``: the rows ``run_experiment`` saves when ``tuner.fit()`` itself fails
_SEEN: dict[str, list] = {}
_STARTED: dict[str, int] = {}  # trials started (or restarted) by this driver, per experiment URI


def trials_seen(uri: str) -> list:
    """The live Tune trials of the experiment at ``uri`` as of the Tuner's last step ([] if none)."""
    return list(_SEEN.get(uri, []))


def started_here(uri: str) -> int:
    """Trials this driver started (or restarted) in the experiment at ``uri``: 0 for a resume with
    nothing left to run."""
    return _STARTED.get(uri, 0)


def forget(uri: str) -> None:
    _SEEN.pop(uri, None)
    _STARTED.pop(uri, None)


def live_rows(name: str, trials) -> list[dict[str, Any]]:
    """Rows of live Tune trials (finished ones with their record or error, the others incomplete)."""
    errors: dict[tuple[str, int], BaseException] = {}
    return result_rows(name, [outcome_of(t, errors) for t in trials], unfinished=RUNNING)


class LiveResults(tune.Callback):
    """Rewrites the experiment's tables after every finished trial (module docstring)."""

    def __init__(self, storage: Storage, name: str) -> None:
        self.storage = storage
        self.name = name
        self.round_of: Callable[[str], int | None] | None = None
        self._errors: dict[tuple[str, int], BaseException] = {}
        self.writes = 0

    def __getstate__(self) -> dict:
        return {"storage": self.storage, "name": self.name}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["storage"], state["name"])

    def on_step_begin(self, iteration, trials, **info) -> None:
        _SEEN[self.storage.uri_of(self.name)] = trials  # Tune's list itself: always current

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        uri = self.storage.uri_of(self.name)
        _STARTED[uri] = _STARTED.get(uri, 0) + 1

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.write(trials)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.write(trials)

    def rows(self, trials) -> list[dict[str, Any]]:
        rows = result_rows(self.name, [outcome_of(t, self._errors) for t in trials], unfinished=RUNNING)
        if self.round_of is not None:
            for r in rows:
                b = self.round_of(r["trial_id"])
                r["round"] = 0 if b is None else b
        return rows

    def write(self, trials) -> None:
        try:
            folder = self.storage.child(self.name)
            write_tables(folder, *results_tables(keep_stored_rows(folder, self.rows(trials))))
            self.writes += 1
        except Exception as exc:  # noqa: BLE001 - never stop the trials over a progress snapshot
            log.warning("could not update %s/trials.parquet (the final write tries again): %s",
                        self.storage.uri_of(self.name), " ".join(str(exc).split()))
