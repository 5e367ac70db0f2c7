"""The adaptive scan without Ray: coarse grid, lambda space, gap selection on synthetic fronts, the
policy's batches, stop rules, no-barrier suggestions and state round trip, hypervolume reference and
config validation (fast, deterministic)."""
from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from results import scan_metrics as M
from results import scan_policy as P
from results import scan_space as S
from results.scan_metrics import SCAN_FILE, SCAN_SCHEMA, batch_scan_rows, scan_table
from results.experiment_config import ExperimentConfig, load_experiment_config
from results.schema import make_row, rows_to_table
from results.seedstats import point_stats
from results.storage import Storage
from searchspace.config import ConfigError


def exp_of(*sets: str, **kw) -> ExperimentConfig:
    return load_experiment_config(sets=["scan=adaptive", *sets], **kw)


def model(lt: float, le: float, seed: int = 0) -> tuple[float, float, float]:
    """A synthetic trade-off that bends between lambda 0.5 and 2: error rises, costs fall with lambda."""
    x = lt / (1 + lt) + 0.5 * le / (1 + le)
    return 0.08 + 0.3 * x ** 4 + 0.002 * seed, 100 * (1 - 0.6 * x), 50 * (1 - 0.5 * x)


def fake_result(point: dict, fail_lambda: float | None = None) -> tuple[dict | None, bool]:
    """What a trial would report at its end: the final record (phase done), or an error."""
    if point["lambda_time"] == fail_lambda:
        return None, True
    err, t, e = model(point["lambda_time"], point["lambda_energy"], point["seed"])
    return dict(point, phase="done", accuracy=1 - err, dram_time_us=t, dram_energy_uj=e, genotype="{}"), False


class FakeRounds:
    """Rows from ``model`` without Ray or a policy (for tables of given points)."""

    def __call__(self, round_: int, points: list[dict]) -> list[dict]:
        rows = []
        for p in points:
            rec, _ = fake_result(p)
            row = make_row("x", f"r{round_}_{len(rows):03d}_{p['seed']}", p, rec, status="completed")
            row["round"] = round_
            rows.append(row)
        return rows


def drive(exp: ExperimentConfig, workers: int | None = None, fail_lambda: float | None = None,
          policy: P.ScanPolicy | None = None, stop_after: int | None = None):
    """Tune's part without Ray: ask for trials, run them, feed results back.

    ``workers=None``: every handed-out trial finishes before the next ask (batches behave like rounds);
    ``workers=k``: k trials run at once and the oldest finishes first (no barrier). ``stop_after``: stop
    (as an interrupted driver would) after that many results. Returns (policy, asks per batch)."""
    policy = policy or P.ScanPolicy(P.ScanSettings.of(exp))
    running: list[tuple[str, dict]] = []
    n = len(policy.assigned)
    results = 0
    while True:
        done = False
        while workers is None or len(running) < workers:
            point = policy.suggest(f"t{n:03d}")
            if point is None or point == P.DONE:
                done = point == P.DONE
                break
            running.append((f"t{n:03d}", point))
            n += 1
        if not running:
            assert done, "the policy waits with nothing in flight"
            return policy
        finishing = running if workers is None else running[:1]
        for tid, point in list(finishing):
            policy.complete(tid, *fake_result(point, fail_lambda))
            running.remove((tid, point))
            results += 1
            if stop_after is not None and results >= stop_after:
                return policy


def tables(policy: P.ScanPolicy) -> tuple[pa.Table, pa.Table]:
    trials = rows_to_table(list(policy.rows.values()))
    return trials, scan_table(batch_scan_rows(trials, policy.batch_mappings(), policy.stop_reason))


def batch_sizes(policy: P.ScanPolicy) -> list[int]:
    return [len(b.trial_ids) for b in policy.batches]


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
    assert S.fill_gap(space, (0.0, 0), (1.0, 0), []) == (0.5, 0)
    # points closer than MIN_STEP are never proposed
    assert S.fill_gap(space, (1.0, 0), (1.2, 0), []) is None


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
    # both lambdas move: some point is new in both coordinates, and lambda_energy gets new values too
    assert any(p[0] not in (0, 4) and p[1] not in (0, 4) for p in chosen)
    assert any(p[1] not in (0, 4) for p in chosen)


