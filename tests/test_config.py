"""Search config validation: every bad value is a ConfigError naming the key and the value."""
import pytest

from searchspace.config import ConfigError, SearchConfig, parse_set, preset


@pytest.mark.parametrize("data, match", [
    ({"bogus": 1}, "unknown config key 'bogus'"),
    ({"lambda_time": -0.5}, "'lambda_time' = -0.5"),
    ({"lambda_energy": "nan"}, "'lambda_energy'"),
    ({"groups": "learned:0"}, "K must be between 1 and 7"),
    ({"groups": "learned:8"}, "K must be between 1 and 7"),
    ({"groups": "pool=max_pool_3x3;conv="}, "group 'conv' is empty"),
    ({"groups": "pool=max_pool_3x3,conv_9x9"}, "unknown operator 'conv_9x9'"),
    ({"groups": "clusters"}, "unknown groups 'clusters'"),
    ({"representatives": ["sep_conv_7x7"]}, "'representatives'.*unknown operator 'sep_conv_7x7'"),
    ({"arch_data": "val"}, "'arch_data'"),
    ({"layers": 0}, "'layers' = 0"),
    ({"channels": "eight"}, "'channels': cannot use 'eight'"),
])
def test_bad_values_name_key_and_value(data, match):
    with pytest.raises(ConfigError, match=match):
        SearchConfig.from_dict(data)


def test_round_trip_and_set_parsing():
    c = SearchConfig.from_dict({**preset("smoke"), **parse_set(["lambda_time=0.5", "representatives=avg_pool_3x3"])})
    assert c.lambda_time == 0.5 and c.representatives == ("avg_pool_3x3",)
    assert SearchConfig.from_dict(c.to_dict()) == c


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset("huge")


@pytest.mark.parametrize("data, match", [
    ({"grad_clip": 0}, "'grad_clip' = 0.0: must be > 0"),
    ({"momentum": -0.1}, "'momentum' = -0.1: must be >= 0"),
    ({"weight_decay": -1e-4}, "'weight_decay' = -0.0001: must be >= 0"),
    ({"arch_weight_decay": -1}, "'arch_weight_decay' = -1.0: must be >= 0"),
    ({"groups": "=max_pool_3x3,avg_pool_3x3"}, "'groups'.*has no name"),
    ({"groups": "pool=max_pool_3x3; =skip_connect"}, "'groups'.*has no name"),
    ({"lr": "inf"}, "'lr' = inf: must be a finite number"),
    ({"max_skip_per_cell": -2}, "must be >= 0, or -1 for no cap"),
    ({"layers": True}, "'layers': cannot use True as int"),
    ({"layers": 2.5}, "'layers': cannot use 2.5 as int"),
    ({"dataset": ["fashion"]}, "'dataset': cannot use \\['fashion'\\] as str"),
    ({"augment": "maybe"}, "'augment': cannot use 'maybe' as bool"),
    ({"arch_data": "split", "val_size": 10, "batch_size": 32}, "'val_size' = 10: arch_data=split needs"),
])
def test_bounds_declared_once_are_enforced(data, match):
    with pytest.raises(ConfigError, match=match):
        SearchConfig.from_dict(data)


def test_unknown_key_lists_the_known_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'lamda_time' \(value 2\); known keys: seed, dataset"):
        SearchConfig.from_dict({"lamda_time": 2})


def test_coercion_of_untyped_values():
    c = SearchConfig.from_dict({"layers": "4", "lambda_time": "1e-3", "augment": "off", "fast": 0,
                                "max_epochs": 3.0, "representatives": "avg_pool_3x3, sep_conv_5x5",
                                "max_skip_per_cell": -1, "profile": "eyeriss"})
    assert (c.layers, c.lambda_time, c.augment, c.fast, c.max_epochs) == (4, 0.001, False, False, 3)
    assert c.representatives == ("avg_pool_3x3", "sep_conv_5x5") and c.max_skip_per_cell == -1
    # direct construction goes through the same coercion: types are exact whatever the caller passed
    d = SearchConfig(lambda_time=1, representatives=["avg_pool_3x3"])
    assert type(d.lambda_time) is float and d.representatives == ("avg_pool_3x3",)
    assert d.replace(momentum=0, weight_decay=0).momentum == 0.0


def test_parse_set_grammar():
    assert parse_set(["a=1", "b=[0, 0.5]", "c=eyeriss", "d=true", "groups=pool=max_pool_3x3", "e=", "a=2"]) == \
        {"a": 2, "b": [0, 0.5], "c": "eyeriss", "d": True, "groups": "pool=max_pool_3x3", "e": ""}
    for bad in ("lambda_time", "=3"):
        with pytest.raises(ConfigError, match="--set expects KEY=VALUE"):
            parse_set([bad])


def test_markdown_table_has_every_key():
    import dataclasses

    from searchspace.schema import markdown_table

    table = markdown_table(SearchConfig)
    for f in dataclasses.fields(SearchConfig):
        assert f"| `{f.name}` |" in table
    assert "| `max_skip_per_cell` | `2` | >= 0, or -1 for no cap |" in table
    assert "| `dataset` | `fashion` | fashion / cifar10 / synthetic |" in table
