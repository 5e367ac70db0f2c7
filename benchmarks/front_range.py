"""Does the main job's front span the trade-off the space allows? (issue 21.4, 21.5)

    /work/shared/tools/loopback-only env RAY_AUTH_MODE=token .venv/bin/python benchmarks/front_range.py \\
        --preset fashion --search-seeds 0 1 --json front_range.json            # ~2 x 7 min on 2 CPU cores
    .venv/bin/python benchmarks/front_range.py --from-json front_range.json    # reprint, runs nothing
    ... benchmarks/front_range.py --preset smoke --search-seeds 0 --set lambda_time=[0,1,4]   # a quick check

Runs README's main job (``hwnas search --preset PRESET [--set ...]``, the preset's own lambda grid unless
--set changes it) once per search seed, each as its own experiment (``--set seeds=[S]``, so each run's wall
time is the main job's), and with ``--scan adaptive`` (or ``--adaptive``) the adaptive scan on the same preset
and seeds too. Each ``hwnas search`` starts its own local Ray: run the whole script inside
``shared/tools/loopback-only`` (as above), or give ``--loopback TOOL`` to wrap every ``hwnas search`` in it.

It prints, per lambda point and search seed, the deployed network's DRAM energy and time and the accuracy
± its training-seed sd (``accuracy_std``: one genotype trained from scratch under ``eval_seeds`` seeds), and
per lambda the mean over search seeds ± their sd (the spread of the search itself); then the **attainable
range** per search seed: E(lambda 0), the deployed energy of the lambda = 0 cell, and E_min, the cheapest
derivation the space allows under the skip cap (``cost_models.extremes.cheapest_genotype`` on the trial's
own cost table, costed by ``derived_network_cost``), and **coverage** = (E(lambda 0) - E(lambda max)) /
(E(lambda 0) - E_min). Targets, met / not met: coverage >= 70 % for every search seed; energy non-increasing
along lambda (within 1 %) for every search seed; >= 3 points on every front; the main job <= 7 min on 2 CPU
cores (each run's wall time is printed with the load average before it: a busy machine is slower); the
accuracy given up at lambda max is printed beside them. With the adaptive scan: whether its new points
(suggestion batches >= 1) fall inside the widest gaps of the grid front (minimum-spanning-tree edges in
min-max normalised (error, time, energy), the scan's own notion of a gap), by lambda and by energy.

``--json FILE`` is rewritten after every run (the runs' trials, wall times, E_min); ``--from-json FILE``
reprints the report from it.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

log = logging.getLogger("front_range")

TARGET_COVERAGE = 0.70  # issue 21.4: the grid reaches >= 70 % of the attainable energy range
MONOTONE_TOL = 0.01  # energy may rise by at most 1 % from one lambda to the next
MIN_FRONT = 3  # points on the front
MAIN_JOB_BUDGET_S = 7 * 60  # issue 21.5: the main job on 2 CPU cores
ROW_KEYS = ("trial_id", "status", "seed", "lambda_time", "lambda_energy", "dram_time_budget_us",
            "dram_energy_budget_uj", "accuracy", "accuracy_std", "error", "dram_time_us", "dram_energy_uj",
            "is_pareto", "round", "search_seconds")


# ---------------------------------------------------------------------------------------------- pure parts
def coverage(e_lambda0: float, e_lambda_max: float, e_min: float) -> float | None:
    """(E(lambda 0) - E(lambda max)) / (E(lambda 0) - E_min): the share of the attainable energy saving the
    scan reaches (1 = down to the cheapest cell; negative = lambda max dearer than lambda 0). None when the
    range is empty (E(lambda 0) <= E_min: nothing to save) or a figure is missing."""
    if any(v is None or not math.isfinite(v) for v in (e_lambda0, e_lambda_max, e_min)):
        return None
    span = e_lambda0 - e_min
    return None if span <= 0 else (e_lambda0 - e_lambda_max) / span


def monotone_violations(energies: Sequence[float], tol: float = MONOTONE_TOL) -> list[tuple[int, float]]:
    """Where energy rises along increasing lambda by more than ``tol`` (relative): (index of the dearer
    point, its relative rise over the point before it). Empty = non-increasing within ``tol``."""
    out = []
    for i in range(1, len(energies)):
        prev, cur = energies[i - 1], energies[i]
        if cur > prev * (1 + tol):
            out.append((i, cur / prev - 1))
    return out


def lambda_key(row: Mapping[str, Any]) -> tuple[float, float]:
    return float(row.get("lambda_time") or 0.0), float(row.get("lambda_energy") or 0.0)


def scan_order(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Completed rows with finite costs, by increasing lambda (lambda_time + lambda_energy, then each)."""
    done = [r for r in rows if r.get("status") == "completed" and r.get("accuracy") is not None
            and r.get("dram_energy_uj") is not None and math.isfinite(r["dram_energy_uj"])]
    return sorted(done, key=lambda r: (sum(lambda_key(r)), lambda_key(r), str(r.get("trial_id"))))


