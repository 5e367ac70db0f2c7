"""Re-costing a front on other processors without searching again (``hwnas pareto NAME --recost``). Ray-free.

Every front point is a genotype and the search config it was found with (``genotype`` and ``config`` cells of
pareto.parquet). ``recost`` costs each point's deployed network (``cost_models.derived_network_cost``: the
config's deploy_* geometry and cost_batch, optionally overridden) on each named profile, the same function a
trial reports its dram_* columns with, so a point re-costed on its own profile gives back its own columns.
``rank_correlations`` answers "would this front hold on X?": the Spearman rank correlation of the points'
DRAM energy between every pair of profiles (1 = the same order from cheapest to dearest).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa

#: the keys ``--set`` may override for a re-cost: the deployed network and the batch it is costed at
RECOST_KEYS = ("deploy_layers", "deploy_channels", "deploy_image_size", "cost_batch")

# (name, type, meaning): one row per (profile, front point); the rows of every --format and --out
RECOST_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("profile", pa.string(), "processor profile the point is re-costed on"),
    ("trial_id", pa.string(), "the front point (trial)"),
    ("seed", pa.int64(), "search seed of the trial"),
    ("lambda_time", pa.float64(), "the trial's lambda_time"),
    ("lambda_energy", pa.float64(), "the trial's lambda_energy"),
    ("accuracy", pa.float64(), "the trial's test accuracy (mean over its training seeds)"),
    ("accuracy_std", pa.float64(), "its sample std over the training seeds; null with one seed"),
    ("dram_time_us", pa.float64(), "DRAM time of the deployed network's inference on this profile, us"),
    ("dram_energy_uj", pa.float64(), "DRAM energy of the same inference, uJ"),
    ("dram_bytes", pa.int64(), "DRAM bytes of the same inference"),
    ("rank", pa.int64(), "rank of dram_energy_uj among the front's points on this profile (1 = cheapest; "
     "ties in trial_id order)"),
    ("deploy_layers", pa.int64(), "cells of the deployed network costed"),
    ("deploy_channels", pa.int64(), "its initial channels"),
    ("deploy_image_size", pa.int64(), "its input image side"),
    ("cost_batch", pa.int64(), "inference batch costed"),
)
RECOST_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in RECOST_COLUMNS])


def recost_profiles(spec: str) -> tuple[str, ...]:
    """``PROFILE[,PROFILE...]`` or ``all`` (every built-in profile) -> profile names, each checked; an
    unknown one is a ValueError listing the known profiles."""
    from cost_models.profile import known_profile_names, load_profile

    if spec.strip() == "all":
        return tuple(known_profile_names())
    names = tuple(dict.fromkeys(p.strip() for p in spec.split(",") if p.strip()))
    if not names:
        raise ValueError(f"--recost {spec!r}: name one or more profiles (comma-separated) or 'all'; "
                         f"known profiles: {', '.join(known_profile_names())}")
    for name in names:
        load_profile(name)  # CostQueryError (a ValueError) naming it and listing the known profiles
    return names


def recost_overrides(sets: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items -> overrides of the points' configs; only ``RECOST_KEYS`` (values checked when
    the configs are built)."""
    from searchspace.config import parse_set

    overrides = parse_set(list(sets)) if sets else {}
    bad = [k for k in overrides if k not in RECOST_KEYS]
    if bad:
        raise ValueError(f"--set {', '.join(bad)}: a re-cost takes only {', '.join(RECOST_KEYS)} (the deployed "
                         f"network and its batch; the genotype and everything the search learnt stay the trial's)")
    return overrides


