"""An experiment's folder, ``<storage>/<name>``: what it holds, whether a run may use it, and its record.

``experiment.json`` is written by the driver before the first trial starts: the full experiment config
(``ExperimentConfig.to_dict()``), the hwnas version and when the run started; the driver rewrites it at
the end with the trials' counts. ``hwnas search --resume NAME`` rebuilds the experiment from it, so
only ``--storage`` (and ``--endpoint-url``) and the name are needed again.

``preflight`` (a new run) and ``resume_preflight`` (``--resume NAME``) check everything that can fail
without running a trial, before Ray is contacted and each once: the processor profiles, the storage, and
on a resume the folder (``prepare_folder``) and its record. ``Preflight`` holds what they found; its
``claim`` then takes the folder for this driver. ``prepare_folder`` is the check that keeps results from
being replaced without being asked:

* a new run refuses a folder that holds anything (results, Tune state, checkpoints) unless
  ``--overwrite``, which moves the earlier experiment aside to ``<name>.replaced-<UTC time>`` (nothing is
  deleted) and says so;
* ``--resume`` refuses a folder without Tune state, creating nothing;
* ``claim_folder`` then claims the folder for this driver (``results/claim.py``), so that a second
  driver of the same experiment exits 2 naming the first instead of writing beside it.

Ray-free (the layers test checks): the storage, the config and the cost model's profiles.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from searchspace.errors import InputError

from .claim import CLAIM_FILE, Claim, Holder, in_use, stale_or_absent
from .experiment_config import ExperimentConfig
from .storage import Storage

log = logging.getLogger("hwnas.search")

RECORD_FILE = "experiment.json"
RECORD_FORMAT = "hwnas-experiment/1"
TUNE_STATE_FILE = "tuner.pkl"  # what tune.Tuner.can_restore looks for: the folder holds a Tune experiment
# keys that say where the experiment is, not what it is: taken from the command line on --resume
LOCATION_KEYS = ("name", "storage", "endpoint_url")


class ExperimentExists(InputError):
    """A new run named an experiment folder that holds results; the message says how to go on (resume or
    overwrite; a ``ValueError``, exit code 2)."""


@dataclass(frozen=True)
class ExperimentRecord:
    """What ``experiment.json`` holds."""
    config: Mapping[str, Any]  # ExperimentConfig.to_dict()
    hwnas_version: str = "unknown"
    started_utc: str = ""
    finished_utc: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)  # trial statuses at the end of the last run
    format: str = RECORD_FORMAT

    def to_json(self) -> str:
        return json.dumps({"format": self.format, "hwnas_version": self.hwnas_version,
                           "started_utc": self.started_utc, "finished_utc": self.finished_utc,
                           "counts": dict(self.counts), "config": dict(self.config)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> "ExperimentRecord":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT or not isinstance(data.get("config"), dict):
            raise ValueError(f"{where}: not an hwnas experiment record (expected format {RECORD_FORMAT!r} "
                             "and a 'config' mapping)")
        return cls(config=data["config"], hwnas_version=str(data.get("hwnas_version", "unknown")),
                   started_utc=str(data.get("started_utc", "")), finished_utc=data.get("finished_utc"),
                   counts=dict(data.get("counts") or {}))

    def experiment(self, name: str, storage: str, endpoint_url: str, where: str) -> ExperimentConfig:
        """The saved config, at the location the user gave now (the folder may have been moved)."""
        data = {**self.config, "name": name, "storage": storage, "endpoint_url": endpoint_url}
        try:
            return ExperimentConfig.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{where}: the saved config no longer loads ({exc})") from None


@dataclass(frozen=True)
class Preflight:
    """What a run found before Ray (module docstring): its experiment, its storage (reachable), whether it
    resumes or overwrites, and on a resume the folder's record (None for a folder from before records)."""
    experiment: ExperimentConfig
    storage: Storage
    resume: bool = False
    overwrite: bool = False
    record: ExperimentRecord | None = None

    def claim(self) -> Claim:
        """This driver's claim on the folder (``claim_folder``); a resume's folder was checked already, so
        it only takes over a stale claim (refusing a live one)."""
        name = self.experiment.name
        if self.resume:
            return Claim.take(self.storage.child(name), name, "resume")
        return claim_folder(self.storage, name, overwrite=self.overwrite)