def seed_range(rows: Sequence[Mapping[str, Any]], e_min: float | None) -> dict[str, Any]:
    """One search seed's grid: E(lambda 0), E(lambda max), coverage, the monotonicity check, the front size and
    the accuracy given up at lambda max."""
    ordered = scan_order(rows)
    zero = [r for r in ordered if lambda_key(r) == (0.0, 0.0) and not r.get("dram_time_budget_us")
            and not r.get("dram_energy_budget_uj")]
    first = zero[0] if zero else None
    last = ordered[-1] if ordered else None
    energies = [r["dram_energy_uj"] for r in ordered]
    return {
        "points": len(ordered),
        "e_lambda0": first["dram_energy_uj"] if first else None,
        "e_lambda_max": last["dram_energy_uj"] if last else None,
        "lambda_max": list(lambda_key(last)) if last else None,
        "e_min": e_min,
        "coverage": coverage(first["dram_energy_uj"], last["dram_energy_uj"], e_min) if first and last and
        e_min is not None else None,
        "violations": [[lambda_key(ordered[i]), rise] for i, rise in monotone_violations(energies)],
        "front": sum(bool(r.get("is_pareto")) for r in rows),
        "accuracy_given_up": first["accuracy"] - last["accuracy"] if first and last else None,
    }


def widest_gaps(rows: Sequence[Mapping[str, Any]], k: int) -> list[dict[str, Any]]:
    """The ``k`` widest gaps of the front of ``rows`` (completed): minimum-spanning-tree edges between front
    points in (error, time, energy) min-max normalised over the completed rows, the adaptive scan's own
    measure. Each gap: its length, the lambda and the energy at both ends."""
    import numpy as np

    from results.pareto import pareto_mask
    from results.scan_metrics import front_gaps, minmax_bounds

    done = scan_order(rows)
    if len(done) < 2:
        return []
    obj = np.asarray([[r["error"], r["dram_time_us"], r["dram_energy_uj"]] for r in done], dtype=float)
    lo, span = minmax_bounds(obj)
    front = [r for r, on in zip(done, pareto_mask(obj)) if on]
    edges = front_gaps(np.asarray([[r["error"], r["dram_time_us"], r["dram_energy_uj"]] for r in front]), lo, span)
    gaps = []
    for length, i, j in edges[:k]:
        a, b = sorted((front[i], front[j]), key=lambda r: r["dram_energy_uj"])
        gaps.append({"length": length, "lambdas": [list(lambda_key(a)), list(lambda_key(b))],
                     "energy": [a["dram_energy_uj"], b["dram_energy_uj"]]})
    return gaps


def _between(v: float, ends: Sequence[float]) -> bool:
    return min(ends) <= v <= max(ends)


