"""The adaptive scan without Ray: coarse grid, lambda space, gap selection on synthetic fronts, the
stopping rules, resume, hypervolume reference and config validation (fast, deterministic)."""
from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from orchestrator import scan as S
from orchestrator.experiment_config import ExperimentConfig, load_experiment_config
from orchestrator.results import make_row, rows_to_table
from orchestrator.seedstats import point_stats
from orchestrator.storage import Storage
from searchspace.config import ConfigError


def exp_of(*sets: str, **kw) -> ExperimentConfig:
    return load_experiment_config(sets=["scan=adaptive", *sets], **kw)


def model(lt: float, le: float, seed: int = 0) -> tuple[float, float, float]:
    """A synthetic trade-off that bends between lambda 0.5 and 2: error rises, costs fall with lambda."""
    x = lt / (1 + lt) + 0.5 * le / (1 + le)
    return 0.08 + 0.3 * x ** 4 + 0.002 * seed, 100 * (1 - 0.6 * x), 50 * (1 - 0.5 * x)


class FakeRounds:
    """``run_round`` without Ray: rows from ``model``; records what each round was asked to run."""

    def __init__(self, fail_lambda: float | None = None) -> None:
        self.calls: list[tuple[int, list[dict]]] = []
        self.fail_lambda = fail_lambda

    def __call__(self, round_: int, points: list[dict]) -> list[dict]:
        self.calls.append((round_, points))
        rows = []
        for p in points:
            tid = f"r{round_}_{len(rows):03d}_{p['seed']}"
            if p["lambda_time"] == self.fail_lambda:
                rows.append(make_row("x", tid, p, None, status="failed", error_message="RuntimeError: boom"))
                continue
            err, t, e = model(p["lambda_time"], p["lambda_energy"], p["seed"])
            rows.append(make_row("x", tid, p, dict(accuracy=1 - err, dram_time_us=t, dram_energy_uj=e, genotype={}),
                                 status="completed"))
        return rows


def table_of(points: list[tuple[float, float]], seeds=(0,)) -> pa.Table:
    run = FakeRounds()
    return rows_to_table(run(0, [dict(seed=s, lambda_time=lt, lambda_energy=le, profile="mobile-npu")
                                 for lt, le in points for s in seeds]))


# ---------------------------------------------------------------------------------------------- coarse grid
def test_coarse_grid_and_budget():
    assert S.coarse_values([0, 0.1, 10], 3) == pytest.approx([0, 0.1, 1.0, 10])
    assert S.coarse_values([0.5, 8], 0) == [0, 0.5, 8]  # scan_init=0: the configured values (and 0)
    assert S.coarse_values([0, 2], 3) == [0, 2]  # one nonzero value: nothing to spread
    exp = exp_of("lambda_time=[0,0.1,10]", "seeds=[0,1]")
    assert S.scanned_dims(exp) == ("lambda_time",)
    assert S.coarse_points(exp) == [(0, 0), (0.1, 0), (1, 0), (10, 0)]
    assert S.budget_of(exp) == 16  # scan_budget=0: twice the coarse grid's 4 x 2 trials
    both = exp_of("lambda_time=[0,1]", "lambda_energy=[0,0.5,2]", "scan_init=2")
    assert S.scanned_dims(both) == ("lambda_time", "lambda_energy")
    assert len(S.coarse_points(both)) == 2 * 3


def test_lambda_space_zero_and_geometric_mean():
    space = S.LambdaSpace.of(exp_of("lambda_time=[0,1,16]", "scan_init=0"))
    assert space.dims == ("lambda_time",)
    assert space.point(space.coords((1.0, 0)), (0, 0)) == (1.0, 0)
    assert space.point(space.coords((0.0, 0)), (0, 0)) == (0.0, 0)  # zero round-trips
    mid = (space.coords((1, 0)) + space.coords((16, 0))) / 2
    assert space.point(mid, (0, 0)) == (4.0, 0)
    # 0 sits two octaves below the smallest nonzero coarse value: the mean of 0 and 1 is sqrt(1 * 1/4)
    assert S._fill(space, (0.0, 0), (1.0, 0), []) == (0.5, 0)
    # points closer than MIN_STEP are never proposed
    assert S._fill(space, (1.0, 0), (1.2, 0), []) is None