# ---------------------------------------------------------------------------------------------- metrics
def test_hypervolume_reference_is_the_lambda_zero_cost():
    trials = table_of([(0, 0), (1, 0)], seeds=(0, 1))
    refs = M.reference_costs(trials)
    e0, t0, u0 = model(0, 0)
    assert refs["mobile-npu"] == pytest.approx((t0, u0))
    hv = M.hypervolume_of(trials)
    # by hand: two points in (error, t/T0, u/E0), reference (1, 1.1, 1.1)
    from results.pareto import hypervolume

    pts = [(model(lt, 0, s)[0], model(lt, 0, s)[1] / t0, model(lt, 0, s)[2] / u0) for lt in (0, 1) for s in (0, 1)]
    assert hv == pytest.approx(hypervolume(pts, M.HV_REF))
    assert 0 < hv <= 1.21
    # without lambda = 0 trials the largest cost is the reference
    only = table_of([(1, 0), (4, 0)])
    assert M.reference_costs(only)["mobile-npu"] == pytest.approx((model(1, 0)[1], model(1, 0)[2]))


def test_largest_gap_and_mst():
    # 1-D chain: the MST edges are the neighbour distances
    pts = np.array([[0.0, 0, 0], [1, 0, 0], [3, 0, 0], [3.5, 0, 0]])
    assert [round(e[0], 6) for e in M.mst_edges(pts)] == [2.0, 1.0, 0.5]
    front = np.array([[0.1, 10, 5], [0.2, 5, 3], [0.5, 1, 1]])
    g = M.largest_gap(front)
    lo, span = M.minmax_bounds(front)
    n = (front - lo) / span
    assert g == pytest.approx(max(np.linalg.norm(n[0] - n[1]), np.linalg.norm(n[1] - n[2])))
    assert M.largest_gap(front[:1]) == 0.0


# ---------------------------------------------------------------------------------------------- the policy
def test_batches_budget_and_scan_table():
    exp = exp_of("lambda_time=[0,0.1,10]", "seeds=[0,1]", "scan_budget=14", "scan_batch=2", "name=fake")
    policy = drive(exp)
    # coarse 4 points x 2 seeds = 8, then 2 points x 2 seeds, then 1 point (budget 14)
    assert batch_sizes(policy) == [8, 4, 2]
    trials, scan = tables(policy)
    s = scan.to_pylist()
    assert scan.schema.equals(SCAN_SCHEMA)
    assert [r["trials"] for r in s] == [8, 12, 14] and [r["new_trials"] for r in s] == [8, 4, 2]
    assert [r["stop_reason"] for r in s] == [None, None, "budget"]
    hv = [r["hypervolume"] for r in s]
    assert hv == sorted(hv) and all(r["hv_gain"] == pytest.approx(b - a) for r, a, b in zip(s[1:], hv, hv[1:]))
    assert s[0]["ref_time_us"] == pytest.approx(model(0, 0)[1])
    assert sorted(trials.column("round").to_pylist()) == [0] * 8 + [1] * 4 + [2] * 2
    # a new lambda point is run with every seed
    for b in policy.batches:
        assert sorted(policy.assigned[t][1]["seed"] for t in b.trial_ids) == sorted([0, 1] * len(b.points))
    assert json.loads(s[1]["new_points"])[0] == pytest.approx([3.162, 0.0])


def test_stops_on_min_gain_and_rounds():
    exp = exp_of("lambda_time=[0,0.1,10]", "scan_budget=100", "scan_rounds=2")
    policy = drive(exp)
    assert len(policy.batches) == 3 and policy.stop_reason == "rounds"
    assert tables(policy)[1].column("stop_reason").to_pylist() == [None, None, "rounds"]
    policy = drive(exp_of("lambda_time=[0,0.1,10]", "scan_budget=100", "scan_min_gain=0.5"))
    assert len(policy.batches) == 2 and policy.stop_reason == "min_gain"