def gap_hits(grid_rows: Sequence[Mapping[str, Any]], adaptive_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Whether the adaptive scan's new points (batch >= 1) fall inside the widest gaps of the grid front: as
    many gaps as new lambda points; a point is inside a gap by lambda when its lambda lies between the gap's
    ends' (each lambda dimension), by energy when its DRAM energy does."""
    new = [r for r in scan_order(adaptive_rows) if (r.get("round") or 0) >= 1]
    gaps = widest_gaps(grid_rows, max(1, len({lambda_key(r) for r in new})))
    points = []
    for r in new:
        lam = lambda_key(r)
        by_lambda = [g for g in gaps if all(_between(lam[d], [g["lambdas"][0][d], g["lambdas"][1][d]]) for d in (0, 1))]
        by_energy = [g for g in gaps if _between(r["dram_energy_uj"], g["energy"])]
        points.append({"lambda": list(lam), "energy": r["dram_energy_uj"], "accuracy": r["accuracy"],
                       "in_gap_by_lambda": bool(by_lambda), "in_gap_by_energy": bool(by_energy)})
    return {"gaps": gaps, "new_points": points}


def spread(values: Sequence[float]) -> float | None:
    return statistics.stdev(values) if len(values) >= 2 else None


def rms(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return math.sqrt(sum(v * v for v in vals) / len(vals)) if vals else None


# ---------------------------------------------------------------------------------------------- running
def search_command(preset: str, seed: int, name: str, storage: str, sets: Sequence[str], adaptive: bool,
                   loopback: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "hwnas.cli", "search", "--preset", preset, "--name", name, "--storage",
           storage, "--set", *sets, f"seeds=[{seed}]"]
    if adaptive:
        cmd += ["--scan", "adaptive"]
    return ([loopback] if loopback else []) + cmd


def run_one(cmd: list[str], log_path: Path) -> dict[str, Any]:
    """One ``hwnas search``: its exit code, wall seconds and the load average before it (output to a log)."""
    load = list(os.getloadavg())
    t0 = time.perf_counter()
    with open(log_path, "w") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1]).returncode
    return {"rc": rc, "wall_s": time.perf_counter() - t0, "loadavg_before": load, "cpus": os.cpu_count(),
            "log": str(log_path)}


def cheapest_energy(config_json: str | None) -> tuple[float | None, Any]:
    """E_min of an experiment: the cheapest derivation (skip cap) of its trials' space, on its cost table."""
    if not config_json:
        return None, None
    from cost_models import derived_network_cost, search_cost_table
    from cost_models.extremes import cheapest_genotype
    from searchspace.config import SearchConfig
    from searchspace.groups import parse_groups
    from searchspace.ops import CANDIDATES

    config = SearchConfig.from_dict(json.loads(config_json))
    groups = parse_groups(config.groups)
    ops = CANDIDATES if isinstance(groups, int) else tuple(op for _, g in groups.items for op in g)
    genotype = cheapest_genotype(search_cost_table(config), config.nodes, config.max_skip_per_cell, "energy", ops)
    return float(derived_network_cost(genotype, config).dram_energy_uj), genotype.to_dict()


def collect(uri: str) -> dict[str, Any]:
    """The experiment's trials (ROW_KEYS), its front size and the network its costs are for."""
    from results.schema import front_network_label
    from results.tables import load_front

    trials, front = load_front(uri)
    rows = trials.to_pylist()
    done = [r for r in rows if r["status"] == "completed"]
    e_min, cheapest = cheapest_energy(done[0]["config"] if done else None)
    return {"trials": [{k: r.get(k) for k in ROW_KEYS} for r in rows], "front_size": front.num_rows,
            "network": front_network_label(done or rows), "e_min": e_min, "cheapest_genotype": cheapest}


