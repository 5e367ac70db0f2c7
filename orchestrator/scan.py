"""The adaptive lambda scan (``scan: adaptive``), and the front metrics every scan records.

One experiment, one storage folder, rounds of Tune runs inside it:

- Round 0 is a coarse grid: lambda = 0 and ``scan_init`` log-spaced values between the smallest nonzero
  and the largest configured value of each *scanned* lambda (one with two or more configured values;
  both when both vary, then their product), every point with every seed.
- After each round, the front over the per-point means (``seedstats``) is taken in min-max normalised
  objective space (error, dram_time_us, dram_energy_uj; min and max over the completed trials). Its
  gaps are the edges of the minimum spanning tree over the front points (in 1-D, the distances between
  front neighbours), longest first. For a gap between points A and B the new lambda is their geometric
  mean in every scanned dimension (lambda = 0 sits at a fixed "zero position" two octaves below the
  smallest nonzero coarse value, so the mean of 0 and v is sqrt(v * lo / 4)); a candidate too close
  to a point already run (closer than a factor ``MIN_STEP`` in lambda) is replaced by the midpoint of
  the longer half towards it, and a gap with no room left is skipped. With no usable front gap, the
  widest unexplored stretch of lambda space is bisected instead. ``scan_batch`` points per round.
- It stops when the trial budget (``scan_budget``) cannot fit another point, after ``scan_rounds``
  rounds, when a round's hypervolume gain is below ``scan_min_gain``, or when no new point is left.

Hypervolume (``hypervolume_of``): of the front in (error, dram_time_us / T0, dram_energy_uj / E0) with
the reference point ``HV_REF`` = (1, 1.1, 1.1), where T0, E0 are the mean DRAM time and energy of the
experiment's completed accuracy-only trials (lambda_time = lambda_energy = 0) on the same profile, or,
if there are none, the largest of its completed trials. The axes are "error" and "fraction of the
accuracy-only network's DRAM cost", so experiments on the same task compare (grid vs adaptive, two
profiles); the largest possible value is 1.21.

Per round, ``<storage>/<name>/scan.parquet`` gets a row (``SCAN_COLUMNS``); a grid scan writes one.
Resume: finished rounds (rows of scan.parquet, trials in trials.parquet) are kept, a round whose Tune
state exists is restored (``Tuner.restore``, errored trials rerun), and the scan goes on from there
under the current config (a larger ``scan_budget`` or ``scan_rounds`` extends a finished scan).
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from .pareto import hypervolume, pareto_mask
from .seedstats import mean_points, point_stats

if TYPE_CHECKING:
    from .experiment_config import ExperimentConfig
    from .storage import Storage

log = logging.getLogger("hwnas.search")

SCAN_FILE = "scan.parquet"
HV_REF = (1.0, 1.1, 1.1)  # reference point of the hypervolume in (error, time / T0, energy / E0)
LAMBDA_KEYS = ("lambda_time", "lambda_energy")
ZERO_OCTAVES = 2  # lambda = 0 sits this many factors of two below the smallest nonzero coarse value
MIN_STEP = 1.25  # a new lambda differs from every point already run by at least this factor (in some dim)
_MIN_LOG = math.log(MIN_STEP)

SCAN_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("round", pa.int64(), "0 = the coarse grid (or the whole grid scan), then one per adaptive round"),
    ("scan", pa.string(), "grid | adaptive"),
    ("new_points", pa.string(), "JSON [[lambda_time, lambda_energy], ...]: the lambda points this round ran"),
    ("new_trials", pa.int64(), "trials this round ran (points x seeds)"),
    ("trials", pa.int64(), "trials so far, any status"),
    ("completed", pa.int64(), "completed trials so far"),
    ("front_size", pa.int64(), "points on the front over all trials"),
    ("front_size_mean", pa.int64(), "points on the front over the per-point means"),
    ("hypervolume", pa.float64(), "hypervolume of the all-trials front (reference point: see README)"),
    ("hypervolume_mean", pa.float64(), "hypervolume of the per-point-means front"),
    ("hv_gain", pa.float64(), "hypervolume - the previous round's; null in round 0"),
    ("largest_gap", pa.float64(), "longest minimum-spanning-tree edge of the all-trials front, min-max normalised"),
    ("largest_gap_mean", pa.float64(), "the same for the per-point-means front (what the scan fills next)"),
    ("ref_time_us", pa.float64(), "T0: DRAM time that normalises the hypervolume (null with several profiles)"),
    ("ref_energy_uj", pa.float64(), "E0: DRAM energy that normalises the hypervolume (null with several profiles)"),
    ("seconds", pa.float64(), "wall time of the round"),
    ("stop_reason", pa.string(), "why the scan stopped after this round (budget, rounds, min_gain, no_point); else null"),
)
SCAN_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in SCAN_COLUMNS])


# ============================================================================================== metrics
def _completed(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    ok = []
    for r in rows:
        vals = [r.get("error"), r.get("dram_time_us"), r.get("dram_energy_uj")]
        if r.get("status") == "completed" and all(v is not None and math.isfinite(v) for v in vals):
            ok.append(r)
    return ok


def reference_costs(trials: pa.Table) -> dict[str, tuple[float, float]]:
    """{profile: (T0, E0)}: mean DRAM time / energy of the completed lambda = 0 trials (else the largest)."""
    done = _completed(trials.to_pylist())
    out = {}
    for prof in sorted({r.get("profile") for r in done}, key=str):
        rs = [r for r in done if r.get("profile") == prof]
        zero = [r for r in rs if not r.get("lambda_time") and not r.get("lambda_energy")]
        if zero:
            t0 = float(np.mean([r["dram_time_us"] for r in zero]))
            e0 = float(np.mean([r["dram_energy_uj"] for r in zero]))
        else:
            t0 = max(r["dram_time_us"] for r in rs)
            e0 = max(r["dram_energy_uj"] for r in rs)
        out[prof] = (t0 if t0 > 0 else 1.0, e0 if e0 > 0 else 1.0)
    return out


def hv_points(rows: Sequence[Mapping[str, Any]], refs: Mapping[str, tuple[float, float]],
              keys: Sequence[str] = ("error", "dram_time_us", "dram_energy_uj")) -> np.ndarray:
    """(n, 3) points in hypervolume space (error, time / T0, energy / E0); NaN where unknown."""
    pts = np.full((len(rows), 3), np.nan)
    for i, r in enumerate(rows):
        ref = refs.get(r.get("profile"))
        vals = [r.get(k) for k in keys]
        if ref is None or any(v is None for v in vals):
            continue
        pts[i] = (vals[0], vals[1] / ref[0], vals[2] / ref[1])
    return pts


def hypervolume_of(trials: pa.Table, refs: Mapping[str, tuple[float, float]] | None = None) -> float:
    """Hypervolume of the completed trials' front in normalised space (module docstring), reference HV_REF."""
    refs = reference_costs(trials) if refs is None else refs
    pts = hv_points(_completed(trials.to_pylist()), refs)
    return hypervolume(pts, HV_REF)


