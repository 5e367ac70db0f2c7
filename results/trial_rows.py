"""Trials -> result rows -> the experiment's tables (Ray-free).

``result_rows`` takes anything with ``.metrics``, ``.config`` and ``.error`` (Tune's ``Result`` at the end
of ``fit``, or ``TrialOutcome`` built from a live Tune ``Trial`` by ``orchestrator/live_results.py``), so
the tables written while trials run and the ones written at the end come from the same code.
``write_results`` writes trials.parquet, pareto.parquet and points.parquet (each replaced in one write,
see ``results/storage.py``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import pyarrow as pa

from .schema import COMPLETED, FAILED, INCOMPLETE, PARETO_FILE, TRIALS_FILE, front_of, make_row, rows_to_table
from .storage import Storage

log = logging.getLogger("hwnas.search")

UNFINISHED = "stopped without a final record"  # error_message of an incomplete trial at the end of a run


@dataclass(frozen=True)
class TrialOutcome:
    """One trial as the rows need it: its last metrics, its config, its error (None unless failed)."""
    trial_id: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    error: BaseException | None = None


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


def result_rows(experiment: str, results: Iterable[Any], unfinished: str = UNFINISHED) -> list[dict[str, Any]]:
    """Results (``.metrics``, ``.config``, ``.error``) -> result rows; every trial gives one row.
    ``unfinished`` is the error_message of a trial without a final record and without an error."""
    rows = []
    for i, r in enumerate(results):
        metrics = dict(r.metrics or {})
        config = dict(r.config or metrics.get("config") or {})
        trial_id = metrics.get("trial_id") or getattr(r, "trial_id", None) or f"trial_{i:05d}"
        completed = metrics.get("phase") == "done" and "genotype" in metrics and r.error is None
        record = {k: _decode(v) for k, v in metrics.items()} if completed else None
        if record and isinstance(record.get("config"), dict):
            config = record["config"]
        status = COMPLETED if completed else (FAILED if r.error is not None else INCOMPLETE)
        msg = error_text(r.error) if r.error is not None else (None if completed else unfinished)
        rows.append(make_row(experiment, trial_id, config, record, status=status, error_message=msg))
    return rows


def write_results(storage: Storage, name: str, rows: list[dict[str, Any]]) -> tuple[pa.Table, pa.Table]:
    """Both tables of an experiment, replacing earlier ones (never appending), and the per-point seed
    statistics (points.parquet, results/seedstats.py)."""
    table, front, points = results_tables(rows)
    write_tables(storage.child(name), table, front, points)
    return table, front


def results_tables(rows: list[dict[str, Any]]) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(trials, front, points) of the rows."""
    from .seedstats import point_stats

    table = rows_to_table(rows)
    return table, front_of(table), point_stats(table)


def keep_stored_rows(folder: Storage, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` plus what the folder's trials.parquet holds that they would lose: a trial they lack, or a
    completed trial that they have as not completed. A table in storage is never replaced by one with fewer
    trials or fewer completed ones (a Tune state older than the table, a run that failed part-way). An
    unreadable or missing table keeps nothing."""
    from .schema import conform

    try:
        stored = conform(folder.read_table(TRIALS_FILE)).to_pylist()
    except (OSError, ValueError, pa.ArrowException):  # FileNotFoundError and a failing store alike
        return rows
    by_id = {r["trial_id"]: r for r in rows}
    kept = []
    for old in stored:
        new = by_id.get(old["trial_id"])
        if new is None or (old["status"] == COMPLETED and new["status"] != COMPLETED):
            by_id[old["trial_id"]] = old
            kept.append(old["trial_id"])
    if kept:
        log.warning("%s/%s: kept %d row(s) this run does not have as completed (%s)", folder.uri, TRIALS_FILE,
                    len(kept), ", ".join(kept[:5]) + (" ..." if len(kept) > 5 else ""))
    return list(by_id.values())


def write_tables(folder: Storage, table: pa.Table, front: pa.Table, points: pa.Table) -> None:
    """trials.parquet first: it is the one that must never be lost."""
    from .seedstats import POINTS_FILE

    folder.write_table(TRIALS_FILE, table)
    folder.write_table(PARETO_FILE, front)
    folder.write_table(POINTS_FILE, points)


__all__ = ["COMPLETED", "FAILED", "INCOMPLETE", "PARETO_FILE", "TRIALS_FILE", "TrialOutcome", "error_text",
           "keep_stored_rows", "result_rows", "results_tables", "write_results", "write_tables"]
