"""The adaptive scan's lambda space (Ray-free): coarse grid, log coordinates, gap filling, config rules.

- The scanned dimensions are whichever of ``lambda_time``, ``lambda_energy``, ``dram_time_budget_us``,
  ``dram_energy_budget_uj`` have two or more configured values. A point is the tuple of ``point_keys``:
  (lambda_time, lambda_energy), plus (dram_time_budget_us, dram_energy_budget_uj) when any budget is set.
- The coarse grid: lambda = 0 and ``scan_init`` log-spaced values between the smallest nonzero and the
  largest configured value of each *scanned* lambda; for a scanned budget (0 is "off", not an end of the
  range, so a scanned budget's values must all be > 0) ``max(scan_init, 2)`` log-spaced values from its
  smallest to its largest (scan_init=0: the configured values). The product over the scanned dimensions,
  every point with every seed.
- New points (``choose_points``): the front over the per-point means (``seedstats``) is taken in min-max
  normalised objective space (error, dram_time_us, dram_energy_uj); its gaps (``scan_metrics.front_gaps``)
  are filled longest first. For a gap between points A and B the new lambda is their geometric mean in
  every scanned dimension (lambda = 0 sits at a fixed "zero position" two octaves below the smallest
  nonzero coarse value, so the mean of 0 and v is sqrt(v * lo / 4)); a candidate too close to a point
  already run or in flight (closer than a factor ``MIN_STEP`` in lambda) is replaced by the midpoint of
  the longer half towards it, and a gap with no room left is skipped. With no usable front gap, the
  widest unexplored stretch of lambda space is bisected instead.

The dimensions are those of ``results.dimensions`` (weights: the lambdas; budgets). What this module
reads of an experiment config is ``ScanRange``, a protocol: it never imports ``experiment_config``,
which calls ``check_adaptive`` from its own validation.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np
import pyarrow as pa

from searchspace.config import ConfigError

from .dimensions import ScanDimension, by_search_key, coordinate_dimensions, keys, of_kind
from .scan_metrics import front_gaps, minmax_bounds, mst_edges, trial_objectives

LAMBDA_KEYS = keys(of_kind("weight"))
BUDGET_KEYS = keys(of_kind("budget"))  # 0 = off; scanned in log space, never through 0
SCAN_KEYS = keys(coordinate_dimensions())
ZERO_OCTAVES = 2  # lambda = 0 sits this many factors of two below the smallest nonzero coarse value
MIN_STEP = 1.25  # a new lambda differs from every point already run by at least this factor (in some dim)
MIN_LOG = math.log(MIN_STEP)

Point = tuple[float, ...]  # values of point_keys: (lambda_time, lambda_energy[, time budget, energy budget])


class ScanRange(Protocol):
    """What the scan reads of an experiment config (``results.experiment_config.ExperimentConfig``)."""

    scan: str
    seeds: tuple[int, ...]
    scan_init: int
    scan_budget: int

    def values(self, dim: ScanDimension) -> tuple[Any, ...]:
        """The values the experiment gives ``dim`` (the base search config's when it gives none)."""


def values_of(exp: ScanRange, key: str) -> tuple[Any, ...]:
    """The configured values of the dimension whose search key is ``key``."""
    return exp.values(by_search_key()[key])


def scanned_dims(exp: ScanRange) -> tuple[str, ...]:
    """The dimensions the adaptive scan varies: lambdas and budgets configured with two or more distinct values."""
    return tuple(k for k in SCAN_KEYS if len(set(values_of(exp, k))) >= 2)


def point_keys(exp: ScanRange) -> tuple[str, ...]:
    """The keys of a scan point: the lambdas, and the budgets too when any budget is set (so a lambda-only
    experiment keeps its (lambda_time, lambda_energy) points)."""
    return SCAN_KEYS if any(v for k in BUDGET_KEYS for v in values_of(exp, k)) else LAMBDA_KEYS


def budget_values(values: Sequence[float], k: int) -> list[float]:
    """A scanned budget's coarse values: ``max(k, 2)`` log-spaced from its smallest to its largest (k=0: values)."""
    pos = sorted({float(v) for v in values})
    if k == 0 or len(pos) < 2:
        return pos
    return [float(f"{v:.4g}") for v in np.geomspace(pos[0], pos[-1], max(k, 2))]


def dim_values(exp: ScanRange, key: str) -> list[float]:
    """The coarse grid's values of one dimension (a fixed one: its configured value)."""
    if key not in scanned_dims(exp):
        return [float(values_of(exp, key)[0])]
    return (budget_values if key in BUDGET_KEYS else coarse_values)(values_of(exp, key), exp.scan_init)


def coarse_values(values: Sequence[float], k: int) -> list[float]:
    """0 and ``k`` log-spaced values from the smallest nonzero to the largest of ``values`` (k=0: values)."""
    pos = sorted({float(v) for v in values if v > 0})
    if k == 0 or not pos:
        return sorted({0.0, *pos})
    lo, hi = pos[0], pos[-1]
    if k == 1 or lo == hi:
        return [0.0, hi]
    return [0.0, *[float(f"{v:.4g}") for v in np.geomspace(lo, hi, k)]]


def coarse_points(exp: ScanRange) -> list[Point]:
    return list(itertools.product(*(dim_values(exp, k) for k in point_keys(exp))))


def budget_of(exp: ScanRange) -> int:
    return exp.scan_budget or 2 * len(coarse_points(exp)) * len(exp.seeds)


def check_adaptive(exp: ScanRange) -> None:
    """Config rules of ``scan: adaptive`` (called from ExperimentConfig validation)."""
    for dim in of_kind("profile"):
        if len(exp.values(dim)) != 1:
            raise ConfigError(f"config key {dim.experiment_key!r} = {exp.values(dim)!r}: an adaptive scan runs one "
                              f"{dim.search_key}; run one experiment per {dim.search_key} and compare them with "
                              "`hwnas pareto URI --compare URI2`")
    if not scanned_dims(exp):
        raise ConfigError(f"config key 'scan' = {exp.scan!r}: needs lambda_time, lambda_energy, dram_time_budget_us "
                          f"or dram_energy_budget_uj with at least two values (the range to scan); got "
                          + " ".join(f"{k}={list(values_of(exp, k))}" for k in SCAN_KEYS))
    for k in scanned_dims(exp):
        if k in BUDGET_KEYS and min(values_of(exp, k)) <= 0:
            raise ConfigError(f"config key {k!r} = {list(values_of(exp, k))}: a scanned budget range must be > 0 "
                              f"(0 is \"off\", not an end of the range); scan budgets or lambdas in one experiment, "
                              f"or run the budget-off point as its own")
    coarse = len(coarse_points(exp)) * len(exp.seeds)
    if exp.scan_budget and exp.scan_budget < coarse:
        raise ConfigError(f"config key 'scan_budget' = {exp.scan_budget!r}: smaller than the coarse grid "
                          f"({len(coarse_points(exp))} lambda points x {len(exp.seeds)} seeds = {coarse} trials)")


@dataclass(frozen=True)
class LambdaSpace:
    """Log coordinates of the scanned dims; lambda = 0 maps to a fixed position below the smallest nonzero
    value, a budget (always > 0 when scanned) has no zero position (-inf)."""
    dims: tuple[str, ...]
    zero: tuple[float, ...]  # log position of lambda = 0, per scanned dim (-inf: a budget)
    keys: tuple[str, ...] = LAMBDA_KEYS  # what a point's values are (point_keys)

    @classmethod
    def of(cls, exp: ScanRange) -> "LambdaSpace":
        dims = scanned_dims(exp)
        zero = []
        for k in dims:
            if k in BUDGET_KEYS:
                zero.append(-math.inf)
                continue
            pos = [v for v in coarse_values(values_of(exp, k), exp.scan_init) if v > 0]
            zero.append(math.log(min(pos)) - ZERO_OCTAVES * math.log(2.0))
        return cls(dims, tuple(zero), point_keys(exp))

    def key_of(self, row) -> Point:
        """A mapping with the point keys (a trial point, a points.parquet row) -> its point (None = 0)."""
        return tuple(float(row.get(k) or 0.0) for k in self.keys)

    def coords(self, point: Sequence[float]) -> np.ndarray:
        """A point (values of ``keys``) -> log coordinates of the scanned dims."""
        out = []
        for k, z in zip(self.dims, self.zero):
            v = point[self.keys.index(k)]
            out.append(math.log(v) if v > 0 and math.log(v) > z else z)
        return np.asarray(out, dtype=float)

    def point(self, coords: np.ndarray, base: Sequence[float]) -> Point:
        """Log coordinates -> a point, non-scanned dims from ``base``."""
        p = [float(v) for v in base]
        for k, z, c in zip(self.dims, self.zero, coords):
            p[self.keys.index(k)] = 0.0 if c <= z + 1e-12 else float(f"{math.exp(c):.4g}")
        return tuple(p)


def far_enough(c: np.ndarray, taken: list[np.ndarray]) -> bool:
    return all(np.max(np.abs(c - t)) >= MIN_LOG - 1e-9 for t in taken)


def fill_gap(space: LambdaSpace, a: Sequence[float], b: Sequence[float], taken: list[np.ndarray],
          depth: int = 4) -> Point | None:
    """A new point between points a and b (their geometric mean, or inside the longer half)."""
    ca, cb = space.coords(a), space.coords(b)
    if np.max(np.abs(ca - cb)) < 2 * MIN_LOG - 1e-9:
        return None
    mid = (ca + cb) / 2
    cand = space.point(mid, a)
    cm = space.coords(cand)
    if far_enough(cm, taken):
        return cand
    if depth == 0:
        return None
    # the midpoint was run already: fill the longer half next to it first (same gap, finer)
    halves = sorted(((float(np.max(np.abs(ca - cm))), a), (float(np.max(np.abs(cb - cm))), b)), key=lambda h: -h[0])
    for _, end in halves:
        p = fill_gap(space, end, cand, taken, depth - 1)
        if p is not None:
            return p
    return None


def choose_points(points: pa.Table, trials: pa.Table, space: LambdaSpace, n: int,
                  evaluated: Sequence[Point]) -> list[tuple[Point, str]]:
    """Up to ``n`` new points (values of ``space.keys``), each with why: fill the largest gaps of the
    per-point-means front first, then the widest unexplored stretches of the scanned space."""
    taken = [space.coords(p) for p in evaluated]
    chosen: list[tuple[Point, str]] = []

    def take(a, b, why) -> bool:
        p = fill_gap(space, a, b, taken)
        if p is None:
            return False
        taken.append(space.coords(p))
        chosen.append((p, why))
        return len(chosen) >= n

    rows = points.to_pylist()
    front = [r for r in rows if r["is_pareto"] and r["completed"]]
    obj = trial_objectives(trials.to_pylist())
    lo, span = minmax_bounds(obj)
    if len(front) >= 2:
        fobj = np.asarray([[r["error_mean"], r["dram_time_us_mean"], r["dram_energy_uj_mean"]] for r in front])
        for length, i, j in front_gaps(fobj, lo, span):
            if length <= 1e-12:  # identical means: no gap
                break
            a, b = space.key_of(front[i]), space.key_of(front[j])
            if take(a, b, f"front gap {length:.3f} between {_name(space, a)} and {_name(space, b)}"):
                return chosen
    # no (more) usable gap on the front: bisect the widest stretches between points already run
    lam = sorted({space.key_of(r) for r in rows} | {tuple(float(v) for v in p) for p in evaluated})
    coords = np.asarray([space.coords(p) for p in lam]).reshape(len(lam), -1)
    for length, i, j in mst_edges(coords):
        if take(lam[i], lam[j], f"unexplored stretch between {_name(space, lam[i])} and {_name(space, lam[j])}"):
            return chosen
    return chosen


def _name(space: LambdaSpace, point: Point) -> str:
    """'lambda (0.5, 0.0)', or with budgets 'lambda (0.5, 0.0) budget (40.0, 0.0)'."""
    lam = tuple(point[:len(LAMBDA_KEYS)])
    return f"lambda {lam}" if len(point) == len(LAMBDA_KEYS) else f"lambda {lam} budget {tuple(point[len(LAMBDA_KEYS):])}"


def describe_point(keys: Sequence[str], point: Sequence[float]) -> str:
    """'lambda_time=0.5 lambda_energy=0' (+ the budgets that are set): a scan point in a log line."""
    return " ".join(f"{k}={v:g}" for k, v in zip(keys, point) if k in LAMBDA_KEYS or v)