def check_profiles(exp: ExperimentConfig) -> None:
    """Unknown processor profiles fail here, before Ray and before any trial."""
    from cost_models.profile import load_profile

    for name in exp.profile_list:
        load_profile(name)  # ValueError naming the profile


def preflight(exp: ExperimentConfig, resume: bool = False, overwrite: bool = False) -> Preflight:
    """Everything a run of ``exp`` can fail on without running a trial: profiles, storage (StorageError /
    ValueError), and with ``resume`` the folder's Tune state (``prepare_folder``) and its record. A new
    run's folder is checked when it is claimed (``Preflight.claim``)."""
    check_profiles(exp)
    storage = Storage.from_uri(exp.storage, exp.endpoint_url or None).check()
    if not resume:
        return Preflight(exp, storage, overwrite=overwrite)
    prepare_folder(storage, exp.name, resume=True, overwrite=overwrite)
    return Preflight(exp, storage, resume=True, record=read_record(storage, exp.name))


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def hwnas_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hwnas")
    except PackageNotFoundError:
        return "unknown"


def write_record(storage: Storage, exp: ExperimentConfig, started_utc: str | None = None,
                 counts: Mapping[str, int] | None = None) -> ExperimentRecord:
    """Write (replace) ``experiment.json``; with ``counts`` it marks the run finished."""
    record = ExperimentRecord(config=exp.to_dict(), hwnas_version=hwnas_version(),
                              started_utc=started_utc or utc_now(),
                              finished_utc=utc_now() if counts is not None else None, counts=dict(counts or {}))
    storage.child(exp.name).write_bytes(RECORD_FILE, record.to_json().encode())
    return record


def read_record(storage: Storage, name: str) -> ExperimentRecord | None:
    """The folder's record, or None when it has none (a folder from before records, or no folder)."""
    folder = storage.child(name)
    try:
        text = folder.read_bytes(RECORD_FILE).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return ExperimentRecord.from_json(text, folder.uri_of(RECORD_FILE))


def archive_name(name: str, when: float | None = None) -> str:
    return f"{name}.replaced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(when))}"


def prepare_folder(storage: Storage, name: str, resume: bool = False, overwrite: bool = False) -> str | None:
    """The folder preflight (module docstring); returns the archive's URI when ``overwrite`` moved one.

    Raises ``ExperimentExists`` (new run, folder in use) or ``ValueError`` (resume of nothing)."""
    folder = storage.child(name)
    entries = folder.entries()
    if resume:
        if overwrite:
            raise ValueError("--resume and --overwrite exclude each other: resume continues the experiment, "
                             "overwrite starts it anew")
        if TUNE_STATE_FILE not in entries:
            what = "does not exist" if not entries else "holds no Tune experiment state to resume"
            raise ValueError(f"cannot resume {name!r}: {folder.uri} {what}"
                             + (f" (experiments there: {', '.join(experiments_in(storage)) or 'none'})"
                                if not entries else ""))
        return None
    if not entries:
        return None
    if not overwrite:
        raise ExperimentExists(
            f"experiment {name!r} already has results in {folder.uri} ({len(entries)} entries); "
            f"continue it with --resume {name}, start it anew with --overwrite (the earlier one is moved to "
            f"{name}.replaced-<time>), or choose another --name")
    target = archive_name(name)
    uri = storage.archive(name, target)
    log.warning("--overwrite: the earlier experiment %s was moved to %s (nothing deleted)", folder.uri, uri)
    return uri


