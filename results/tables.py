"""Reading an experiment's tables back from storage (a local folder or S3): what ``hwnas pareto``,
``--compare`` and the plots start from. Ray-free."""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from .schema import PARETO_FILE, TRIALS_FILE, conform, front_of
from .scan_metrics import SCAN_FILE, conform_scan
from .storage import Storage


@dataclass
class Experiment:
    label: str
    uri: str
    trials: pa.Table
    scan: pa.Table | None  # scan.parquet, None for results written before it existed


def load_front(uri: str, endpoint_url: str | None = None) -> tuple[pa.Table, pa.Table]:
    """(trials, front) of the experiment at ``uri``; the front sorted by error."""
    storage = Storage.from_uri(uri, endpoint_url)
    if storage.is_s3:
        storage.check()  # unreachable endpoint / missing bucket / no credentials: one clear line
    trials = conform(storage.read_table(TRIALS_FILE))
    front = front_of(conform(storage.read_table(PARETO_FILE)))
    return trials, front


def load_scan(uri: str, endpoint_url: str | None = None) -> pa.Table | None:
    """The experiment's scan.parquet, or None where it has none."""
    storage = Storage.from_uri(uri, endpoint_url)
    return conform_scan(storage.read_table(SCAN_FILE)) if storage.exists(SCAN_FILE) else None


def load_experiment(uri: str, endpoint_url: str | None = None) -> Experiment:
    trials, _ = load_front(uri, endpoint_url)
    return Experiment(uri.rstrip("/").rsplit("/", 1)[-1], uri, trials, load_scan(uri, endpoint_url))
