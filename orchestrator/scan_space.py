"""The adaptive scan's lambda space (Ray-free): coarse grid, log coordinates, gap filling, config rules.

- The coarse grid: lambda = 0 and ``scan_init`` log-spaced values between the smallest nonzero and the
  largest configured value of each *scanned* lambda (one with two or more configured values; both when
  both vary, then their product), every point with every seed.
- New points (``choose_points``): the front over the per-point means (``seedstats``) is taken in min-max
  normalised objective space (error, dram_time_us, dram_energy_uj); its gaps (``scan_metrics.front_gaps``)
  are filled longest first. For a gap between points A and B the new lambda is their geometric mean in
  every scanned dimension (lambda = 0 sits at a fixed "zero position" two octaves below the smallest
  nonzero coarse value, so the mean of 0 and v is sqrt(v * lo / 4)); a candidate too close to a point
  already run or in flight (closer than a factor ``MIN_STEP`` in lambda) is replaced by the midpoint of
  the longer half towards it, and a gap with no room left is skipped. With no usable front gap, the
  widest unexplored stretch of lambda space is bisected instead.

``check_adaptive`` is duck-typed on the experiment config (it never imports ``experiment_config``, which
calls it from its own validation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pyarrow as pa

from searchspace.config import ConfigError

from .scan_metrics import front_gaps, minmax_bounds, mst_edges, trial_objectives

if TYPE_CHECKING:
    from .experiment_config import ExperimentConfig

LAMBDA_KEYS = ("lambda_time", "lambda_energy")
ZERO_OCTAVES = 2  # lambda = 0 sits this many factors of two below the smallest nonzero coarse value
MIN_STEP = 1.25  # a new lambda differs from every point already run by at least this factor (in some dim)
MIN_LOG = math.log(MIN_STEP)

Point = tuple[float, float]  # (lambda_time, lambda_energy)


def scanned_dims(exp: "ExperimentConfig") -> tuple[str, ...]:
    """The lambdas the adaptive scan varies: those configured with two or more distinct values."""
    return tuple(k for k in LAMBDA_KEYS if len(set(getattr(exp, k))) >= 2)


def coarse_values(values: Sequence[float], k: int) -> list[float]:
    """0 and ``k`` log-spaced values from the smallest nonzero to the largest of ``values`` (k=0: values)."""
    pos = sorted({float(v) for v in values if v > 0})
    if k == 0 or not pos:
        return sorted({0.0, *pos})
    lo, hi = pos[0], pos[-1]
    if k == 1 or lo == hi:
        return [0.0, hi]
    return [0.0, *[float(f"{v:.4g}") for v in np.geomspace(lo, hi, k)]]


def coarse_points(exp: "ExperimentConfig") -> list[tuple[float, float]]:
    dims = scanned_dims(exp)
    per = {k: (coarse_values(getattr(exp, k), exp.scan_init) if k in dims else [float(getattr(exp, k)[0])])
           for k in LAMBDA_KEYS}
    return [(lt, le) for lt in per["lambda_time"] for le in per["lambda_energy"]]


def budget_of(exp: "ExperimentConfig") -> int:
    return exp.scan_budget or 2 * len(coarse_points(exp)) * len(exp.seeds)


def check_adaptive(exp: "ExperimentConfig") -> None:
    """Config rules of ``scan: adaptive`` (called from ExperimentConfig validation)."""
    if len(exp.profile_list) != 1:
        raise ConfigError(f"config key 'profiles' = {exp.profile_list!r}: an adaptive scan runs one profile; run one "
                          "experiment per profile and compare them with `hwnas pareto URI --compare URI2`")
    if not scanned_dims(exp):
        raise ConfigError(f"config key 'scan' = {exp.scan!r}: needs lambda_time or lambda_energy with at least two "
                          f"values (the range to scan); got lambda_time={list(exp.lambda_time)} "
                          f"lambda_energy={list(exp.lambda_energy)}")
    coarse = len(coarse_points(exp)) * len(exp.seeds)
    if exp.scan_budget and exp.scan_budget < coarse:
        raise ConfigError(f"config key 'scan_budget' = {exp.scan_budget!r}: smaller than the coarse grid "
                          f"({len(coarse_points(exp))} lambda points x {len(exp.seeds)} seeds = {coarse} trials)")


@dataclass(frozen=True)
class LambdaSpace:
    """Log coordinates of the scanned lambdas; 0 maps to a fixed position below the smallest nonzero value."""
    dims: tuple[str, ...]
    zero: tuple[float, ...]  # log position of lambda = 0, per scanned dim

    @classmethod
    def of(cls, exp: "ExperimentConfig") -> "LambdaSpace":
        dims = scanned_dims(exp)
        zero = []
        for k in dims:
            pos = [v for v in coarse_values(getattr(exp, k), exp.scan_init) if v > 0]
            zero.append(math.log(min(pos)) - ZERO_OCTAVES * math.log(2.0))
        return cls(dims, tuple(zero))

    def coords(self, point: Sequence[float]) -> np.ndarray:
        """(lambda_time, lambda_energy) -> log coordinates of the scanned dims."""
        out = []
        for k, z in zip(self.dims, self.zero):
            v = point[LAMBDA_KEYS.index(k)]
            out.append(math.log(v) if v > 0 and math.log(v) > z else z)
        return np.asarray(out, dtype=float)

    def point(self, coords: np.ndarray, base: Sequence[float]) -> tuple[float, float]:
        """Log coordinates -> (lambda_time, lambda_energy), non-scanned dims from ``base``."""
        p = [float(base[0]), float(base[1])]
        for k, z, c in zip(self.dims, self.zero, coords):
            p[LAMBDA_KEYS.index(k)] = 0.0 if c <= z + 1e-12 else float(f"{math.exp(c):.4g}")
        return p[0], p[1]


def far_enough(c: np.ndarray, taken: list[np.ndarray]) -> bool:
    return all(np.max(np.abs(c - t)) >= MIN_LOG - 1e-9 for t in taken)


def fill_gap(space: LambdaSpace, a: Sequence[float], b: Sequence[float], taken: list[np.ndarray],
          depth: int = 4) -> tuple[float, float] | None:
    """A new point between lambda points a and b (their geometric mean, or inside the longer half)."""
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
                  evaluated: Sequence[tuple[float, float]]) -> list[tuple[tuple[float, float], str]]:
    """Up to ``n`` new (lambda_time, lambda_energy), each with why: fill the largest gaps of the
    per-point-means front first, then the widest unexplored stretches of lambda space."""
    taken = [space.coords(p) for p in evaluated]
    chosen: list[tuple[tuple[float, float], str]] = []

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
            a = (front[i]["lambda_time"], front[i]["lambda_energy"])
            b = (front[j]["lambda_time"], front[j]["lambda_energy"])
            if take(a, b, f"front gap {length:.3f} between lambda {a} and {b}"):
                return chosen
    # no (more) usable gap on the front: bisect the widest stretches between points already run
    lam = sorted({(float(r["lambda_time"]), float(r["lambda_energy"])) for r in rows} | set(evaluated))
    coords = np.asarray([space.coords(p) for p in lam]).reshape(len(lam), -1)
    for length, i, j in mst_edges(coords):
        if take(lam[i], lam[j], f"unexplored lambda stretch between {lam[i]} and {lam[j]}"):
            return chosen
    return chosen


