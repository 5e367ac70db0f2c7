"""``ExperimentSummary``'s counts and exit status when a run is interrupted before Tune created every
planned trial (a grid run one trial at a time: the next trial exists only once a slot frees)."""
from __future__ import annotations

import pyarrow as pa
import pytest

from results.schema import COMPLETED, INCOMPLETE, SCHEMA
from results.summary import ExperimentSummary


def table(*statuses: str) -> pa.Table:
    rows = [{name: None for name in SCHEMA.names} | {"trial_id": f"t{i}", "status": s}
            for i, s in enumerate(statuses)]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def summary(statuses, planned, interrupted=None) -> ExperimentSummary:
    return ExperimentSummary("x", "/r/x", table(*statuses), table(), 1.0, interrupted=interrupted, planned=planned)


@pytest.mark.parametrize("statuses, planned, interrupted, done, not_started", [
    ((COMPLETED, COMPLETED), 2, None, True, 0),
    ((COMPLETED,), 2, "SIGINT", False, 1),        # the second trial never created: not a finished grid
    ((COMPLETED, INCOMPLETE), 2, "SIGINT", False, 0),
    ((COMPLETED, COMPLETED), 2, "SIGTERM", True, 0),  # everything ran before the signal
    ((COMPLETED,), None, None, True, 0),            # adaptive, ended on its own
    ((COMPLETED,), None, "SIGINT", False, 0),       # adaptive, stopped: it may have had more to run
])
def test_planned_trials_without_a_row_are_not_started(statuses, planned, interrupted, done, not_started):
    s = summary(statuses, planned, interrupted)
    assert s.all_completed is done and s.not_started == not_started
    first = s.describe().splitlines()[0]
    assert first.startswith(f"experiment x: {len(statuses)} trials (")
    assert first.endswith(f", {not_started} not started) in 1s" if not_started else " incomplete) in 1s")
