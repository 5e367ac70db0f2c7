"""Cost budgets (issue 10), the orchestrator side without Ray: budgets as scan dimensions (grid and
adaptive), the trials / points / scan tables, the pareto table and the progress lines."""
from __future__ import annotations

import json
import math

import pytest

from results import scan_policy as P
from results import scan_space as S
from results.experiment_config import load_experiment_config
from hwnas.cli.pareto import BUDGET_TABLE_COLUMNS, TABLE_COLUMNS, render
from orchestrator.progress import point_of
from results.schema import SCHEMA, conform, make_row, rows_to_table
from results.scan_metrics import SCAN_SCHEMA, batch_scan_rows, conform_scan, grid_scan_table, scan_table
from results.seedstats import describe_points, point_stats
from results.trial_rows import TrialOutcome, result_rows
from searchspace.config import ConfigError


def landed(point: dict) -> tuple[float, float, float]:
    """A synthetic trial that lands at its time budget: (error, dram_time_us, dram_energy_uj). Tighter
    budgets cost accuracy."""
    b = point.get("dram_time_budget_us") or 400.0
    return 0.08 + 20.0 / b, b, b / 2


def record(point: dict) -> dict:
    err, t, e = landed(point)
    return dict(point, phase="done", accuracy=1 - err, dram_time_us=t, dram_energy_uj=e, genotype="{}")


# ---------------------------------------------------------------------------------------------- the grid
def test_grid_over_budgets_makes_one_trial_per_budget_and_rows_carry_them():
    exp = load_experiment_config(preset="smoke", sets=["dram_time_budget_us=[10,20,40]", "lambda_time=[0]",
                                                       "budget_penalty=absolute"])
    assert exp.dram_time_budget_us == (10.0, 20.0, 40.0) and exp.dram_energy_budget_uj == (0.0,)
    points = exp.grid_points()
    assert sorted(p["dram_time_budget_us"] for p in points) == [10.0, 20.0, 40.0]
    configs = [exp.trial_config(p) for p in points]
    assert {c.dram_time_budget_us for c in configs} == {10.0, 20.0, 40.0}
    assert all(c.budget_penalty == "absolute" for c in configs)
    # what Tune hands back: the final record (its config is the trial's whole search config)
    outcomes = [TrialOutcome(f"t{i}", {**record(c.to_dict()), "config": c.to_dict()}, c.to_dict())
                for i, c in enumerate(configs)]
    table = rows_to_table(result_rows("smoke", outcomes))
    assert table.schema.equals(SCHEMA)
    rows = table.to_pylist()
    assert sorted(r["dram_time_budget_us"] for r in rows) == [10.0, 20.0, 40.0]
    assert {r["dram_energy_budget_uj"] for r in rows} == {0.0}
    assert {r["budget_penalty"] for r in rows} == {"absolute"}
    assert {r["budget_weight"] for r in rows} == {configs[0].budget_weight}
    # seed statistics group by budget: three points, each naming its budget
    pts = point_stats(table)
    assert sorted(pts.column("dram_time_budget_us").to_pylist()) == [10.0, 20.0, 40.0]
    assert any("dram_time_budget_us=10" in line for line in describe_points(pts))
    # the grid's scan row lists the budgets beside the lambda points
    scan = grid_scan_table(table, 1.0).to_pylist()[0]
    assert sorted(json.loads(scan["new_budgets"])) == [[10.0, 0.0], [20.0, 0.0], [40.0, 0.0]]
    assert len(json.loads(scan["new_points"])) == 3


def test_budget_list_refused_when_negative():
    with pytest.raises(ConfigError, match="'dram_time_budget_us'") as info:
        load_experiment_config(preset="smoke", sets=["dram_time_budget_us=[10,-1]"])
    assert "\n" not in str(info.value)


def test_tables_without_budget_columns_read_as_budget_off():
    row = make_row("e", "a", {"seed": 0, "lambda_time": 0.5}, None, error_message="boom")
    old = rows_to_table([row]).drop_columns(["dram_time_budget_us", "dram_energy_budget_uj", "budget_penalty",
                                             "budget_weight"])
    back = conform(old).to_pylist()[0]
    assert back["dram_time_budget_us"] == 0.0 and back["budget_penalty"] is None
    scan = scan_table([{"round": 0, "scan": "grid", "new_points": "[]"}]).drop_columns(["new_budgets"])
    assert conform_scan(scan).schema.equals(SCAN_SCHEMA)


