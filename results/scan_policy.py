"""The adaptive scan as a point-selection policy (Ray-free): what to run next, as trials finish.

``ScanPolicy`` is a small state machine that a Tune ``Searcher`` (``orchestrator/scan_searcher.py``)
drives, and that tests drive directly:

- ``suggest(trial_id)`` hands out the next trial point (``seed``, ``lambda_time``, ``lambda_energy``,
  the budgets ``dram_time_budget_us`` / ``dram_energy_budget_uj`` when the experiment sets any, ``profile``),
  ``None`` when it must wait for a result, or ``DONE`` when the scan is over.
- ``complete(trial_id, result, error)`` feeds a finished trial back.

Batch 0 is the coarse grid (every point with every seed). When the queue of points is empty and a trial
has finished since the last proposal, the policy proposes the next *suggestion batch*: up to
``scan_batch`` new points (``scan_space.choose_points`` over the trials finished so far; points in
flight count as taken), each with every seed. There is no round barrier: a batch is proposed as soon as
a worker would otherwise idle, while earlier trials still run.

Stop rules, checked whenever the queue is empty: ``rounds`` (``scan_rounds`` batches after the coarse
one were proposed), ``budget`` (``scan_budget`` cannot fit another point x seeds; failed trials count),
``min_gain`` (the hypervolume gain of the latest batch whose trials, and every earlier batch's, have all
finished is below ``scan_min_gain``), ``no_point`` (nothing left to propose and nothing in flight).

The whole state is plain data (``state()`` / ``ScanPolicy.from_state``): a Tune checkpoint of the
searcher is a pickle of it, so ``Tuner.restore`` continues the scan exactly where it stopped.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .schema import COMPLETED, FAILED, make_row, rows_to_table
from .dimensions import profile_dimension, seed_dimension
from .scan_metrics import hypervolume_of
from .scan_space import LambdaSpace, Point, budget_of, choose_points, coarse_points, describe_point
from .seedstats import point_stats

if TYPE_CHECKING:
    from .experiment_config import ExperimentConfig

log = logging.getLogger("hwnas.search")

DONE = "DONE"  # suggest(): the scan is over (the searcher answers Searcher.FINISHED)


@dataclass(frozen=True)
class ScanSettings:
    """What the policy needs from the experiment config (a frozen, picklable copy)."""
    experiment: str
    seeds: tuple[int, ...]
    profile: str
    coarse: tuple[Point, ...]
    space: LambdaSpace
    budget: int
    rounds: int
    batch: int
    min_gain: float

    @classmethod
    def of(cls, exp: "ExperimentConfig") -> "ScanSettings":
        return cls(experiment=exp.name, seeds=tuple(exp.seeds), profile=exp.values(profile_dimension())[0],
                   coarse=tuple(coarse_points(exp)), space=LambdaSpace.of(exp), budget=budget_of(exp),
                   rounds=exp.scan_rounds, batch=exp.scan_batch, min_gain=exp.scan_min_gain)


@dataclass
class Batch:
    """One suggestion batch: its lambda points (with why), the trials it handed out, when it ran."""
    index: int
    points: list[Point]
    reasons: list[str]
    proposed_at: float
    trial_ids: list[str] = field(default_factory=list)
    finished_at: float | None = None

    @property
    def seconds(self) -> float:
        return (self.finished_at or self.proposed_at) - self.proposed_at

    def as_mapping(self) -> dict[str, Any]:
        return {"index": self.index, "points": list(self.points), "seconds": self.seconds}


class ScanPolicy:
    """The adaptive scan's state and decisions (module docstring)."""

    def __init__(self, settings: ScanSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.batches: list[Batch] = []
        self.queue: list[tuple[int, dict[str, Any]]] = []  # (batch index, trial point) not yet handed out
        self.assigned: dict[str, tuple[int, dict[str, Any]]] = {}  # trial id -> (batch, point)
        self.rows: dict[str, dict[str, Any]] = {}  # trial id -> its result row, once finished
        self.stop_reason: str | None = None
        self.hv_by_batch: dict[int, float] = {}  # hypervolume of batches 0..b, once all of them finished
        self.results = 0  # trial results received (a rerun trial's second result counts again)
        self.used_results = 0  # ``results`` when the policy last proposed a batch or found nothing to propose

    # ------------------------------------------------------------------ driving
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next trial point for ``trial_id``; None = wait for a result; DONE = the scan is over."""
        if not self.batches:
            self._propose([(p, "coarse grid") for p in self.settings.coarse])
        if not self.queue and self.stop_reason is None:
            self._next_batch()
        if self.queue:
            b, point = self.queue.pop(0)
            self.assigned[trial_id] = (b, point)
            self.batches[b].trial_ids.append(trial_id)
            if not self.queue and self.stop_reason is None:
                # budget and rounds need no result to decide: say so now (Tune may not ask again, as it
                # stops asking once it has created num_samples = budget trials)
                self.stop_reason = self._final_reason()
                if self.stop_reason is not None:
                    log.info("scan %s: batch %d is the last (%s); %d trials", self.settings.experiment, b,
                             self.stop_reason, len(self.assigned))
            return dict(point)
        return DONE if self.stop_reason is not None else None

    def complete(self, trial_id: str, result: Mapping[str, Any] | None, error: bool = False) -> None:
        """A trial ended: ``result`` is its last reported metrics (the final record when it finished)."""
        if trial_id not in self.assigned:
            log.warning("scan: result of trial %s, which the scan did not suggest; ignored", trial_id)
            return
        b, point = self.assigned[trial_id]
        result = dict(result or {})
        done = not error and result.get("phase") == "done"
        status = COMPLETED if done else FAILED
        row = make_row(self.settings.experiment, trial_id, point, result if done else None, status=status,
                       error_message=None if done else "trial ended without a final record")
        row["round"] = b
        self.rows[trial_id] = row  # a trial rerun after a restore replaces its earlier row
        self.results += 1
        batch = self.batches[b]
        if all(t in self.rows for t in batch.trial_ids) and not any(q[0] == b for q in self.queue):
            batch.finished_at = self.clock()
        self._update_gains()

    # ------------------------------------------------------------------ decisions
    def _propose(self, points: list[tuple[Point, str]]) -> None:
        batch = Batch(len(self.batches), [p for p, _ in points], [why for _, why in points], self.clock())
        self.batches.append(batch)
        keys = self.settings.space.keys
        seed, profile = seed_dimension().search_key, profile_dimension().search_key
        for p, why in points:
            log.info("scan batch %d: %s (%s)", batch.index, describe_point(keys, p), why)
            for s in self.settings.seeds:
                self.queue.append((batch.index, {seed: s, **dict(zip(keys, p)), profile: self.settings.profile}))

    def _in_flight(self) -> int:
        return sum(1 for t in self.assigned if t not in self.rows)

    def _next_batch(self) -> None:
        st = self.settings
        reason = self._stop_reason()
        if reason is None:
            if self.results <= self.used_results:
                return  # nothing learnt since the last proposal: wait for the next result
            self.used_results = self.results
            n = min(st.batch, (st.budget - len(self.assigned)) // len(st.seeds))
            table = rows_to_table(list(self.rows.values()))
            taken = sorted({st.space.key_of(p) for _, p in self.assigned.values()})
            new = choose_points(point_stats(table), table, st.space, n, taken)
            if new:
                self._propose(new)
                return
            if self._in_flight():
                return  # their results may open a gap
            reason = "no_point"
        self.stop_reason = reason
        log.info("scan %s: no new batch after batch %d (%s); %d trials", st.experiment, len(self.batches) - 1,
                 reason, len(self.assigned))

    def _final_reason(self) -> str | None:
        """The stop rules no later result can change: rounds, budget."""
        st = self.settings
        if len(self.batches) - 1 >= st.rounds:
            return "rounds"
        if st.budget - len(self.assigned) < len(st.seeds):
            return "budget"
        return None

    def _stop_reason(self) -> str | None:
        st = self.settings
        final = self._final_reason()
        if final is not None:
            return final
        gains = sorted(self.hv_by_batch.items())
        if len(gains) >= 2 and gains[-1][0] >= 1 and gains[-1][1] - gains[-2][1] < st.min_gain:
            return "min_gain"
        return None

    def _update_gains(self) -> None:
        """Hypervolume of batches 0..b for every b whose trials (and all earlier ones) have finished."""
        for batch in self.batches:
            if batch.finished_at is None:
                return
            if batch.index not in self.hv_by_batch:
                rows = [r for r in self.rows.values() if r["round"] <= batch.index]
                self.hv_by_batch[batch.index] = hypervolume_of(rows_to_table(rows))

    # ------------------------------------------------------------------ results and persistence
    def batch_of(self, trial_id: str) -> int | None:
        entry = self.assigned.get(trial_id)
        return None if entry is None else entry[0]

    def batch_mappings(self) -> list[dict[str, Any]]:
        return [b.as_mapping() for b in self.batches]

    def state(self) -> dict[str, Any]:
        """Everything, as plain data (settings is a frozen dataclass of plain values)."""
        return {"settings": self.settings, "batches": [vars(b).copy() for b in self.batches],
                "queue": list(self.queue), "assigned": dict(self.assigned), "rows": dict(self.rows),
                "stop_reason": self.stop_reason, "hv_by_batch": dict(self.hv_by_batch),
                "results": self.results, "used_results": self.used_results}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], clock: Callable[[], float] = time.time) -> "ScanPolicy":
        policy = cls(state["settings"], clock)
        policy.batches = [Batch(**b) for b in state["batches"]]
        policy.queue = list(state["queue"])
        policy.assigned = dict(state["assigned"])
        policy.rows = dict(state["rows"])
        policy.stop_reason = state["stop_reason"]
        policy.hv_by_batch = dict(state["hv_by_batch"])
        policy.results = state["results"]
        policy.used_results = state["used_results"]
        return policy
