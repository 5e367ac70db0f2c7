"""Experiment config: presets, files, --set, the grid, and errors that name the bad key and value."""
from __future__ import annotations

import json

import pytest

from results.experiment_config import ExperimentConfig, load_experiment_config
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


@pytest.mark.parametrize("name, text, match", [
    ("x.yaml", "- a list\n", "expected a mapping of keys to values at the top level, got list"),
    ("x.yaml", "a: [1\n", "not valid YAML .*line 2"),
    ("x.yml", "a: b: c\n", "not valid YAML"),
    ("x.json", '{"seeds": [0,', "not valid JSON"),
    ("x.json", "seeds: [0]\n", "not valid JSON"),  # .json is JSON, not YAML
])
def test_bad_file_is_one_line_naming_it(tmp_path, name, text, match):
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        load_experiment_config(config_file=f)
    assert str(f) in str(err.value) and "\n" not in str(err.value)


def test_missing_file_folder_and_preset(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_experiment_config(config_file=tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="is not a file"):
        load_experiment_config(config_file=tmp_path)
    with pytest.raises(ConfigError, match="preset"):
        load_experiment_config(preset="nope")


def test_yaml_json_and_no_suffix_files(tmp_path):
    (tmp_path / "a.yml").write_text("seeds: [1, 2]\nsearch: {max_epochs: 2}\n")
    (tmp_path / "b.json").write_text(json.dumps({"seeds": [1, 2], "search": {"max_epochs": 2}}))
    (tmp_path / "c").write_text('{"seeds": [1, 2], "search.max_epochs": 2}')  # YAML reads JSON too
    exps = [load_experiment_config(preset="smoke", config_file=tmp_path / n) for n in ("a.yml", "b.json", "c")]
    assert all(e.seeds == (1, 2) and e.search.max_epochs == 2 for e in exps)


def test_one_set_grammar_through_the_cli():
    from hwnas.cli import build_parser

    args = build_parser().parse_args(["search", "--preset", "smoke", "--set", "seeds=[0,1]", "profile=eyeriss",
                                      "--set", "search.max_epochs=2", "train_size=100"])
    assert args.sets == ["seeds=[0,1]", "profile=eyeriss", "search.max_epochs=2", "train_size=100"]
    exp = load_experiment_config(preset=args.preset, sets=args.sets)
    assert exp.seeds == (0, 1) and exp.profiles == ("eyeriss",) and exp.search.profile == "eyeriss"
    assert exp.search.max_epochs == 2 and exp.search.train_size == 100


@pytest.mark.parametrize("sets, ok", [
    (["gpus_per_trial=-1"], True), (["gpus_per_trial=0.5"], True), (["gpus_per_trial=-2"], False),
    (["max_failures=-1"], True), (["max_failures=-3"], False), (["cpus_per_trial=0"], False),
    (["seeds=[1,1]"], False), (["seeds=[]"], False), (["profiles=[eyeriss,h100]"], True), (['profiles=[""]'], False),
    (["cost_service="], False), (["scan_min_gain=Infinity"], False), (["grad_clip=0"], False),
    (["search.momentum=-1"], False), (["search={\"layers\": 2}"], True), (["search=3"], False),
])
def test_experiment_bounds(sets, ok):
    if ok:
        load_experiment_config(preset="smoke", sets=sets)
    else:
        key = sets[0].split("=")[0].removeprefix("search.")
        with pytest.raises(ConfigError, match=key):
            load_experiment_config(preset="smoke", sets=sets)


def test_unknown_key_names_source_and_known_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'bogus' \(value 1\) in --set; known keys: .*seeds"):
        load_experiment_config(sets=["bogus=1"])


def test_from_dict_roundtrip():
    exp = load_experiment_config(preset="smoke", sets=["seeds=[1,2]"])
    again = ExperimentConfig.from_dict(exp.to_dict())
    assert again == exp