def test_gap_is_filled_where_the_front_bends():
    exp = exp_of("lambda_time=[0,0.5,8]", "scan_init=0")
    space = S.LambdaSpace.of(exp)
    trials = table_of([(0, 0), (0.5, 0), (8, 0)])
    chosen = S.choose_points(point_stats(trials), trials, space, 2, [(0, 0), (0.5, 0), (8, 0)])
    # the largest gap of the front (min-max normalised) is between 0.5 and 8: its geometric mean is 2
    assert [p for p, _ in chosen][0] == (2.0, 0)
    assert "front gap" in chosen[0][1]
    assert len(chosen) == 2 and chosen[1][0] != (2.0, 0)


def test_gap_with_run_midpoint_goes_finer_and_fallback_bisects_lambda():
    exp = exp_of("lambda_time=[0,1,16]", "scan_init=0")
    space = S.LambdaSpace.of(exp)
    # 4 (the mean of 1 and 16) was run and is dominated: the gap 1..16 is filled at 2 or 8, never 4 again
    trials = table_of([(0, 0), (1, 0), (16, 0)])
    rows = trials.to_pylist()
    run = FakeRounds()
    extra = run(1, [dict(seed=0, lambda_time=4.0, lambda_energy=0.0, profile="mobile-npu")])
    extra[0].update(accuracy=0.01, error=0.99, dram_time_us=1e4, dram_energy_uj=1e4)  # dominated by all
    trials = rows_to_table(rows + extra)
    chosen = [p for p, _ in S.choose_points(point_stats(trials), trials, space, 1, [(0, 0), (1, 0), (16, 0), (4, 0)])]
    assert chosen and chosen[0] in {(2.0, 0), (8.0, 0)}
    # a front of one point (every trial identical): bisect the widest stretch of lambda space instead
    flat = rows_to_table([{**r, "dram_time_us": 10.0, "dram_energy_uj": 5.0, "accuracy": 0.9, "error": 0.1}
                          for r in table_of([(0, 0), (1, 0), (16, 0)]).to_pylist()])
    chosen = S.choose_points(point_stats(flat), flat, space, 1, [(0, 0), (1, 0), (16, 0)])
    assert chosen[0][0] == (4.0, 0) and "unexplored" in chosen[0][1]


def test_two_dimensional_scan_moves_both_lambdas():
    exp = exp_of("lambda_time=[0,4]", "lambda_energy=[0,4]", "scan_init=1")
    space = S.LambdaSpace.of(exp)
    pts = S.coarse_points(exp)
    assert pts == [(0, 0), (0, 4), (4, 0), (4, 4)]
    trials = table_of(pts)
    chosen = [p for p, _ in S.choose_points(point_stats(trials), trials, space, 3, pts)]
    assert len(chosen) == 3 and not set(chosen) & set(pts)
    assert all(all(v in (0.0, 1.0, 2.0, 4.0) for v in p) for p in chosen)  # geometric means of 0/1, 1/4 ...
    assert any(p[0] not in (0, 4) and p[1] not in (0, 4) for p in chosen) or any(p[1] not in (0, 4) for p in chosen)


# ---------------------------------------------------------------------------------------------- metrics
def test_hypervolume_reference_is_the_lambda_zero_cost():
    trials = table_of([(0, 0), (1, 0)], seeds=(0, 1))
    refs = S.reference_costs(trials)
    e0, t0, u0 = model(0, 0)
    assert refs["mobile-npu"] == pytest.approx((t0, u0))
    hv = S.hypervolume_of(trials)
    # by hand: two points in (error, t/T0, u/E0), reference (1, 1.1, 1.1)
    from orchestrator.pareto import hypervolume

    pts = [(model(lt, 0, s)[0], model(lt, 0, s)[1] / t0, model(lt, 0, s)[2] / u0) for lt in (0, 1) for s in (0, 1)]
    assert hv == pytest.approx(hypervolume(pts, S.HV_REF))
    assert 0 < hv <= 1.21
    # without lambda = 0 trials the largest cost is the reference
    only = table_of([(1, 0), (4, 0)])
    assert S.reference_costs(only)["mobile-npu"] == pytest.approx((model(1, 0)[1], model(1, 0)[2]))