def test_no_barrier_a_free_worker_gets_a_new_point_while_others_run():
    # coarse grid 0, 0.1, 1, 10 on two workers: the first result already opens a batch (no waiting for
    # the coarse grid's slowest trial); every batch is informed by at least one new result
    exp = exp_of("lambda_time=[0,0.1,10]", "scan_budget=8", "scan_batch=1", "scan_min_gain=0", "scan_rounds=10")
    policy = P.ScanPolicy(P.ScanSettings.of(exp))
    asked = [policy.suggest(f"c{i}") for i in range(4)]
    assert [p["lambda_time"] for p in asked] == [0, 0.1, 1, 10] and policy.suggest("x") is None
    policy.complete("c0", *fake_result(asked[0]))
    new = policy.suggest("n0")
    assert isinstance(new, dict) and new["lambda_time"] not in (0, 0.1, 1, 10)
    assert policy.suggest("n1") is None  # nothing learnt since: wait rather than guess
    assert all(policy.rows.get(f"c{i}") is None for i in (1, 2, 3))  # the coarse grid still runs
    done = drive(exp, workers=2)
    assert done.stop_reason == "budget" and len(done.assigned) == 8
    lams = [p["lambda_time"] for _, p in done.assigned.values()]
    assert len(set(lams)) == len(lams)  # in-flight points count as taken: never the same point twice


def test_state_round_trips_and_resumes_where_it_stopped():
    import pickle

    exp = exp_of("lambda_time=[0,0.1,10]", "scan_batch=1", "scan_min_gain=0", "scan_budget=7")
    whole = drive(exp)
    half = drive(exp, stop_after=5)
    in_flight = [t for t in half.assigned if t not in half.rows]
    again = P.ScanPolicy.from_state(pickle.loads(pickle.dumps(half.state())))
    assert again.state() == half.state()
    # what Tune does on restore: the unfinished trials run again under their ids, then the scan goes on
    for t in in_flight:
        again.complete(t, *fake_result(again.assigned[t][1]))
    drive(exp, policy=again)
    key = lambda p: sorted((b.index, tuple(b.points)) for b in p.batches)  # noqa: E731
    assert key(again) == key(whole) and again.stop_reason == whole.stop_reason == "budget"
    assert len(again.assigned) == 7


def test_failed_trials_count_against_the_budget_and_are_not_retried():
    exp = exp_of("lambda_time=[0,0.1,10]", "scan_budget=6")
    trials, _ = tables(drive(exp, fail_lambda=10.0))
    rows = trials.to_pylist()
    assert len(rows) == 6 and sum(r["status"] == "failed" for r in rows) == 1
    assert [r["lambda_time"] for r in rows].count(10.0) == 1


def test_grid_scan_table_is_one_round():
    trials = table_of([(0, 0), (1, 0), (4, 0)])
    t = M.grid_scan_table(trials, 1.5).to_pylist()
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
    from hwnas import cli
    from results.trial_rows import write_results

    storage = Storage.from_uri(tmp_path).check()
    trials, scan = tables(drive(exp_of("lambda_time=[0,0.1,10]", "scan_budget=6", "name=adaptive")))
    write_results(storage, "adaptive", trials.to_pylist())
    storage.child("adaptive").write_table(SCAN_FILE, scan)
    grid_pts = [(0, 0), (0.1, 0), (0.4642, 0), (2.154, 0), (10, 0), (0.02, 0)]
    rows = FakeRounds()(0, [dict(seed=0, lambda_time=lt, lambda_energy=le, profile="mobile-npu") for lt, le in grid_pts])
    table, _ = write_results(storage, "grid", rows)
    storage.child("grid").write_table(SCAN_FILE, M.grid_scan_table(table, 1.0))
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
