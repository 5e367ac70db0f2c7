"""What an experiment run (or a finished experiment read back) amounts to: ``ExperimentSummary``, the lines
``hwnas search`` prints at the end and what ``hwnas.Experiment.summary`` holds. Ray-free."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Mapping

import pyarrow as pa

from .dimensions import of_kind, point_text
from .scan_metrics import describe_round
from .schema import COMPLETED, FAILED, INCOMPLETE, front_network_label
from .seedstats import describe_points, point_stats
from .trial_rows import PARETO_FILE, TRIALS_FILE


@dataclass(frozen=True)
class ExperimentSummary:
    """One experiment's outcome: its tables and how the run ended.

    Attributes:
        name: The experiment's name (its folder under the storage).
        uri: ``<storage>/<name>``: a local folder or ``s3://bucket/prefix/name``.
        trials: ``trials.parquet``: one row per trial, any status.
        front: ``pareto.parquet``: the non-dominated completed trials, sorted by error.
        seconds: Wall time of the run, s (a finished experiment read back: from its record's start and end
            times; None where unknown).
        scan: ``scan.parquet``: hypervolume per suggestion batch; None where the experiment has none.
        cost_stats: The cost actor's counters at the end of a run (None: no actor, or read back).
        unsaved: Why the final write to the storage failed, else None.
        local_copy: Where the tables went instead when it failed, else None.
        interrupted: The signal that stopped the run (``"SIGINT"``, ``"SIGTERM"``), else None.
        planned: Trials the scan runs in all (a grid's points x seeds; None where the scan decides as it goes,
            as the adaptive one does): an interrupted run can stop before Tune has created every trial, and
            those never have a row.
    """

    name: str
    uri: str
    trials: pa.Table
    front: pa.Table
    seconds: float | None
    scan: pa.Table | None = None
    cost_stats: Mapping[str, int] | None = None
    unsaved: str | None = None
    local_copy: str | None = None
    interrupted: str | None = None
    planned: int | None = None

    @property
    def not_started(self) -> int:
        """Planned trials without a row: the run was stopped before Tune created them (a resume runs them)."""
        return 0 if self.planned is None else max(0, self.planned - self.trials.num_rows)

    @property
    def all_completed(self) -> bool:
        """Every trial completed and none is still to start (what ``hwnas search`` exits 0 for); an
        interrupted scan that decides as it goes (adaptive) counts as unfinished."""
        if self.interrupted and self.planned is None:
            return False
        return (self.trials.num_rows > 0 and self.counts.get(COMPLETED, 0) == self.trials.num_rows
                and self.not_started == 0)

    @property
    def counts(self) -> dict[str, int]:
        """Trials per status: ``completed``, ``failed``, ``incomplete``."""
        return dict(Counter(self.trials.column("status").to_pylist()))

    def describe(self) -> str:
        """The lines ``hwnas search`` prints at the end: the counts, where the tables are, the front."""
        c = self.counts
        where = self.local_copy or self.uri
        took = "" if self.seconds is None else f" in {self.seconds:.0f}s"
        lines = [f"experiment {self.name}: {self.trials.num_rows} trials ({c.get(COMPLETED, 0)} completed, "
                 f"{c.get(FAILED, 0)} failed, {c.get(INCOMPLETE, 0)} incomplete"
                 f"{f', {self.not_started} not started' if self.not_started else ''}){took}",
                 f"  trials: {where}/{TRIALS_FILE}", f"  front ({self.front.num_rows}): {where}/{PARETO_FILE}"
                 f" (DRAM costs of the {front_network_label(self.front.to_pylist())})"]
        for r in self.front.to_pylist():  # the profile is named by the front's network label above
            std = "" if r.get("accuracy_std") is None else f" ± {r['accuracy_std']:.4f}"
            lines.append(f"    {r['trial_id']}: {point_text(r, of_kind('seed', 'weight', 'budget'))} "
                         f"accuracy={r['accuracy']:.4f}{std} "
                         f"dram_time_us={r['dram_time_us']:.4g} dram_energy_uj={r['dram_energy_uj']:.4g}")
        if self.scan is not None:
            lines += [f"  {describe_round(r)}" for r in self.scan.to_pylist()]
            points = point_stats(self.trials)
            if any(n > 1 for n in points.column("completed").to_pylist()):  # mean +- std only means something then
                lines.append("  per lambda point over seeds (* = on the front of the means):")
                lines += describe_points(points)
        for r in self.trials.to_pylist():
            if r["status"] == FAILED:
                lines.append(f"  failed {r['trial_id']}: {r['error_message']}")
        return "\n".join(lines)


__all__ = ["ExperimentSummary"]