def test_largest_gap_and_mst():
    # 1-D chain: the MST edges are the neighbour distances
    pts = np.array([[0.0, 0, 0], [1, 0, 0], [3, 0, 0], [3.5, 0, 0]])
    assert [round(e[0], 6) for e in S.mst_edges(pts)] == [2.0, 1.0, 0.5]
    front = np.array([[0.1, 10, 5], [0.2, 5, 3], [0.5, 1, 1]])
    g = S.largest_gap(front)
    lo, span = S.minmax_bounds(front)
    n = (front - lo) / span
    assert g == pytest.approx(max(np.linalg.norm(n[0] - n[1]), np.linalg.norm(n[1] - n[2])))
    assert S.largest_gap(front[:1]) == 0.0


# ---------------------------------------------------------------------------------------------- the loop
def test_scan_loop_budget_rounds_and_table(tmp_path):
    exp = exp_of("lambda_time=[0,0.1,10]", "seeds=[0,1]", "scan_budget=14", "scan_batch=2", "name=fake",
                 storage=str(tmp_path))
    storage = Storage.from_uri(tmp_path).check()
    run = FakeRounds()
    out = S.run_scan(exp, storage, run)
    # coarse 4 points x 2 seeds = 8, then 2 points x 2 seeds, then 1 point (budget 14)
    assert [len(p) for _, p in run.calls] == [8, 4, 2]
    scan = out.scan.to_pylist()
    assert out.scan.schema.equals(S.SCAN_SCHEMA)
    assert [r["trials"] for r in scan] == [8, 12, 14]
    assert [r["stop_reason"] for r in scan] == [None, None, "budget"]
    hv = [r["hypervolume"] for r in scan]
    assert hv == sorted(hv) and all(r["hv_gain"] == pytest.approx(b - a) for r, a, b in zip(scan[1:], hv, hv[1:]))
    assert scan[0]["ref_time_us"] == pytest.approx(model(0, 0)[1])
    assert sorted(out.trials.column("round").to_pylist()) == [0] * 8 + [1] * 4 + [2] * 2
    # every table is written beside the trials
    for name in ("trials.parquet", "pareto.parquet", "points.parquet", "scan.parquet"):
        assert (tmp_path / "fake" / name).exists()
    # a new lambda point is run with every seed
    assert all(sorted(p["seed"] for p in pts) == [0, 1] * (len(pts) // 2) or len(pts) % 2 == 0 for _, pts in run.calls)
    assert json.loads(scan[1]["new_points"])[0] == pytest.approx([3.162, 0.0])


def test_scan_stops_on_min_gain_and_rounds(tmp_path):
    storage = Storage.from_uri(tmp_path).check()
    exp = exp_of("lambda_time=[0,0.1,10]", "scan_budget=100", "scan_rounds=2", "name=r", storage=str(tmp_path))
    out = S.run_scan(exp, storage, FakeRounds())
    assert out.scan.column("round").to_pylist() == [0, 1, 2] and out.scan.column("stop_reason")[-1].as_py() == "rounds"
    exp = exp_of("lambda_time=[0,0.1,10]", "scan_budget=100", "scan_min_gain=0.5", "name=g", storage=str(tmp_path))
    out = S.run_scan(exp, storage, FakeRounds())
    assert out.scan.column("round").to_pylist() == [0, 1] and out.scan.column("stop_reason")[-1].as_py() == "min_gain"


def test_resume_skips_finished_rounds_and_extends(tmp_path):
    storage = Storage.from_uri(tmp_path).check()
    base = ["lambda_time=[0,0.1,10]", "name=res", "scan_batch=1", "scan_min_gain=0"]
    first = FakeRounds()
    S.run_scan(exp_of(*base, "scan_budget=5", storage=str(tmp_path)), storage, first)
    assert [r for r, _ in first.calls] == [0, 1]
    import pyarrow.parquet as pq

    ids = set(pq.read_table(tmp_path / "res" / "trials.parquet").column("trial_id").to_pylist())
    again = FakeRounds()
    out = S.run_scan(exp_of(*base, "scan_budget=7", storage=str(tmp_path)), storage, again, resume=True)
    assert [r for r, _ in again.calls] == [2, 3]  # rounds 0 and 1 are not run again
    assert ids <= set(out.trials.column("trial_id").to_pylist()) and out.trials.num_rows == 7
    assert out.scan.column("stop_reason").to_pylist() == [None, None, None, "budget"]
    # nothing left to do: a resume only rewrites the tables
    idle = FakeRounds()
    out = S.run_scan(exp_of(*base, "scan_budget=7", storage=str(tmp_path)), storage, idle, resume=True)
    assert idle.calls == [] and out.trials.num_rows == 7 and out.scan.num_rows == 4


def test_failed_trials_count_against_the_budget_and_are_not_retried(tmp_path):
    storage = Storage.from_uri(tmp_path).check()
    exp = exp_of("lambda_time=[0,0.1,10]", "scan_budget=6", "name=f", storage=str(tmp_path))
    out = S.run_scan(exp, storage, FakeRounds(fail_lambda=10.0))
    rows = out.trials.to_pylist()
    assert len(rows) == 6 and sum(r["status"] == "failed" for r in rows) == 1
    lams = [r["lambda_time"] for r in rows]
    assert lams.count(10.0) == 1


def test_grid_scan_table_is_one_round():
    trials = table_of([(0, 0), (1, 0), (4, 0)])
    t = S.grid_scan_table(trials, 1.5).to_pylist()
    assert len(t) == 1 and t[0]["scan"] == "grid" and t[0]["trials"] == 3 and t[0]["hv_gain"] is None
    assert json.loads(t[0]["new_points"]) == [[0, 0], [1, 0], [4, 0]]


# ---------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize("sets, key", [
    (["scan=sideways"], "scan"),
    (["scan=adaptive"], "scan"),  # default lambdas: nothing to scan
    (["scan=adaptive", "lambda_time=[0,1]", "profiles=[mobile-npu,eyeriss]"], "profiles"),
    (["scan=adaptive", "lambda_time=[0,1]", "scan_budget=1"], "scan_budget"),
    (["scan_budget=-1"], "scan_budget"),
    (["scan_batch=0"], "scan_batch"),
    (["scan_min_gain=-0.1"], "scan_min_gain"),
    (["scan_rounds=-2"], "scan_rounds"),
    (["scan_init=x"], "scan_init"),
])
def test_bad_scan_config_names_key_and_value(sets, key):
    with pytest.raises(ConfigError) as err:
        load_experiment_config(sets=sets)
    assert repr(key) in str(err.value)
    value = sets[-1].split("=", 1)[1]
    assert value.strip("[]").split(",")[0] in str(err.value)


