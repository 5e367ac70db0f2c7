"""Experiment config: presets, files, --set, the grid, and errors that name the bad key and value."""
from __future__ import annotations

import json

import pytest

from orchestrator.experiment_config import ExperimentConfig, load_experiment_config
from searchspace.config import PRESETS, ConfigError


def test_smoke_preset_and_grid():
    exp = load_experiment_config(preset="smoke")
    assert exp.name == "smoke"
    assert exp.search.max_epochs == PRESETS["smoke"]["max_epochs"]
    points = exp.grid_points()
    assert len(points) == len(exp.seeds) * len(exp.lambda_time) * len(exp.lambda_energy) * len(exp.profile_list)
    assert {p["profile"] for p in points} == {exp.search.profile}
    cfg = exp.trial_config(points[-1])
    assert cfg.lambda_time == points[-1]["lambda_time"] and cfg.max_epochs == exp.search.max_epochs


def test_fashion_preset_scans_three_lambdas():
    exp = load_experiment_config(preset="fashion")
    assert len(set(exp.lambda_time) | set(exp.lambda_energy)) >= 3
    assert exp.search.dataset == "fashion"


def test_sets_and_precedence(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("name: fromfile\nseeds: [3]\nlambda_time: [0, 1]\nsearch:\n  max_epochs: 3\n  train_size: 100\n")
    exp = load_experiment_config(
        preset="smoke", config_file=f,
        sets=["seeds=[0,1]", "lambda_energy=[0,0.5]", "search.max_epochs=2", "layers=2", "profile=eyeriss"],
        name="cli")
    assert exp.name == "cli"
    assert exp.seeds == (0, 1) and exp.lambda_time == (0.0, 1.0) and exp.lambda_energy == (0.0, 0.5)
    assert exp.search.max_epochs == 2 and exp.search.train_size == 100 and exp.search.layers == 2
    assert exp.profiles == ("eyeriss",)
    assert len(exp.grid_points()) == 2 * 2 * 2
    j = tmp_path / "exp.json"
    j.write_text(json.dumps({"preset": "smoke", "lambda_time": 0.25}))
    exp = load_experiment_config(config_file=j)
    assert exp.name == "smoke" and exp.lambda_time == (0.25,)


@pytest.mark.parametrize("sets,key,value", [
    (["bogus=1"], "bogus", "1"),
    (["search.nope=3"], "nope", "3"),
    (["lambda_time=[0,-1]"], "lambda_time", "-1"),
    (["seeds=[0.5]"], "seeds", "0.5"),
    (["max_epochs=abc"], "max_epochs", "abc"),
    (["dataset=imagenet"], "dataset", "imagenet"),
    (["name=a/b"], "name", "a/b"),
    (["scan=random"], "scan", "random"),
])
def test_bad_keys_and_values_are_named(sets, key, value):
    with pytest.raises(ConfigError) as err:
        load_experiment_config(preset="smoke", sets=sets)
    assert key in str(err.value) and value in str(err.value)


def test_bad_file(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_experiment_config(config_file=f)
    with pytest.raises(FileNotFoundError):
        load_experiment_config(config_file=tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="preset"):
        load_experiment_config(preset="nope")


def test_from_dict_roundtrip():
    exp = load_experiment_config(preset="smoke", sets=["seeds=[1,2]"])
    again = ExperimentConfig.from_dict(exp.to_dict())
    assert again == exp