def hypervolume_of_means(points: pa.Table, refs: Mapping[str, tuple[float, float]]) -> float:
    rows = [r for r in points.to_pylist() if r["completed"]]
    return hypervolume(hv_points(rows, refs, ("error_mean", "dram_time_us_mean", "dram_energy_uj_mean")), HV_REF)


def minmax_bounds(objectives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, span) per column over the finite rows; span 1 where a column is constant."""
    finite = objectives[np.all(np.isfinite(objectives), axis=1)] if len(objectives) else objectives
    if len(finite) == 0:
        return np.zeros(objectives.shape[1]), np.ones(objectives.shape[1])
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    return lo, span


def mst_edges(points: np.ndarray) -> list[tuple[float, int, int]]:
    """Edges (length, i, j) of the Euclidean minimum spanning tree over ``points``, longest first (Prim)."""
    n = len(points)
    if n < 2:
        return []
    d = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best = d[0].copy()
    parent = np.zeros(n, dtype=int)
    edges = []
    for _ in range(n - 1):
        cand = np.where(in_tree, np.inf, best)
        j = int(np.argmin(cand))
        edges.append((float(d[parent[j], j]), int(parent[j]), j))
        in_tree[j] = True
        closer = d[j] < best
        best = np.where(closer, d[j], best)
        parent = np.where(closer, j, parent)
    return sorted(edges, key=lambda e: (-e[0], e[1], e[2]))


def front_gaps(objectives: np.ndarray, lo: np.ndarray, span: np.ndarray) -> list[tuple[float, int, int]]:
    """Gaps of a front given as rows of raw objectives: MST edges in min-max normalised space."""
    return mst_edges((objectives - lo) / span)


def largest_gap(objectives: np.ndarray, lo: np.ndarray | None = None, span: np.ndarray | None = None) -> float:
    """Largest gap of the front of ``objectives`` (rows, minimised), min-max normalised by (lo, span)
    (default: over these rows). 0 with fewer than two front points."""
    objectives = np.asarray(objectives, dtype=float).reshape(-1, 3)
    if lo is None or span is None:
        lo, span = minmax_bounds(objectives)
    front = objectives[pareto_mask(objectives)]
    edges = front_gaps(front, lo, span)
    return edges[0][0] if edges else 0.0


def trial_objectives(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    done = _completed(rows)
    return np.asarray([[r["error"], r["dram_time_us"], r["dram_energy_uj"]] for r in done], dtype=float).reshape(-1, 3)


def scan_row(round_: int, scan: str, trials: pa.Table, points: pa.Table, new_points: Sequence[Sequence[float]],
             new_trials: int, previous_hv: float | None, seconds: float) -> dict[str, Any]:
    """The scan.parquet row of a finished round, from the tables after it."""
    rows = trials.to_pylist()
    refs = reference_costs(trials)
    obj = trial_objectives(rows)
    lo, span = minmax_bounds(obj)
    hv = hypervolume_of(trials, refs)
    means = mean_points(points)
    means_front = means[np.asarray(points.column("is_pareto").to_pylist(), dtype=bool)] if points.num_rows else means
    gaps_mean = front_gaps(means_front, lo, span)
    single = next(iter(refs.values())) if len(refs) == 1 else (None, None)
    return {
        "round": round_, "scan": scan, "new_points": json.dumps([[float(a), float(b)] for a, b in new_points]),
        "new_trials": int(new_trials), "trials": trials.num_rows, "completed": len(obj),
        "front_size": int(sum(bool(v) for v in trials.column("is_pareto").to_pylist())),
        "front_size_mean": int(sum(bool(v) for v in points.column("is_pareto").to_pylist())),
        "hypervolume": hv, "hypervolume_mean": hypervolume_of_means(points, refs),
        "hv_gain": None if previous_hv is None else hv - previous_hv,
        "largest_gap": largest_gap(obj, lo, span), "largest_gap_mean": gaps_mean[0][0] if gaps_mean else 0.0,
        "ref_time_us": single[0], "ref_energy_uj": single[1], "seconds": float(seconds), "stop_reason": None,
    }


def scan_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    return pa.table({n: pa.array([r.get(n) for r in rows], type=t) for n, t, _ in SCAN_COLUMNS}, schema=SCAN_SCHEMA)


def conform_scan(table: pa.Table) -> pa.Table:
    missing = [n for n in SCAN_SCHEMA.names if n not in table.column_names]
    if missing:
        raise ValueError(f"not an hwnas scan table: missing columns {missing}")
    return table.select(SCAN_SCHEMA.names).cast(SCAN_SCHEMA)


def describe_round(row: Mapping[str, Any]) -> str:
    gain = "" if row.get("hv_gain") is None else f" ({row['hv_gain']:+.4f})"
    return (f"scan round {row['round']} ({row['scan']}): {len(json.loads(row['new_points']))} lambda points, "
            f"{row['new_trials']} trials -> {row['trials']} trials ({row['completed']} completed), "
            f"front {row['front_size']} (means {row['front_size_mean']}), hypervolume {row['hypervolume']:.4f}{gain} "
            f"(means {row['hypervolume_mean']:.4f}), largest gap {row['largest_gap']:.3f} "
            f"(means {row['largest_gap_mean']:.3f}), {row['seconds']:.0f}s"
            + (f"; stop: {row['stop_reason']}" if row.get("stop_reason") else ""))


# ============================================================================================== lambda space
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
    from searchspace.config import ConfigError

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


def _far_enough(c: np.ndarray, taken: list[np.ndarray]) -> bool:
    return all(np.max(np.abs(c - t)) >= _MIN_LOG - 1e-9 for t in taken)


def _fill(space: LambdaSpace, a: Sequence[float], b: Sequence[float], taken: list[np.ndarray],
          depth: int = 4) -> tuple[float, float] | None:
    """A new point between lambda points a and b (their geometric mean, or inside the longer half)."""
    ca, cb = space.coords(a), space.coords(b)
    if np.max(np.abs(ca - cb)) < 2 * _MIN_LOG - 1e-9:
        return None
    mid = (ca + cb) / 2
    cand = space.point(mid, a)
    cm = space.coords(cand)
    if _far_enough(cm, taken):
        return cand
    if depth == 0:
        return None
    # the midpoint was run already: fill the longer half next to it first (same gap, finer)
    halves = sorted(((float(np.max(np.abs(ca - cm))), a), (float(np.max(np.abs(cb - cm))), b)), key=lambda h: -h[0])
    for _, end in halves:
        p = _fill(space, end, cand, taken, depth - 1)
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
        p = _fill(space, a, b, taken)
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


# ============================================================================================== the loop
RunRound = Callable[[int, list[dict[str, Any]]], list[dict[str, Any]]]


@dataclass
class ScanOutcome:
    trials: pa.Table
    front: pa.Table
    scan: pa.Table


def _stop_reason(exp: "ExperimentConfig", round_: int, scan_rows: list[dict[str, Any]], n_trials: int) -> str | None:
    if round_ > exp.scan_rounds:
        return "rounds"
    if budget_of(exp) - n_trials < len(exp.seeds):
        return "budget"
    last = scan_rows[-1]
    if last["round"] >= 1 and last["hv_gain"] is not None and last["hv_gain"] < exp.scan_min_gain:
        return "min_gain"
    return None


def run_scan(exp: "ExperimentConfig", storage: "Storage", run_round: RunRound, resume: bool = False) -> ScanOutcome:
    """The adaptive scan's rounds. ``run_round(r, trial_points)`` runs (or restores) round r's trials and
    returns their result rows; tables are rewritten after every round."""
    from .experiment import write_results
    from .results import conform, rows_to_table

    exp_dir = storage.child(exp.name)
    rows: list[dict[str, Any]] = []
    scan_rows: list[dict[str, Any]] = []
    if resume and exp_dir.exists(SCAN_FILE):
        scan_rows = conform_scan(exp_dir.read_table(SCAN_FILE)).to_pylist()
        done = {r["round"] for r in scan_rows}
        if exp_dir.exists("trials.parquet"):
            rows = [r for r in conform(exp_dir.read_table("trials.parquet")).to_pylist() if r.get("round") in done]
        for r in scan_rows:
            r["stop_reason"] = None  # decided again under the current config
        log.info("scan %s: resuming after %d finished rounds (%d trials)", exp.name, len(scan_rows), len(rows))
    space = LambdaSpace.of(exp)
    profile = exp.profile_list[0]
    budget = budget_of(exp)
    round_ = len(scan_rows)
    table, front = (rows_to_table(rows), None) if rows else (None, None)
    resumed_idle = True
    while True:
        if round_ == 0:
            new = [(p, "coarse grid") for p in coarse_points(exp)]
        else:
            reason = _stop_reason(exp, round_, scan_rows, len(rows))
            new = []
            if reason is None:
                n = min(exp.scan_batch, (budget - len(rows)) // len(exp.seeds))
                evaluated = sorted({(float(r["lambda_time"]), float(r["lambda_energy"])) for r in rows})
                new = choose_points(point_stats(table), table, space, n, evaluated)
                if not new:
                    reason = "no_point"
            if reason is not None:
                scan_rows[-1]["stop_reason"] = reason
                exp_dir.write_table(SCAN_FILE, scan_table(scan_rows))
                log.info("scan %s: stopped after round %d (%s), %d trials, hypervolume %.4f", exp.name,
                         round_ - 1, reason, len(rows), scan_rows[-1]["hypervolume"])
                break
        for p, why in new:
            log.info("scan round %d: lambda_time=%g lambda_energy=%g (%s)", round_, p[0], p[1], why)
        t0 = time.perf_counter()
        trial_points = [dict(seed=s, lambda_time=p[0], lambda_energy=p[1], profile=profile)
                        for p, _ in new for s in exp.seeds]
        resumed_idle = False
        new_rows = run_round(round_, trial_points)
        for r in new_rows:
            r["round"] = round_
        rows.extend(new_rows)
        table, front = write_results(storage, exp.name, rows)
        prev = scan_rows[-1]["hypervolume"] if scan_rows else None
        row = scan_row(round_, "adaptive", table, point_stats(table), [p for p, _ in new], len(new_rows), prev,
                       time.perf_counter() - t0)
        scan_rows.append(row)
        exp_dir.write_table(SCAN_FILE, scan_table(scan_rows))
        log.info("%s", describe_round(row))
        round_ += 1
    if resumed_idle:  # resumed a scan with nothing left to run: the tables as they are, rewritten
        table, front = write_results(storage, exp.name, rows)
    return ScanOutcome(table, front, scan_table(scan_rows))


def tune_round_runner(exp: "ExperimentConfig", storage: "Storage", options: Mapping[str, Any]) -> RunRound:
    """``run_round`` on Ray Tune: round r is the Tune experiment ``<storage>/<name>/round-<r>``; restored
    (errored trials rerun) when its state exists, else a new Tuner over exactly these trial points."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from .trainable import RESERVED_KEY, search_trainable

    from .experiment import _progress_callback, result_rows, trial_resources

    trainable = tune.with_resources(search_trainable, trial_resources(exp))
    exp_dir = storage.child(exp.name)
    storage_path, storage_fs = exp_dir.tune_storage()

    def run(round_: int, trial_points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        name = f"round-{round_}"
        path = exp_dir.path(name)
        if tune.Tuner.can_restore(path, storage_filesystem=storage_fs):
            log.info("scan round %d: restoring its Tune state from %s", round_, exp_dir.uri_of(name))
            tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True, storage_filesystem=storage_fs)
        else:
            space: dict[str, Any] = exp.search.to_dict()
            for key in ("seed", "lambda_time", "lambda_energy", "profile"):  # domains the points are drawn from
                space[key] = tune.choice(sorted({p[key] for p in trial_points}))
            space[RESERVED_KEY] = dict(options)
            tuner = tune.Tuner(
                trainable, param_space=space,
                tune_config=tune.TuneConfig(search_alg=BasicVariantGenerator(points_to_evaluate=trial_points),
                                            num_samples=len(trial_points),
                                            max_concurrent_trials=exp.max_concurrent_trials or None),
                run_config=tune.RunConfig(
                    name=name, storage_path=storage_path, storage_filesystem=storage_fs,
                    failure_config=tune.FailureConfig(max_failures=exp.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                    callbacks=[_progress_callback()], verbose=0))
        return result_rows(exp.name, tuner.fit())

    return run


def clear_rounds(storage: "Storage", name: str) -> None:
    """A fresh (not resumed) adaptive run replaces the name: drop the old run's round-* Tune folders, so a
    later resume can never restore a round of another run."""
    import pyarrow.fs as pafs

    exp_dir = storage.child(name)
    fs = exp_dir.filesystem
    try:
        infos = fs.get_file_info(pafs.FileSelector(exp_dir.path(), allow_not_found=True))
    except OSError:
        return
    for info in infos:
        if info.type == pafs.FileType.Directory and info.base_name.startswith("round-"):
            log.info("replacing %s: removing the earlier run's %s", exp_dir.uri, info.base_name)
            fs.delete_dir(info.path)


def run_adaptive(exp: "ExperimentConfig", storage: "Storage", options: Mapping[str, Any],
                 resume: bool = False) -> ScanOutcome:
    """The Ray entry point (from ``run_experiment``)."""
    if not resume:
        clear_rounds(storage, exp.name)
    log.info("adaptive scan %s: coarse grid %d lambda points x %d seeds, budget %d trials, at most %d rounds, "
             "%d points per round, min hypervolume gain %g", exp.name, len(coarse_points(exp)), len(exp.seeds),
             budget_of(exp), exp.scan_rounds, exp.scan_batch, exp.scan_min_gain)
    return run_scan(exp, storage, tune_round_runner(exp, storage, options), resume=resume)


def grid_scan_table(trials: pa.Table, seconds: float) -> pa.Table:
    """scan.parquet of a grid scan: one round, every point."""
    pts = point_stats(trials)
    lam = sorted({(r["lambda_time"], r["lambda_energy"]) for r in pts.to_pylist()})
    return scan_table([scan_row(0, "grid", trials, pts, lam, trials.num_rows, None, seconds)])
