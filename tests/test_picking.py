"""--pick rules on a synthetic front (results.picking)."""
import math

import pytest

from results.picking import by_trial, parse_rule, pick

FRONT = [  # accuracy rises with DRAM time; "c" is the knee
    {"trial_id": "a", "accuracy": 0.70, "dram_time_us": 10.0, "dram_energy_uj": 1.0, "status": "completed"},
    {"trial_id": "b", "accuracy": 0.80, "dram_time_us": 12.0, "dram_energy_uj": 1.5, "status": "completed"},
    {"trial_id": "c", "accuracy": 0.88, "dram_time_us": 14.0, "dram_energy_uj": 2.0, "status": "completed"},
    {"trial_id": "d", "accuracy": 0.89, "dram_time_us": 30.0, "dram_energy_uj": 4.0, "status": "completed"},
    {"trial_id": "e", "accuracy": 0.90, "dram_time_us": 50.0, "dram_energy_uj": 9.0, "status": "completed"},
    {"trial_id": "f", "accuracy": None, "dram_time_us": None, "dram_energy_uj": None, "status": "failed"},
    {"trial_id": "g", "accuracy": 0.99, "dram_time_us": math.nan, "dram_energy_uj": 1.0, "status": "completed"},
]


@pytest.mark.parametrize("rule, trial", [("most-accurate", "e"), ("cheapest", "a"), ("knee", "c"),
                                         ("budget:dram_time_us=20", "c"), ("budget:dram_time_us=12", "b"),
                                         ("budget:dram_energy_uj=4", "d"), ("budget:dram_energy_uj=1e9", "e")])
def test_rules(rule, trial):
    assert pick(FRONT, rule)["trial_id"] == trial


def test_ties_and_single_point():
    tied = [dict(FRONT[0], trial_id="x", dram_time_us=11.0), dict(FRONT[0], trial_id="y")]
    assert pick(tied, "most-accurate")["trial_id"] == "y"  # same accuracy: the cheaper
    assert pick(FRONT[:1], "knee")["trial_id"] == "a"


def test_budget_below_every_point_names_the_cheapest():
    with pytest.raises(ValueError, match=r"no front point has dram_time_us <= 5; the cheapest has 10 \(trial a\)"):
        pick(FRONT, "budget:dram_time_us=5")


@pytest.mark.parametrize("text, msg", [("best", "unknown --pick rule 'best'"), ("budget:flops=3", "a budget is"),
                                       ("budget:dram_time_us=x", "not a number"),
                                       ("budget:dram_time_us=-1", "positive")])
def test_bad_rules(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_rule(text)


def test_empty_front_and_trials():
    with pytest.raises(ValueError, match="no completed point"):
        pick(FRONT[5:6], "knee")
    assert by_trial([dict(FRONT[0], genotype="{}")], "a")["trial_id"] == "a"
    with pytest.raises(ValueError, match="no trial 'zz'"):
        by_trial(FRONT, "zz")
    with pytest.raises(ValueError, match="trial f is failed"):
        by_trial(FRONT, "f")
