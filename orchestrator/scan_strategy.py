"""How an experiment chooses its trials: the grid or the adaptive scan, one strategy object chosen once.

``scan_strategy(exp)`` picks it from ``exp.scan``; everything that differs between the two lives here:

- ``GridScan``: ``param_space`` is the base ``SearchConfig`` dict with ``tune.grid_search`` over every scan
  dimension (``results.dimensions``: seeds x lambda_time x lambda_energy x budgets x profiles; Tune's plain
  variant generator); it runs exactly ``trial_count`` trials; its scan.parquet is one batch whose seconds
  add up over resumed runs.
- ``AdaptiveScan``: ``param_space`` is the plain base config and ``ScanSearcher`` (the Ray-free
  ``results.scan_policy`` behind Tune's ``Searcher``) suggests every trial's point; ``trial_count`` is the
  budget, an upper bound; a resumed run keeps the settings it started with (and says so when the config
  now differs); its scan.parquet has a row per suggestion batch, read from the searcher's state.

The driver (``orchestrator/experiment.py``) and the Tuner (``orchestrator/tuner.py``) ask the strategy and
never test ``exp.scan`` themselves.
"""
from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
from ray import tune

from results.dimensions import DIMENSIONS
from results.experiment_config import ExperimentConfig
from results.scan_metrics import SCAN_FILE, batch_scan_rows, conform_scan, grid_scan_table, scan_table
from results.scan_policy import ScanPolicy, ScanSettings
from results.storage import Storage, one_line
from results.trial_rows import keep_stored_rows, results_tables

from .scan_searcher import ScanSearcher, load_policy

log = logging.getLogger("hwnas.search")

Tables = tuple[pa.Table, pa.Table, pa.Table, pa.Table]  # trials, front, points, scan


class GridScan:
    """Every point of the grid, each trial once (module docstring)."""

    name = "grid"
    upper_bound = False  # trial_count is what runs

    def __init__(self, exp: ExperimentConfig) -> None:
        self.exp = exp

    def trial_count(self) -> int:
        return len(self.exp.grid_points())

    def param_space(self) -> dict[str, Any]:
        """The grid's param_space; ``exp.grid_points()`` lists the same points without Ray."""
        space = self.exp.search.to_dict()
        space.update({d.search_key: tune.grid_search(list(self.exp.values(d))) for d in DIMENSIONS})
        return space

    def tune_config(self, max_concurrent_trials: int | None) -> tune.TuneConfig:
        return tune.TuneConfig(max_concurrent_trials=max_concurrent_trials)

    def round_of(self, trial_id: str) -> int | None:
        return None  # one batch: every row's round is 0

    def restored(self, storage: Storage) -> None:
        """After ``Tuner.restore``: a grid resumes as it is."""

    def final_tables(self, storage: Storage, rows: list[dict[str, Any]], resume: bool, ran_trials: bool,
                     seconds: float) -> Tables:
        """(trials, front, points, scan) at the end of a run, never with fewer trials than the storage's table
        (``trial_rows.keep_stored_rows``). The scan seconds add this run's time to the earlier runs'
        (nothing when this run started no trial: a resume with nothing left to run changes nothing)."""
        exp_dir = storage.child(self.exp.name)
        table, front, points = results_tables(keep_stored_rows(exp_dir, rows))
        before = earlier_seconds(exp_dir) if resume else 0.0
        return table, front, points, grid_scan_table(table, before + (seconds if ran_trials or not resume else 0.0))


class AdaptiveScan:
    """A coarse grid, then suggestion batches where the front has its largest gaps (module docstring)."""

    name = "adaptive"
    upper_bound = True  # trial_count is the budget: the policy may stop earlier

    def __init__(self, exp: ExperimentConfig) -> None:
        self.exp = exp
        self.settings = ScanSettings.of(exp)
        self.searcher: ScanSearcher | None = None  # the new run's searcher (None after a restore)

    def trial_count(self) -> int:
        return self.settings.budget

    def param_space(self) -> dict[str, Any]:
        return self.exp.search.to_dict()

    def tune_config(self, max_concurrent_trials: int | None) -> tune.TuneConfig:
        """A new searcher; num_samples bounds what Tune asks for: never more than the budget."""
        self.searcher = ScanSearcher(ScanPolicy(self.settings), self.exp.search.to_dict())
        return tune.TuneConfig(search_alg=self.searcher, num_samples=self.settings.budget,
                               max_concurrent_trials=max_concurrent_trials)

    def round_of(self, trial_id: str) -> int | None:
        """The suggestion batch of a trial (numbers the live tables' rows)."""
        return None if self.searcher is None else self.searcher.policy.batch_of(trial_id)

    def restored(self, storage: Storage) -> None:
        """Tuner.restore brings the searcher back as it was saved: say so when the config now says otherwise."""
        saved = load_policy(storage.child(self.exp.name))
        if saved is not None and saved.settings != self.settings:
            log.warning("adaptive scan %s: the resumed scan keeps the settings it started with (%s); the current "
                        "config's (%s) apply to a new experiment name only", self.exp.name, saved.settings,
                        self.settings)

    def final_tables(self, storage: Storage, rows: list[dict[str, Any]], resume: bool, ran_trials: bool,
                     seconds: float) -> Tables:
        """(trials, front, points, scan) at the end of a run: every row gets its suggestion batch, from this
        run's searcher or the state Tune saved; never fewer trials than the storage's table."""
        exp_dir = storage.child(self.exp.name)
        rows = keep_stored_rows(exp_dir, rows)
        try:
            policy = self.searcher.policy if self.searcher is not None else load_policy(exp_dir)
        except (OSError, ValueError, pa.ArrowException) as exc:
            log.warning("adaptive scan: its searcher state could not be read (%s)", one_line(exc))
            policy = None
        rows, batches, stop_reason = scan_rows_from(policy, rows)
        table, front, points = results_tables(rows)
        return table, front, points, scan_table(batch_scan_rows(table, batches, stop_reason))


def scan_strategy(exp: ExperimentConfig) -> GridScan | AdaptiveScan:
    """The experiment's strategy, from ``exp.scan`` (``results.experiment_config.SCANS``)."""
    strategies = {"grid": GridScan, "adaptive": AdaptiveScan}
    if exp.scan not in strategies:
        raise ValueError(f"scan {exp.scan!r} is not implemented; scans: {', '.join(strategies)}")
    return strategies[exp.scan](exp)


def scan_rows_from(policy: ScanPolicy | None, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict], str | None]:
    """Every trial row gets its suggestion batch (``round``); the batches and the stop reason of ``policy``."""
    if policy is None:
        log.warning("adaptive scan: no searcher state found; every trial is counted in batch 0")
        return rows, [], None
    for r in rows:
        b = policy.batch_of(r["trial_id"])
        r["round"] = 0 if b is None else b
    return rows, policy.batch_mappings(), policy.stop_reason


def earlier_seconds(exp_dir: Storage) -> float:
    """The grid's scan seconds so far (scan.parquet of the earlier runs; 0 without one)."""
    try:
        scan = conform_scan(exp_dir.read_table(SCAN_FILE))
    except (OSError, ValueError, pa.ArrowException):
        return 0.0
    values = [v for v in scan.column("seconds").to_pylist() if v is not None]
    return float(values[-1]) if values else 0.0