# ---------------------------------------------------------------------------------------------- report
def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _acc(mean: float | None, sd: float | None) -> str:
    return "-" if mean is None else f"{mean:.4f}" + ("" if sd is None else f" ± {sd:.4f}")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(data: Mapping[str, Any]) -> str:
    grid = [r for r in data["runs"] if r["kind"] == "grid" and "trials" in r]
    adaptive = {r["search_seed"]: r for r in data["runs"] if r["kind"] == "adaptive" and "trials" in r}
    lines = [f"front_range: preset {data['preset']}, search seeds {data['search_seeds']}, --set "
             f"{' '.join(data['sets']) or '(none)'}"]
    for r in data["runs"]:
        load = "/".join(f"{v:.2f}" for v in r["loadavg_before"])
        lines.append(f"  run {r['kind']} seed {r['search_seed']}: {r['name']}, exit {r['rc']}, wall {r['wall_s']:.0f} s, "
                     f"load average before {load} on {r['cpus']} CPUs")
    if not grid:
        return "\n".join(lines + ["no grid run finished: nothing to report"])
    lines.append(f"costs: DRAM energy (uJ) / time (us) of the {grid[0]['network']}")
    # per lambda: every search seed's point, then the mean over search seeds
    lines.append("per lambda (accuracy: mean ± training-seed sd per search seed; 'seeds': mean over search seeds "
                 "± their sd, [rms training-seed sd])")
    lines.append(f"  {'lambda_time':>11} {'lambda_energy':>13} {'seed':>5} {'energy_uj':>10} {'time_us':>9}  accuracy")
    by_lambda: dict[tuple, list[tuple[int, Mapping]]] = {}
    for run in grid:
        for r in scan_order(run["trials"]):
            by_lambda.setdefault(lambda_key(r), []).append((run["search_seed"], r))
    for lam in sorted(by_lambda, key=lambda k: (sum(k), k)):
        pts = by_lambda[lam]
        for seed, r in pts:
            lines.append(f"  {lam[0]:>11g} {lam[1]:>13g} {seed:>5} {r['dram_energy_uj']:>10.4g} "
                         f"{r['dram_time_us']:>9.4g}  {_acc(r['accuracy'], r['accuracy_std'])}")
        if len(pts) > 1:
            accs = [r["accuracy"] for _, r in pts]
            lines.append(f"  {lam[0]:>11g} {lam[1]:>13g} {'seeds':>5} "
                         f"{statistics.fmean(r['dram_energy_uj'] for _, r in pts):>10.4g} "
                         f"{statistics.fmean(r['dram_time_us'] for _, r in pts):>9.4g}  "
                         f"{_acc(statistics.fmean(accs), spread(accs))} "
                         f"[{_f(rms([r['accuracy_std'] for _, r in pts]), '.4f')}]")
    ranges = {run["search_seed"]: seed_range(run["trials"], run.get("e_min")) for run in grid}
    lines.append("attainable range per search seed (E_min: cheapest derivation under the skip cap)")
    lines.append(f"  {'seed':>4} {'E(lambda0)':>10} {'E(lambda_max)':>13} {'E_min':>8} {'coverage':>8} "
                 f"{'front':>5} {'acc given up':>12}")
    for seed, g in ranges.items():
        lines.append(f"  {seed:>4} {_f(g['e_lambda0'], '.4g'):>10} {_f(g['e_lambda_max'], '.4g'):>13} "
                     f"{_f(g['e_min'], '.4g'):>8} "
                     f"{'-' if g['coverage'] is None else format(g['coverage'], '.1%'):>8} {g['front']:>5} "
                     f"{'-' if g['accuracy_given_up'] is None else format(100 * g['accuracy_given_up'], '+.2f') + ' pt':>12}")
    cov = {s: g["coverage"] for s, g in ranges.items()}
    lines.append("targets:")
    lines.append(f"  coverage >= {TARGET_COVERAGE:.0%} for every search seed: "
                 f"{_met(all(c is not None and c >= TARGET_COVERAGE for c in cov.values()))} ("
                 + ", ".join(f"seed {s}: {'-' if c is None else format(c, '.1%')}" for s, c in cov.items()) + ")")
    viol = {s: g["violations"] for s, g in ranges.items()}
    lines.append(f"  energy non-increasing along lambda within {MONOTONE_TOL:.0%} for every search seed: "
                 f"{_met(not any(viol.values()))}"
                 + "".join(f"; seed {s}: +{rise:.1%} at lambda {lam[0]:g}/{lam[1]:g}" for s, v in viol.items()
                           for lam, rise in v))
    lines.append(f"  front has >= {MIN_FRONT} points (every search seed): "
                 f"{_met(all(g['front'] >= MIN_FRONT for g in ranges.values()))} ("
                 + ", ".join(f"seed {s}: {g['front']}" for s, g in ranges.items()) + ")")
    lines.append("  accuracy given up at lambda max (reported): "
                 + ", ".join(f"seed {s}: {'-' if g['accuracy_given_up'] is None else format(100 * g['accuracy_given_up'], '.2f') + ' pt'}"
                             for s, g in ranges.items()))
    walls = {r["search_seed"]: r for r in grid}
    lines.append(f"  hwnas search --preset {data['preset']} (the main job when fashion) <= {MAIN_JOB_BUDGET_S // 60} min "
                 f"on 2 CPU cores: "
                 f"{_met(all(r['wall_s'] <= MAIN_JOB_BUDGET_S for r in walls.values()))} ("
                 + ", ".join(f"seed {s}: {r['wall_s']:.0f} s at load {r['loadavg_before'][0]:.2f}, {r['cpus']} CPUs"
                             for s, r in walls.items()) + ")")
    for seed, run in adaptive.items():
        if seed not in walls:
            continue
        hits = gap_hits(walls[seed]["trials"], run["trials"])
        gaps = "; ".join(f"lambda {g['lambdas'][0][0]:g}/{g['lambdas'][0][1]:g} - {g['lambdas'][1][0]:g}/"
                         f"{g['lambdas'][1][1]:g} (energy {g['energy'][0]:.4g} - {g['energy'][1]:.4g}, "
                         f"length {g['length']:.3f})" for g in hits["gaps"]) or "none"
        lines.append(f"adaptive scan, search seed {seed}: widest grid-front gaps: {gaps}")
        for p in hits["new_points"]:
            lines.append(f"    new point lambda {p['lambda'][0]:g}/{p['lambda'][1]:g}: energy {p['energy']:.4g}, "
                         f"accuracy {p['accuracy']:.4f}; inside a widest gap by lambda: "
                         f"{'yes' if p['in_gap_by_lambda'] else 'no'}, by energy: {'yes' if p['in_gap_by_energy'] else 'no'}")
        if not hits["new_points"]:
            lines.append("    no new point completed after the coarse grid")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="fashion", help="hwnas search preset (default fashion: README's main job)")
    ap.add_argument("--search-seeds", type=int, nargs="+", default=[0, 1], help="search seeds, one run each")
    ap.add_argument("--set", dest="sets", nargs="+", action="extend", default=[],
                    help="passed to every hwnas search (--set KEY=VALUE ...); seeds is set per run")
    ap.add_argument("--scan", choices=["grid", "adaptive"], default="grid",
                    help="adaptive: also run the adaptive scan per search seed and check its new points")
    ap.add_argument("--adaptive", action="store_true", help="the same as --scan adaptive")
    ap.add_argument("--storage", default="", help="results folder (default: a new temporary one)")
    ap.add_argument("--loopback", metavar="TOOL", default=None,
                    help="wrap every hwnas search in this command (e.g. ../shared/tools/loopback-only); "
                         "or run the whole script under it")
    ap.add_argument("--json", metavar="FILE", help="write the runs and results here (rewritten after each run)")
    ap.add_argument("--from-json", metavar="FILE", help="reprint the report of an earlier --json file; run nothing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.from_json:
        print(report(json.loads(Path(args.from_json).read_text())))
        return 0
    storage = args.storage or tempfile.mkdtemp(prefix="hwnas-front-range-")
    logs = Path(tempfile.mkdtemp(prefix="hwnas-front-range-logs-") if storage.startswith("s3://") else storage)
    logs.mkdir(parents=True, exist_ok=True)  # each run's console output: <logs>/<name>.log
    data: dict[str, Any] = {"preset": args.preset, "search_seeds": args.search_seeds, "sets": args.sets,
                            "storage": storage, "runs": []}
    kinds = ["grid"] + (["adaptive"] if args.adaptive or args.scan == "adaptive" else [])
    for kind in kinds:
        for seed in args.search_seeds:
            name = f"front-range-{args.preset}-{kind}-s{seed}"
            cmd = search_command(args.preset, seed, name, storage, args.sets, kind == "adaptive", args.loopback)
            log.info("run %s seed %d: %s", kind, seed, " ".join(cmd))
            run = {"kind": kind, "search_seed": seed, "name": name, "uri": f"{storage}/{name}", "command": cmd,
                   **run_one(cmd, logs / f"{name}.log")}
            log.info("run %s seed %d: exit %d after %.0f s (log %s)", kind, seed, run["rc"], run["wall_s"], run["log"])
            try:
                run.update(collect(run["uri"]))
            except (OSError, ValueError) as exc:
                log.error("run %s seed %d: no results to read (%s); see %s", kind, seed, exc, run["log"])
            data["runs"].append(run)
            if args.json:
                Path(args.json).write_text(json.dumps(data, indent=2))
    print(report(data))
    return 0 if all(r["rc"] == 0 for r in data["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