# ---------------------------------------------------------------------------------------------- adaptive
def test_adaptive_scan_over_a_budget_range():
    exp = load_experiment_config(sets=["scan=adaptive", "dram_time_budget_us=[50,400]", "scan_budget=8",
                                       "scan_batch=2", "name=b"])
    assert S.scanned_dims(exp) == ("dram_time_budget_us",)
    coarse = S.coarse_points(exp)
    assert [p[2] for p in coarse] == pytest.approx([50, 141.4, 400], rel=1e-3)  # scan_init log-spaced, no 0
    assert all(p[:2] == (0.0, 0.0) and p[3] == 0.0 for p in coarse)
    policy = P.ScanPolicy(P.ScanSettings.of(exp))
    n = 0
    while (point := policy.suggest(f"t{n}")) not in (None, P.DONE):
        assert set(point) >= {"seed", "lambda_time", "dram_time_budget_us", "dram_energy_budget_uj", "profile"}
        policy.complete(f"t{n}", record(point))
        n += 1
    budgets = [policy.assigned[t][1]["dram_time_budget_us"] for t in sorted(policy.assigned)]
    assert len(policy.batches) >= 3 and len(budgets) == 8
    assert all(50 <= b <= 400 for b in budgets)  # every suggestion inside the range
    new = [b for b in budgets if not any(math.isclose(b, c[2], rel_tol=1e-3) for c in coarse)]
    assert new and all(min(abs(math.log(b / c[2])) for c in coarse) >= math.log(S.MIN_STEP) - 1e-9 for b in new)
    trials = rows_to_table(list(policy.rows.values()))
    scan = batch_scan_rows(trials, policy.batch_mappings(), policy.stop_reason)
    assert [b[0] for b in json.loads(scan[1]["new_budgets"])] == pytest.approx(new[:len(json.loads(scan[1]["new_budgets"]))])


def test_adaptive_scan_refuses_a_budget_range_through_zero():
    with pytest.raises(ConfigError, match="'dram_time_budget_us' = \\[0.0, 100.0\\]: a scanned budget range must "
                                          "be > 0"):
        load_experiment_config(sets=["scan=adaptive", "dram_time_budget_us=[0,100]"])


def test_adaptive_lambda_scan_with_a_fixed_budget():
    exp = load_experiment_config(sets=["scan=adaptive", "lambda_time=[0,1,16]", "dram_energy_budget_uj=300"])
    assert S.scanned_dims(exp) == ("lambda_time",)
    assert {p[3] for p in S.coarse_points(exp)} == {300.0}  # every point keeps the budget
    point = P.ScanPolicy(P.ScanSettings.of(exp)).suggest("t0")
    assert point["dram_energy_budget_uj"] == 300.0 and point["dram_time_budget_us"] == 0.0


def test_lambda_only_points_stay_pairs():
    exp = load_experiment_config(sets=["scan=adaptive", "lambda_time=[0,1]"])
    assert S.point_keys(exp) == S.LAMBDA_KEYS and all(len(p) == 2 for p in S.coarse_points(exp))


# ---------------------------------------------------------------------------------------------- console
def test_pareto_table_and_progress_name_budgets_when_set():
    rows = [make_row("e", f"t{b}", {"seed": 0, "profile": "p", "lambda_time": 0.0, "dram_time_budget_us": b},
                     record({"dram_time_budget_us": b}), status="completed") for b in (100.0, 200.0)]
    text = render(rows_to_table(rows), "table")
    assert all(c in text.splitlines()[1] for c in TABLE_COLUMNS + BUDGET_TABLE_COLUMNS)  # [0]: the title
    plain = [make_row("e", "t", {"seed": 0, "profile": "p"}, record({}), status="completed")]
    assert "dram_time_budget_us" not in render(rows_to_table(plain), "table")
    assert "dram_time_budget_us=40" in point_of({"seed": 0, "lambda_time": 0, "dram_time_budget_us": 40})
    assert "budget" not in point_of({"seed": 0, "lambda_time": 0, "dram_time_budget_us": 0.0})


def test_plot_labels_name_budgets_when_set():
    from results.plot import point_label

    assert point_label({"lambda_time": 0.5, "lambda_energy": 0.0}) == "lt=0.5 le=0"
    assert point_label({"lambda_time": 0.0, "lambda_energy": 0.0, "dram_time_budget_us": 40.0,
                        "dram_energy_budget_uj": 0.0}) == "lt=0 le=0 T<=40"
