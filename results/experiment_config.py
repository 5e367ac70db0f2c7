"""Experiment configuration: what ``hwnas search`` scans, where it writes, how much each trial gets.

Sources, later ones winning: defaults < ``--preset`` < ``--config FILE`` (YAML or JSON) < ``--set key=value``
< the explicit flags (``--name``, ``--storage``, ``--endpoint-url``). Keys are the fields below, search
keys under ``search:`` (or ``search.KEY``, or plain ``KEY`` when it is a search key). The per-trial
search keys ``seed``, ``lambda_time``, ``lambda_energy``, ``dram_time_budget_us``, ``dram_energy_budget_uj``
and ``profile`` are the scan dimensions (``results.dimensions``, where each is declared once, with its
experiment key): setting them sets ``seeds``, ``lambda_time``, ``lambda_energy``, the two budget lists
and ``profiles``. An unknown key or a bad value is a ``ConfigError`` naming both. Types and bounds are declared once per field and checked by
``searchspace.schema``; this module only resolves the spellings.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from searchspace.config import PRESETS, ConfigError, SearchConfig, parse_set
from searchspace.config import preset as search_preset
from searchspace.files import load_mapping
from searchspace.schema import build, check, fields_of, setting, unknown_key

from .dimensions import DIMENSIONS, ScanDimension
from .storage import DEFAULT_STORAGE

# scan strategies: "grid" is the full product of the dimensions; "adaptive" starts from a coarse grid and
# adds lambda points where the front has its largest gaps (results/scan_policy.py)
SCANS: tuple[str, ...] = ("grid", "adaptive")

# the search keys each trial overrides from its grid point, and the experiment field that holds the values
TRIAL_KEYS = {d.search_key: d.experiment_key for d in DIMENSIONS}


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = setting("hwnas", "folder under storage (`<storage>/<name>`); a name that holds results is refused unless --resume or --overwrite",
                        pattern=(r"[A-Za-z0-9][A-Za-z0-9._=-]*", "a plain folder name (letters, digits, . _ - =)"))
    storage: str = setting(DEFAULT_STORAGE, "local folder or s3://bucket/prefix: results, Tune state, checkpoints")
    endpoint_url: str = setting("", "S3-compatible endpoint; \"\" = AWS_ENDPOINT_URL or AWS itself")
    # the scan dimensions, one field each (seeds, lambda_time, lambda_energy, dram_time_budget_us,
    # dram_energy_budget_uj, profiles), as results/dimensions.py declares them
    for _dim in DIMENSIONS:
        __annotations__[_dim.experiment_key] = tuple[_dim.value_type, ...]
        vars()[_dim.experiment_key] = setting(_dim.default, _dim.why, **_dim.bounds)
    del _dim
    scan: str = setting("grid", "how points are chosen: \"grid\" (the full product) or \"adaptive\" "
                        "(results/scan_policy.py, a Tune Searcher)", choices=SCANS)
    scan_init: int = setting(3, "adaptive: nonzero log-spaced values per scanned lambda in the coarse grid "
                             "(0 = the configured values)", ge=0)
    scan_budget: int = setting(0, "adaptive: total trials, coarse grid included (0 = twice the coarse grid); "
                               "bounds the cost", ge=0)
    scan_rounds: int = setting(4, "adaptive: most suggestion batches after the coarse grid (batch 0); bounds "
                               "the wall time (a batch is proposed as soon as a trial finishes, no barrier)", ge=0)
    scan_batch: int = setting(2, "adaptive: new lambda points per suggestion batch; match the trials the "
                              "cluster runs at once", ge=1)
    scan_min_gain: float = setting(0.002, "adaptive: stop when a suggestion batch adds less hypervolume than this "
                                   "(of at most 1.21)", ge=0)
    max_concurrent_trials: int = setting(0, "0 = as many as the cluster's resources allow", ge=0)
    cpus_per_trial: float = setting(1.0, "CPU slots one trial holds (torch uses this many threads)", gt=0)
    gpus_per_trial: float = setting(-1.0, "GPUs one trial holds; -1 = 1 GPU per trial when the cluster has GPUs, "
                                    "else CPU only", ge=0, also={-1: "auto"})
    max_failures: int = setting(1, "Tune retries of a crashed trial; a retry resumes from its last epoch "
                                "checkpoint", ge=0, also={-1: "unlimited"})
    cost_service: str = setting("hwnas-cost", "name prefix of the experiment run's DRAM cost actor "
                                "(`<prefix>-<name>-<id>`: the driver owns it, its trials look it up)", nonempty=True)
    namespace: str = setting("hwnas", "Ray namespace of the driver, so trials and later jobs find the cost actor")
    search: SearchConfig = setting(why="base config of every trial", factory=SearchConfig)

    def __post_init__(self) -> None:
        check(self)  # types and per-field bounds, then validate()

    def validate(self) -> None:
        """Rules that span fields (the per-field bounds are declared above)."""
        for dim in DIMENSIONS:  # [] = the base's value (profiles), resolved once: to_dict/from_dict round-trip
            if not getattr(self, dim.experiment_key):
                object.__setattr__(self, dim.experiment_key, (getattr(self.search, dim.search_key),))
        if self.scan == "adaptive":
            from .scan_space import check_adaptive  # the scan's own rules (ConfigError naming key and value)

            check_adaptive(self)

    # ------------------------------------------------------------------ derived
    def values(self, dim: ScanDimension) -> tuple[Any, ...]:
        """The values of scan dimension ``dim`` (``results.dimensions``): its experiment key's."""
        return getattr(self, dim.experiment_key) or (getattr(self.search, dim.search_key),)

    @property
    def profile_list(self) -> tuple[str, ...]:
        return self.profiles or (self.search.profile,)

    def grid_points(self) -> list[dict[str, Any]]:
        """Every trial's overrides, the product of every scan dimension's values (seeds x lambda_time x
        lambda_energy x budgets x profiles): the grid scan."""
        return [dict(zip(TRIAL_KEYS, point)) for point in itertools.product(*(self.values(d) for d in DIMENSIONS))]

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


