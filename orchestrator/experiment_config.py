"""Experiment configuration: what ``hwnas search`` scans, where it writes, how much each trial gets.

Sources, later ones winning: defaults < ``--preset`` < ``--config FILE`` (YAML or JSON) < ``--set key=value``
< the explicit flags (``--name``, ``--storage``, ``--endpoint-url``). Keys are the fields below, search
keys under ``search:`` (or ``search.KEY``, or plain ``KEY`` when it is a search key). The per-trial
search keys ``seed``, ``lambda_time``, ``lambda_energy`` and ``profile`` are the scan dimensions:
setting them sets ``seeds``, ``lambda_time``, ``lambda_energy``, ``profiles``. An unknown key or a bad
value is a ``ConfigError`` naming both.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from searchspace.config import PRESETS, ConfigError, SearchConfig, parse_set
from searchspace.config import preset as search_preset

from .storage import DEFAULT_STORAGE

# scan strategies: "grid" is the full product of the dimensions; "adaptive" starts from a coarse grid and
# adds lambda points where the front has its largest gaps (orchestrator/scan.py)
SCANS: tuple[str, ...] = ("grid", "adaptive")

# the search keys each trial overrides from its grid point, and the experiment field that holds the values
TRIAL_KEYS = {"seed": "seeds", "lambda_time": "lambda_time", "lambda_energy": "lambda_energy", "profile": "profiles"}


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "hwnas"  # folder under storage (<storage>/<name>); rerunning a name replaces its tables
    storage: str = DEFAULT_STORAGE  # local folder or s3://bucket/prefix: results, Tune state, checkpoints
    endpoint_url: str = ""  # S3-compatible endpoint; "" = AWS_ENDPOINT_URL or AWS itself
    seeds: tuple[int, ...] = (0,)  # scan dimension: seed variance is part of every front
    lambda_time: tuple[float, ...] = (0.0,)  # scan dimension: weights of the DRAM time term (seed 2)
    lambda_energy: tuple[float, ...] = (0.0,)  # scan dimension: weights of the DRAM energy term (seed 2)
    profiles: tuple[str, ...] = ()  # scan dimension: processors; () = (search.profile,)
    scan: str = "grid"  # how points are chosen: "grid" (the full product) or "adaptive" (orchestrator/scan.py)
    scan_init: int = 3  # adaptive: nonzero log-spaced values per scanned lambda in the coarse grid (0 = the configured values)
    scan_budget: int = 0  # adaptive: total trials, coarse grid included (0 = twice the coarse grid); bounds the cost
    scan_rounds: int = 4  # adaptive: most rounds after the coarse one; bounds the wall time (each round waits for its slowest trial)
    scan_batch: int = 2  # adaptive: new lambda points per round; match the trials the cluster runs at once
    scan_min_gain: float = 0.002  # adaptive: stop when a round adds less hypervolume than this (of at most 1.21)
    max_concurrent_trials: int = 0  # 0 = as many as the cluster's resources allow
    cpus_per_trial: float = 1.0  # CPU slots one trial holds (torch uses this many threads)
    gpus_per_trial: float = -1.0  # -1 = 1 GPU per trial when the cluster has GPUs, else CPU only
    max_failures: int = 1  # Tune retries of a crashed trial; a retry resumes from its last epoch checkpoint
    cost_service: str = "hwnas-cost"  # name of the Ray actor serving DRAM cost queries (shared by trials)
    namespace: str = "hwnas"  # Ray namespace of the driver, so trials and later jobs find the cost actor
    search: SearchConfig = field(default_factory=SearchConfig)  # base config of every trial

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> None:
            raise ConfigError(f"config key {key!r} = {getattr(self, key)!r}: {why}")

        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._=-]*", self.name or ""):
            bad("name", "must be a plain folder name (letters, digits, . _ - =)")
        for key in ("seeds", "lambda_time", "lambda_energy"):
            if not getattr(self, key):
                bad(key, "needs at least one value")
        for key in ("lambda_time", "lambda_energy"):
            for v in getattr(self, key):
                if not math.isfinite(v) or v < 0:
                    bad(key, f"{v!r} is not a finite number >= 0")
        if len(set(self.seeds)) != len(self.seeds):
            bad("seeds", "has duplicates")
        if any(not p for p in self.profiles):
            bad("profiles", "empty profile name")
        if not self.profiles:  # resolved once, so to_dict/from_dict round-trip exactly
            object.__setattr__(self, "profiles", (self.search.profile,))
        if self.scan not in SCANS:
            bad("scan", f"expected one of {', '.join(SCANS)}")
        for key in ("scan_init", "scan_budget", "scan_rounds"):
            if getattr(self, key) < 0:
                bad(key, "must be >= 0")
        if self.scan_batch < 1:
            bad("scan_batch", "must be >= 1")
        if not (math.isfinite(self.scan_min_gain) and self.scan_min_gain >= 0):
            bad("scan_min_gain", "must be a finite number >= 0")
        if self.scan == "adaptive":
            from .scan import check_adaptive  # the scan's own rules (ConfigError naming key and value)

            check_adaptive(self)
        if self.max_concurrent_trials < 0:
            bad("max_concurrent_trials", "must be >= 0")
        if not self.cpus_per_trial > 0:
            bad("cpus_per_trial", "must be > 0")
        if self.gpus_per_trial < 0 and self.gpus_per_trial != -1:
            bad("gpus_per_trial", "must be >= 0, or -1 for auto")
        if self.max_failures < -1:
            bad("max_failures", "must be >= 0, or -1 for unlimited")
        if not self.cost_service:
            bad("cost_service", "must name the cost actor")

    # ------------------------------------------------------------------ derived
    @property
    def profile_list(self) -> tuple[str, ...]:
        return self.profiles or (self.search.profile,)

    def grid_points(self) -> list[dict[str, Any]]:
        """Every trial's overrides, seeds x lambda_time x lambda_energy x profiles (the grid scan)."""
        return [dict(seed=s, lambda_time=lt, lambda_energy=le, profile=p)
                for s, lt, le, p in itertools.product(self.seeds, self.lambda_time, self.lambda_energy, self.profile_list)]

    def trial_config(self, point: Mapping[str, Any]) -> SearchConfig:
        return self.search.replace(**point)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "search"}
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
        d["search"] = self.search.to_dict()
        return d

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExperimentConfig":
        return _build(normalise(data, "config"))