def claim_folder(storage: Storage, name: str, resume: bool = False, overwrite: bool = False) -> Claim:
    """``prepare_folder``, then this driver's claim on the folder (``results/claim.py``), before Ray.

    A new run creates the claim exclusively (a second run started at the same time gets
    ``ExperimentInUse`` naming the first); ``--resume`` takes over a stale claim and refuses a live one;
    ``--overwrite`` takes the old folder's claim (refusing a live driver) before moving it aside, then
    claims the new folder. A folder whose only content is a stale claim (its driver died before writing
    anything) is free for a new run."""
    folder = storage.child(name)
    if resume:
        prepare_folder(storage, name, resume=True)
        return Claim.take(folder, name, "resume")
    entries = folder.entries()
    if CLAIM_FILE in entries:
        if not stale_or_absent(folder):
            holder = Claim(folder, name, Holder()).current() or Holder()
            raise in_use(name, folder, holder)
        if entries == [CLAIM_FILE]:
            return Claim.take(folder, name, "search")
    if overwrite and entries:
        old = Claim.take(folder, name, "overwrite")
        try:
            moved = prepare_folder(storage, name, overwrite=True)
        except BaseException:
            old.release()
            raise
        old.moved_to(storage.child(moved.rstrip("/").rsplit("/", 1)[1]) if moved else folder)
    else:
        prepare_folder(storage, name)  # ExperimentExists when it holds results
    return Claim.create(folder, name, "overwrite" if overwrite else "search")


def experiments_in(storage: Storage, limit: int = 10) -> list[str]:
    """Experiment folders under the storage (those with a record or Tune state), for error messages."""
    names = []
    for entry in storage.entries():
        sub = storage.child(entry)
        if sub.exists(RECORD_FILE) or sub.exists(TUNE_STATE_FILE):
            names.append(entry)
            if len(names) >= limit:
                break
    return names


def resume_config(record: ExperimentRecord | None, storage: Storage, name: str, given: ExperimentConfig | None,
                  endpoint_url: str = "", keys: set[str] | None = None) -> ExperimentConfig:
    """The experiment to resume: its saved ``record`` (``given``, built from --preset/--config/--set, only
    warns where it differs: the saved settings apply), or ``given`` for a folder from before records
    (``record`` None). ``keys``: the keys the command line set (``experiment_config.given_keys``); the
    warning names only those (None: every key that differs)."""
    where = storage.child(name).uri_of(RECORD_FILE)
    if record is None:
        if given is None:
            raise ValueError(f"cannot resume {name!r}: {where} does not exist (a folder from an older hwnas); "
                             "give the first run's --preset/--config/--set again")
        return given
    saved = record.experiment(name, storage.uri, endpoint_url, where)
    if given is not None:
        changed = [k for k in differences(saved, given) if keys is None or k in keys]
        if changed:
            log.warning("resuming %s with its saved settings; ignored from the command line: %s", name,
                        ", ".join(changed))
    return saved


def differences(a: ExperimentConfig, b: ExperimentConfig) -> list[str]:
    """Keys (``search.KEY`` for search keys) whose values differ, the location keys aside."""
    da, db = a.to_dict(), b.to_dict()
    out = [k for k in da if k not in (*LOCATION_KEYS, "search") and da[k] != db.get(k)]
    out += [f"search.{k}" for k in da["search"] if da["search"][k] != db["search"].get(k)]
    return out


def resume_preflight(name: str, storage_uri: str, endpoint_url: str, given: ExperimentConfig | None,
                     keys: set[str] | None = None) -> Preflight:
    """``hwnas search --resume NAME``'s preflight, each check once: the storage, the folder (Tune state),
    its record, the experiment it holds (``resume_config``) and that experiment's profiles. Nothing is
    created when there is nothing to resume."""
    from pathlib import Path

    storage = Storage.from_uri(storage_uri, endpoint_url or None)
    if not storage.is_s3 and not Path(storage.root).is_dir():
        raise ValueError(f"cannot resume {name!r}: the storage folder {storage.uri} does not exist")
    storage.check()
    prepare_folder(storage, name, resume=True)
    record = read_record(storage, name)
    exp = resume_config(record, storage, name, given, endpoint_url, keys)
    check_profiles(exp)
    return Preflight(exp, storage, resume=True, record=record)


def experiment_for_resume(name: str, storage_uri: str, endpoint_url: str,
                          given: ExperimentConfig | None, keys: set[str] | None = None) -> ExperimentConfig:
    """The experiment ``hwnas search --resume NAME`` continues: ``resume_preflight``'s."""
    return resume_preflight(name, storage_uri, endpoint_url, given, keys).experiment