def point_config(row: Mapping[str, Any], overrides: Mapping[str, Any] | None = None):
    """A front row's genotype and search config (with ``overrides``): (Genotype, SearchConfig). ValueError
    naming the trial when the row holds no genotype or no whole search config."""
    from searchspace.config import SearchConfig
    from searchspace.genotype import Genotype

    tid = row.get("trial_id")
    try:
        genotype = Genotype.from_json(row["genotype"]) if row.get("genotype") else None
        config = json.loads(row["config"]) if row.get("config") else None
    except ValueError as exc:
        raise ValueError(f"trial {tid}: unreadable genotype or config cell ({exc})") from None
    if genotype is None or not genotype.cells:
        raise ValueError(f"trial {tid} has no derived genotype: nothing to re-cost")
    known = {f.name for f in dataclasses.fields(SearchConfig)}
    if not isinstance(config, dict) or not {"dataset", "layers", "channels"} <= set(config):
        raise ValueError(f"trial {tid}: its config cell is not a whole search config (results written by an "
                         f"older hwnas): cannot tell which network to re-cost")
    base = SearchConfig.from_dict({k: v for k, v in config.items() if k in known})
    return genotype, base.replace(**dict(overrides or {}))


def recost(front: pa.Table | Iterable[Mapping[str, Any]], profiles: Sequence[str],
           overrides: Mapping[str, Any] | None = None, query_fn=None) -> pa.Table:
    """Every front point on every profile: one row per (profile, point), profiles in the given order, points
    by energy rank on each (``RECOST_COLUMNS``). ``query_fn``: the cost model's batched query function
    (default: computed in process)."""
    from cost_models import derived_network_cost
    from searchspace.layout import deploy_record

    rows = front.to_pylist() if isinstance(front, pa.Table) else [dict(r) for r in front]
    points = [(row, *point_config(row, overrides)) for row in rows]
    out: list[dict[str, Any]] = []
    for profile in profiles:
        block = []
        for row, genotype, config in points:
            config = config.replace(profile=profile)
            cost = derived_network_cost(genotype, config, query_fn)
            block.append({"profile": profile, "trial_id": row.get("trial_id"), "seed": row.get("seed"),
                          "lambda_time": row.get("lambda_time"), "lambda_energy": row.get("lambda_energy"),
                          "accuracy": row.get("accuracy"), "accuracy_std": row.get("accuracy_std"),
                          "dram_time_us": float(cost.dram_time_us), "dram_energy_uj": float(cost.dram_energy_uj),
                          "dram_bytes": int(cost.dram_bytes), "rank": 0, **deploy_record(config),
                          "cost_batch": config.cost_batch})
        block.sort(key=lambda r: (r["dram_energy_uj"], str(r["trial_id"])))
        for rank, r in enumerate(block, 1):
            r["rank"] = rank
        out += block
    return pa.table({n: pa.array([r[n] for r in out], type=t) for n, t, _ in RECOST_COLUMNS}, schema=RECOST_SCHEMA)


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of their positions (as Spearman's coefficient needs)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation of paired values (Pearson's over average ranks); None with fewer than two
    pairs or when either side is constant (no order to compare)."""
    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} values against {len(y)}")
    if len(x) < 2:
        return None
    rx, ry = average_ranks(x), average_ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def rank_correlations(table: pa.Table) -> list[dict[str, Any]]:
    """For every pair of profiles of a ``recost`` table: the Spearman correlation of the points' DRAM energy
    (the points both profiles hold, paired by trial_id)."""
    by_profile: dict[str, dict[str, float]] = {}
    for r in table.to_pylist():
        by_profile.setdefault(r["profile"], {})[r["trial_id"]] = r["dram_energy_uj"]
    pairs = []
    for a, b in itertools.combinations(by_profile, 2):
        common = sorted(set(by_profile[a]) & set(by_profile[b]))
        rho = spearman([by_profile[a][t] for t in common], [by_profile[b][t] for t in common])
        pairs.append({"profile_a": a, "profile_b": b, "spearman_energy": rho, "points": len(common)})
    return pairs


__all__ = ["RECOST_COLUMNS", "RECOST_KEYS", "RECOST_SCHEMA", "average_ranks", "point_config", "rank_correlations",
           "recost", "recost_overrides", "recost_profiles", "spearman"]