_EXP_FIELDS = {f.name: f for f in dataclasses.fields(ExperimentConfig) if f.name != "search"}
_SEARCH_FIELDS = {f.name for f in dataclasses.fields(SearchConfig)}


def _tuple(key: str, value: Any, kind: type) -> tuple:
    if isinstance(value, str):
        value = [v.strip() for v in value.strip("[]()").split(",") if v.strip()]
    elif not isinstance(value, (list, tuple)):
        value = [value]
    out = []
    for v in value:
        try:
            if kind is int:
                if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                    raise ValueError
                out.append(int(v))
            elif kind is float:
                if isinstance(v, bool):
                    raise ValueError
                out.append(float(v))
            else:
                out.append(str(v))
        except (TypeError, ValueError):
            raise ConfigError(f"config key {key!r}: cannot use {v!r} (in {value!r}) as {kind.__name__}") from None
    return tuple(out)


def _scalar(key: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(value, (list, dict)):
            raise ValueError
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(default, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key {key!r}: cannot use {value!r} as {type(default).__name__}") from None


def normalise(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Any accepted spelling -> {experiment field: typed value, "search": {search key: raw value}}."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
    out: dict[str, Any] = {"search": {}}
    explicit: dict[str, Any] = {}  # experiment fields given as such win over search.seed etc. in one source
    for key, value in data.items():
        key = str(key)
        if key == "search":
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key 'search' = {value!r}: expected a mapping of search keys")
            for k, v in value.items():
                _put_search(out, str(k), v, source)
            continue
        if key.startswith("search."):
            _put_search(out, key[len("search."):], value, source)
            continue
        if key in _EXP_FIELDS:
            explicit[key] = _exp_value(key, value)
        elif key in _SEARCH_FIELDS or key in TRIAL_KEYS:
            _put_search(out, key, value, source)
        else:
            known = sorted(set(_EXP_FIELDS) | _SEARCH_FIELDS | {"search"})
            raise ConfigError(f"unknown config key {key!r} (value {value!r}) in {source}; known keys: {', '.join(known)}")
    out.update(explicit)
    return out


def _exp_value(key: str, value: Any) -> Any:
    f = _EXP_FIELDS[key]
    if key == "seeds":
        return _tuple(key, value, int)
    if key in ("lambda_time", "lambda_energy"):
        return _tuple(key, value, float)
    if key == "profiles":
        return _tuple(key, value, str)
    return _scalar(key, value, f.default)


def _put_search(out: dict[str, Any], key: str, value: Any, source: str) -> None:
    if key in TRIAL_KEYS:  # a scan dimension, whichever way it is spelled
        out[TRIAL_KEYS[key]] = _exp_value(TRIAL_KEYS[key], value)
        if key == "profile" and isinstance(value, str):
            out["search"]["profile"] = value  # also the base profile (used when profiles is empty)
        return
    if key not in _SEARCH_FIELDS:
        raise ConfigError(f"unknown search key {key!r} (value {value!r}) in {source}; "
                          f"known search keys: {', '.join(sorted(_SEARCH_FIELDS))}")
    out["search"][key] = value


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **{k: v for k, v in over.items() if k != "search"}}
    merged["search"] = {**base.get("search", {}), **over.get("search", {})}
    return merged


def _build(merged: Mapping[str, Any]) -> ExperimentConfig:
    search_dict = dict(merged.get("search", {}))
    search = SearchConfig.from_dict(search_dict)
    kwargs = {k: v for k, v in merged.items() if k != "search"}
    return ExperimentConfig(search=search, **kwargs)


# Default scans of the presets (the search part comes from searchspace.config.PRESETS).
EXPERIMENT_PRESETS: dict[str, dict[str, Any]] = {
    # two tiny trials: the end-to-end test of the whole pipeline (local Ray, storage, Pareto)
    "smoke": dict(seeds=(0,), lambda_time=(0.0, 1.0), lambda_energy=(0.0,), cpus_per_trial=1.0),
    # the demo: a real lambda scan on Fashion-MNIST; 4 trials, two at a time on a 2-core machine
    "fashion": dict(seeds=(0,), lambda_time=(0.0, 0.5, 2.0, 8.0), lambda_energy=(0.0,), cpus_per_trial=1.0),
    # DARTS geometry on CIFAR-10, one GPU per trial: both cost terms, three seeds
    "cifar10": dict(seeds=(0, 1, 2), lambda_time=(0.0, 0.3, 1.0, 3.0), lambda_energy=(0.0, 1.0)),
}


def load_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {str(p)!r} does not exist") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError: name the file and the parser's words
        raise ConfigError(f"config file {str(p)!r}: cannot parse ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_experiment_config(preset: str | None = None, config_file: str | Path | None = None,
                           sets: list[str] | None = None, name: str | None = None, storage: str | None = None,
                           endpoint_url: str | None = None) -> ExperimentConfig:
    """The CLI's way in: preset < file < --set < explicit flags."""
    file_data = load_config_file(config_file) if config_file else {}
    preset = preset or file_data.pop("preset", None)
    file_data.pop("preset", None)
    merged: dict[str, Any] = {"search": {}}
    if preset:
        search_part = search_preset(str(preset))  # ConfigError naming the preset if unknown
        merged = _merge(merged, {**normalise(EXPERIMENT_PRESETS.get(str(preset), {}), f"preset {preset!r}"),
                                 "search": search_part})
        merged["name"] = str(preset)
    if file_data:
        merged = _merge(merged, normalise(file_data, f"config file {str(config_file)!r}"))
    if sets:
        merged = _merge(merged, normalise(parse_set(sets), "--set"))
    flags = {k: v for k, v in dict(name=name, storage=storage, endpoint_url=endpoint_url).items() if v is not None}
    if flags:
        merged = _merge(merged, normalise(flags, "command line"))
    return _build(merged)


__all__ = ["ExperimentConfig", "ConfigError", "EXPERIMENT_PRESETS", "PRESETS", "SCANS", "load_experiment_config",
           "load_config_file", "normalise"]