def test_adaptive_config_round_trips():
    exp = exp_of("lambda_time=[0,1]", "scan_budget=9", "scan_min_gain=0.01")
    again = ExperimentConfig.from_dict(exp.to_dict())
    assert again == exp and again.scan == "adaptive" and again.scan_budget == 9
    assert math.isclose(again.scan_min_gain, 0.01)


# ---------------------------------------------------------------------------------------------- --compare
def test_pareto_compare_table_and_plot(tmp_path, capsys):
    from orchestrator import cli
    from orchestrator.experiment import write_results

    storage = Storage.from_uri(tmp_path).check()
    S.run_scan(exp_of("lambda_time=[0,0.1,10]", "scan_budget=6", "name=adaptive", storage=str(tmp_path)), storage,
               FakeRounds())
    grid_pts = [(0, 0), (0.1, 0), (0.4642, 0), (2.154, 0), (10, 0), (0.02, 0)]
    rows = FakeRounds()(0, [dict(seed=0, lambda_time=lt, lambda_energy=le, profile="mobile-npu") for lt, le in grid_pts])
    table, _ = write_results(storage, "grid", rows)
    storage.child("grid").write_table(S.SCAN_FILE, S.grid_scan_table(table, 1.0))
    a, g = str(tmp_path / "adaptive"), str(tmp_path / "grid")
    assert cli.main(["pareto", a, "--compare", g, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["experiment"], r["scan"], r["trials"]) for r in out] == [("adaptive", "adaptive", 6), ("grid", "grid", 6)]
    assert all(0 < r["hypervolume"] <= 1.21 and r["largest_gap"] > 0 for r in out)
    png = tmp_path / "c.png"
    assert cli.main(["pareto", a, "--compare", g, "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:3] == ["experiment", "scan", "trials"] and png.stat().st_size > 10_000
    # --plot of one experiment shows its hypervolume per round; a folder without scan.parquet still plots
    assert cli.main(["pareto", a, "--plot", str(tmp_path / "a.png")]) == 0
    (tmp_path / "grid" / "scan.parquet").unlink()
    assert cli.main(["pareto", g, "--plot", str(tmp_path / "g.png")]) == 0
    capsys.readouterr()
    assert cli.main(["pareto", g, "--compare", a, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",")[1] == "-"  # no scan table: scan unknown