# experiment keys (all but the nested search config) and search keys: what a file or --set may name
EXPERIMENT_KEYS: tuple[str, ...] = tuple(k for k in fields_of(ExperimentConfig) if k != "search")
SEARCH_KEYS: tuple[str, ...] = tuple(fields_of(SearchConfig))


def normalise(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Any accepted spelling -> {experiment key: raw value, "search": {search key: raw value}}.

    Only the spelling is resolved here (``search:``, ``search.KEY``, plain search keys, scan dimensions);
    values are typed and checked once, by the schema, when the config is built.
    """
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
        elif key.startswith("search."):
            _put_search(out, key[len("search."):], value, source)
        elif key in EXPERIMENT_KEYS:
            explicit[key] = value
        elif key in SEARCH_KEYS:
            _put_search(out, key, value, source)
        else:
            raise unknown_key(key, value, sorted({*EXPERIMENT_KEYS, *SEARCH_KEYS, "search"}), source)
    out.update(explicit)
    return out


def _put_search(out: dict[str, Any], key: str, value: Any, source: str) -> None:
    dim = next((d for d in DIMENSIONS if d.search_key == key), None)
    if dim is not None:  # a scan dimension, whichever way it is spelled
        out[dim.experiment_key] = value
        if not dim.default and isinstance(value, dim.value_type):
            out["search"][key] = value  # one value: also the base's (what an empty list means: profile)
        return
    if key not in SEARCH_KEYS:
        raise ConfigError(f"unknown search key {key!r} (value {value!r}) in {source}; "
                          f"known search keys: {', '.join(sorted(SEARCH_KEYS))}")
    out["search"][key] = value


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **{k: v for k, v in over.items() if k != "search"}}
    merged["search"] = {**base.get("search", {}), **over.get("search", {})}
    return merged


def _build(merged: Mapping[str, Any]) -> ExperimentConfig:
    return build(ExperimentConfig, {**merged, "search": dict(merged.get("search", {}))})


# Default scans of the presets (the search part comes from searchspace.config.PRESETS).
EXPERIMENT_PRESETS: dict[str, dict[str, Any]] = {
    # two tiny trials: the end-to-end test of the whole pipeline (local Ray, storage, Pareto)
    "smoke": dict(seeds=(0,), lambda_time=(0.0, 1.0), lambda_energy=(0.0,), cpus_per_trial=1.0),
    # the demo: a real lambda scan on Fashion-MNIST; 4 trials, two at a time on a 2-core machine. Decades of
    # lambda: with the preset's arch_travel the deployed energy falls over 0.01 - 0.3 and saturates near the
    # all-pool cell above ~3 (benchmarks/alpha_motion.py), so 0.5 / 2 / 8 all landed on the cheap end
    "fashion": dict(seeds=(0,), lambda_time=(0.0, 0.03, 0.3, 3.0), lambda_energy=(0.0,), cpus_per_trial=1.0),
    # DARTS geometry on CIFAR-10, one GPU per trial: both cost terms, three seeds
    "cifar10": dict(seeds=(0, 1, 2), lambda_time=(0.0, 0.3, 1.0, 3.0), lambda_energy=(0.0, 1.0)),
}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """An experiment config file: ``searchspace.files.load_mapping`` (kept for callers of this name)."""
    return load_mapping(path)


def _read_config(config_file: str | Path | Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    """(the keys of ``config_file``, how messages name it): a YAML/JSON file, or a mapping given in Python."""
    if config_file is None:
        return {}, ""
    if isinstance(config_file, Mapping):
        return dict(config_file), "config"
    return load_config_file(config_file), f"config file {str(config_file)!r}"


def _parts(preset: str | None, config_file: str | Path | Mapping[str, Any] | None, sets: list[str] | None,
           overrides: Mapping[str, Any] | None) -> tuple[str | None, list[dict[str, Any]]]:
    """(the preset, every source normalised, in precedence order: preset < file < --set < overrides)."""
    file_data, source = _read_config(config_file)
    preset = preset or file_data.pop("preset", None)
    file_data.pop("preset", None)
    parts: list[dict[str, Any]] = []
    if preset:
        search_part = search_preset(str(preset))  # ConfigError naming the preset if unknown
        parts.append({**normalise(EXPERIMENT_PRESETS.get(str(preset), {}), f"preset {preset!r}"),
                      "search": search_part})
    if file_data:
        parts.append(normalise(file_data, source))
    if sets:
        parts.append(normalise(parse_set(sets), "--set"))
    if overrides:
        parts.append(normalise(dict(overrides), "overrides"))
    return (str(preset) if preset else None), parts


def load_experiment_config(preset: str | None = None, config_file: str | Path | Mapping[str, Any] | None = None,
                           sets: list[str] | None = None, name: str | None = None, storage: str | None = None,
                           endpoint_url: str | None = None,
                           overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """The experiment config from its sources, later ones winning: preset < ``config_file`` (a YAML/JSON
    file, or the same keys as a mapping) < ``sets`` (``--set KEY=VALUE`` strings) < ``overrides`` (keys to
    Python values) < the explicit ``name`` / ``storage`` / ``endpoint_url``. The preset also names it."""
    preset, parts = _parts(preset, config_file, sets, overrides)
    merged: dict[str, Any] = {"search": {}}
    if preset:
        merged["name"] = preset
    for part in parts:
        merged = _merge(merged, part)
    flags = {k: v for k, v in dict(name=name, storage=storage, endpoint_url=endpoint_url).items() if v is not None}
    if flags:
        merged = _merge(merged, normalise(flags, "command line"))
    return _build(merged)


def given_keys(preset: str | None = None, config_file: str | Path | Mapping[str, Any] | None = None,
               sets: list[str] | None = None, overrides: Mapping[str, Any] | None = None) -> set[str]:
    """The keys a command line sets (``name`` of an experiment key, ``search.KEY`` of a search key): what
    ``--resume`` may warn about ignoring. Only the keys given, never the defaults they sit on."""
    _, parts = _parts(preset, config_file, sets, overrides)
    keys: set[str] = set()
    for part in parts:
        keys |= {k for k in part if k != "search"} | {f"search.{k}" for k in part.get("search", {})}
    return keys


__all__ = ["ExperimentConfig", "ConfigError", "EXPERIMENT_KEYS", "EXPERIMENT_PRESETS", "PRESETS", "SCANS",
           "SEARCH_KEYS", "TRIAL_KEYS", "given_keys", "load_experiment_config", "load_config_file", "normalise"]
