"""Experiments from Python: ``search`` runs one on Ray, ``load`` reads a finished one back (a local folder or
``s3://``); both return an ``Experiment``, whose tables are pyarrow Tables (``.to_pandas()`` where pandas is
installed).

Importing this module loads neither Ray nor torch: ``search`` imports the orchestrator when it runs.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from .errors import InputError, ResultsNotSaved, raises_typed

if TYPE_CHECKING:
    import pyarrow as pa

    from results.experiment_config import ExperimentConfig
    from results.summary import ExperimentSummary

log = logging.getLogger("hwnas.search")

#: a local path, as a string or a path object
PathLike = str | os.PathLike[str]


class Experiment:
    """One experiment's results, ``<storage>/<name>``: what ``search`` returns and ``load`` reads back.

    The tables are read once, when first asked for, and kept; ``load`` the path again to see a running
    experiment's newer rows. Columns: Reference, "Results tables".

    Example:
        >>> exp = hwnas.load("hwnas-results/fashion")          # doctest: +SKIP
        >>> exp.front().to_pandas()[["trial_id", "accuracy", "dram_energy_uj"]]  # doctest: +SKIP
    """

    def __init__(self, path: PathLike, *, endpoint_url: str | None = None,
                 summary: ExperimentSummary | None = None) -> None:
        """An experiment at ``path``; ``search`` and ``load`` make these (no I/O here).

        Args:
            path: ``<storage>/<name>``: a local folder or ``s3://bucket/prefix/name``.
            endpoint_url: S3-compatible endpoint (None: ``$AWS_ENDPOINT_URL``, else AWS).
            summary: The run's summary when this process ran it (its tables are then not read again).
        """
        self._path = os.fspath(path)
        self._endpoint_url = endpoint_url or None
        self._summary = summary
        self._trials: pa.Table | None = summary.trials if summary is not None else None
        self._front: pa.Table | None = summary.front if summary is not None else None
        self._scan: pa.Table | None = summary.scan if summary is not None else None
        self._scan_read = summary is not None and summary.scan is not None
        self._config: ExperimentConfig | None = None  # the config of a run of this process

    # ------------------------------------------------------------------ where
    @property
    def path(self) -> str:
        """``<storage>/<name>``: the folder (or ``s3://`` prefix) holding the experiment's tables."""
        return self._path

    @property
    def name(self) -> str:
        """The experiment's name: the last part of ``path``."""
        return self._path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def endpoint_url(self) -> str | None:
        """The S3-compatible endpoint the tables are read from (None: ``$AWS_ENDPOINT_URL``, else AWS)."""
        return self._endpoint_url

    def __repr__(self) -> str:
        return f"Experiment({self._path!r})"

    # ------------------------------------------------------------------ tables
    def _read(self) -> None:
        from results.tables import load_front

        self._trials, self._front = load_front(self._path, self._endpoint_url)

    @raises_typed
    def trials(self) -> pa.Table:
        """``trials.parquet``: one row per trial, any status (``completed``, ``failed``, ``incomplete``).

        Returns:
            A pyarrow Table with the columns of Reference "Results tables" (``results.schema.SCHEMA``).
        """
        if self._trials is None:
            self._read()
        assert self._trials is not None
        return self._trials

    @raises_typed
    def front(self) -> pa.Table:
        """``pareto.parquet``: the completed trials non-dominated in (error, DRAM time, DRAM energy), all
        minimised, sorted by error. The DRAM columns are the deployed network's (us, uJ, bytes).

        Returns:
            A pyarrow Table with the columns of ``trials()``.
        """
        if self._front is None:
            self._read()
        assert self._front is not None
        return self._front

    def points(self) -> pa.Table:
        """Seed statistics, one row per scan point (``points.parquet``'s columns): mean, sample std and best
        of the point's completed seeds, and the front over the per-point means. Computed from ``trials()``."""
        from results.seedstats import point_stats

        return point_stats(self.trials())

    @raises_typed
    def scan(self) -> pa.Table | None:
        """``scan.parquet``: one row per suggestion batch (hypervolume, front size, largest gap); None for
        results written before it existed."""
        if not self._scan_read:
            from results.tables import load_scan

            self._scan = load_scan(self._path, self._endpoint_url)
            self._scan_read = True
        return self._scan

    @raises_typed
    def config(self) -> ExperimentConfig | None:
        """The experiment's whole config, from its ``experiment.json`` (None for folders written before it
        existed)."""
        if self._config is not None:
            return self._config
        from results.experiment_record import RECORD_FILE, ExperimentRecord
        from results.storage import Storage

        folder = Storage.from_uri(self._path, self._endpoint_url)
        if not folder.exists(RECORD_FILE):
            return None
        where = folder.uri_of(RECORD_FILE)
        record = ExperimentRecord.from_json(folder.read_bytes(RECORD_FILE).decode("utf-8", errors="replace"), where)
        parent, _, name = self._path.rstrip("/").rpartition("/")
        return record.experiment(name, parent or ".", self._endpoint_url or "", where)

    @property
    def summary(self) -> ExperimentSummary:
        """How the experiment ended: counts per status, where the tables are, the front, and for a run of
        this process its wall time, whether the final write failed (``unsaved``) and any signal that
        stopped it (``interrupted``). ``summary.describe()`` gives the lines ``hwnas search`` prints."""
        if self._summary is None:
            from results.summary import ExperimentSummary

            self._summary = ExperimentSummary(self.name, self._path, self.trials(), self.front(), None,
                                              scan=self.scan())
        return self._summary

    # ------------------------------------------------------------------ shortcuts
    @raises_typed
    def plot(self, path: PathLike) -> Path:
        """Draw accuracy (error bars: the training-seed std) against the deployed network's DRAM time and
        energy, every completed trial in grey and the front highlighted, as ``hwnas pareto --plot`` does.

        Args:
            path: The PNG file to write.

        Returns:
            The path written.
        """
        from results.plot import plot_front

        return plot_front(self.trials(), path, title=self.name, scan=self.scan())

    @raises_typed
    def pick(self, rule: str = "knee") -> dict[str, Any]:
        """``hwnas.pick(self.front(), rule)``: one front point as a dict (a ``trials.parquet`` row)."""
        from results.picking import pick

        return dict(pick(self.front().to_pylist(), rule))


def front_rows(front: Any) -> pa.Table | list[dict[str, Any]]:
    """A front given as an ``Experiment`` (its ``front()``), a pyarrow Table, a pandas DataFrame, one row, or
    rows."""
    if isinstance(front, Experiment):
        return front.front()
    if hasattr(front, "to_pylist"):
        return front
    if hasattr(front, "to_dict") and hasattr(front, "columns"):  # a pandas DataFrame
        return front.to_dict("records")
    if isinstance(front, Mapping):
        return [dict(front)]
    return [dict(r) for r in front]


@contextlib.contextmanager
def console_logging(verbose: bool) -> Iterator[None]:
    """Show hwnas's progress lines (logger ``hwnas``, INFO; DEBUG with ``verbose``) on stderr while a search
    runs, unless the program configured logging itself (the command line does)."""
    logger = logging.getLogger("hwnas")
    if logging.getLogger().handlers or logger.handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@raises_typed
def search(preset: str | None = None, config: PathLike | Mapping[str, Any] | None = None, *,
           storage: str | None = None, name: str | None = None, address: str | None = None,
           endpoint_url: str | None = None, scan: str | None = None, resume: bool = False,
           overwrite: bool = False, sets: Sequence[str] = (), verbose: bool = False,
           fallback_dir: PathLike | None = None, **overrides: Any) -> Experiment:
    """Run an experiment: one two-stage search per point of seeds x lambda_time x lambda_energy (x budgets x
    profiles) as one Ray Tune ``Tuner``, then the tables; what ``hwnas search`` does.

    Everything that can fail without running a trial is checked first, before Ray starts: the config, the
    processor profiles, the storage and the experiment's folder (a name that holds results is refused
    unless ``resume`` or ``overwrite``). Ray is joined at ``address`` (default: ``$RAY_ADDRESS``, else a
    fresh local Ray, left running afterwards as Ray Tune leaves it). Progress lines go to the ``hwnas``
    logger (on stderr unless logging is configured). SIGINT / SIGTERM stop the trials gracefully and
    return what finished (``summary.interrupted``).

    Args:
        preset: A named starting point: ``"smoke"``, ``"fashion"`` or ``"cifar10"``; also the default name.
        config: An experiment config file (YAML or JSON), or the same keys as a mapping: experiment keys,
            and search keys under ``search:`` (or as ``search.KEY``, or plain).
        storage: Where results go: a local folder (default ``./hwnas-results``) or ``s3://bucket/prefix``.
        name: The experiment's folder under ``storage`` (default: the preset's name, else ``hwnas``).
        address: The Ray cluster, as ``ray.init`` takes it (``"auto"``, ``"ray://head:10001"``, host:port).
        endpoint_url: S3-compatible endpoint (default: ``$AWS_ENDPOINT_URL``, else AWS).
        scan: ``"grid"`` (every point of the lists) or ``"adaptive"`` (a coarse grid, then points where the
            front has its largest gaps); overrides the config's ``scan``.
        resume: Continue the interrupted experiment ``name`` under ``storage`` from its saved config
            (``experiment.json``); settings given besides are ignored with a warning naming them.
        overwrite: Start ``name`` anew although its folder holds results: the earlier folder is moved to
            ``<name>.replaced-<UTC time>`` (nothing is deleted).
        sets: ``KEY=VALUE`` strings as ``--set`` takes them (values JSON where they parse).
        verbose: Ray's and Tune's own log lines too, and hwnas's DEBUG lines.
        fallback_dir: Where the tables go if the storage refuses them (default ``./hwnas-unsaved``).
        **overrides: Config keys with Python values, winning over ``preset``, ``config`` and ``sets``:
            experiment keys (``seeds=[0, 1]``, ``lambda_time=[0, 0.5, 2]``, ``dram_time_budget_us=[150,
            300]``, ``max_concurrent_trials=2``) and search keys (``max_epochs=2``, ``train_size=500``);
            ``seed``, ``lambda_time``, ``lambda_energy``, the budgets and ``profile`` are scan dimensions.

    Returns:
        The experiment; ``summary.all_completed`` is False when a trial failed, is incomplete or the run
            was interrupted (the command line exits 1 then).

    Raises:
        ConfigError: A config key or value (before Ray starts).
        CostQueryError: An unknown processor profile.
        StorageError: A storage that cannot be used (unreachable endpoint, missing bucket, no credentials).
        ExperimentExists: ``name`` holds results and neither ``resume`` nor ``overwrite`` was given.
        ExperimentInUse: Another driver runs the experiment now.
        InputError: Anything else wrong with the input, e.g. ``resume`` of a name that does not exist, or
            a trial larger than any node of a local Ray.
        ResultsNotSaved: The final tables could not be written to the storage; they are in a local folder
            (``exc.experiment.path``).
    """
    from results.experiment_config import given_keys, load_experiment_config
    from results.experiment_record import preflight, resume_preflight

    if resume and overwrite:
        raise InputError("resume and overwrite exclude each other: resume continues the experiment, overwrite "
                         "starts it anew")
    if resume and not name:
        raise InputError("resume needs the experiment's name")
    overrides = {**overrides, **({"scan": scan} if scan else {})}  # scan= wins over the config's
    sets = list(sets)
    config = os.fspath(config) if isinstance(config, os.PathLike) else config
    given = bool(preset or config or sets or overrides)
    exp = load_experiment_config(preset=preset, config_file=config, sets=sets, name=name, storage=storage,
                                 endpoint_url=endpoint_url, overrides=overrides)
    if resume:  # the saved config, before Ray: an unknown name fails here and creates nothing
        keys = given_keys(preset=preset, config_file=config, sets=sets, overrides=overrides) if given else None
        checked = resume_preflight(str(name), exp.storage, endpoint_url or "", exp if given else None, keys)
    else:
        checked = preflight(exp, overwrite=overwrite)
    return run_checked(checked, address=address, verbose=verbose, fallback_dir=fallback_dir)


def run_checked(checked: Any, *, address: str | None, verbose: bool, fallback_dir: PathLike | None) -> Experiment:
    """Run an experiment its preflight passed (``results.experiment_record.Preflight``) and wrap the result."""
    from orchestrator.experiment import RunOptions, run_prepared

    exp = checked.experiment
    # RAY_ADDRESS is read here, at the entry point: Ray sets it for a Ray job's driver (hwnas submit)
    options = RunOptions(address=address, ray_address_env=os.environ.get("RAY_ADDRESS"), verbose=verbose,
                         fallback_dir=os.fspath(fallback_dir) if fallback_dir else str(Path.cwd() / "hwnas-unsaved"))
    with console_logging(verbose):
        summary = run_prepared(checked, options)
        if summary.interrupted:
            log.warning("interrupted by %s", summary.interrupted)
        elif not summary.unsaved:
            log.info("finished")
    if summary.unsaved:
        local = Experiment(summary.local_copy or summary.uri, summary=summary)
        raise ResultsNotSaved(f"the results could not be written to {summary.uri} ({summary.unsaved}); every "
                              f"trial's row is in {summary.local_copy}", local)
    experiment = Experiment(summary.uri, endpoint_url=exp.endpoint_url or None, summary=summary)
    experiment._config = exp
    return experiment


@raises_typed
def load(uri: PathLike, *, endpoint_url: str | None = None) -> Experiment:
    """Read a finished (or running) experiment back: its ``trials.parquet`` and ``pareto.parquet``.

    Args:
        uri: ``<storage>/<name>``: a local folder or ``s3://bucket/prefix/name`` (credentials from the
            standard AWS chain).
        endpoint_url: S3-compatible endpoint (default: ``$AWS_ENDPOINT_URL``, else AWS).

    Returns:
        The experiment, its tables read.

    Raises:
        NotFoundError: ``uri`` holds no ``trials.parquet``.
        StorageError: The S3 endpoint, bucket or credentials cannot be used.
    """
    experiment = Experiment(uri, endpoint_url=endpoint_url)
    experiment.trials()  # read now: a wrong path fails here, not at first use
    return experiment


__all__ = ["Experiment", "front_rows", "load", "search"]
