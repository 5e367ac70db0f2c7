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


# ------------------------------------------------------------------ the deployed geometry (issue 16 item 3)
@pytest.mark.parametrize("data, match", [
    ({"deploy_layers": -1}, "'deploy_layers' = -1: must be >= 0"),
    ({"deploy_layers": 1}, r"config keys deploy_layers=1, layers=5: the deployed network \(1 cells.*reduction "
                           r"counts differ"),
    ({"deploy_image_size": 30}, r"config keys deploy_image_size=30, layers=5:.*30x30.*cell 3 is a reduction cell "
                                r"but its input is 15x15 \(odd\)"),
    ({"dataset": "synthetic", "deploy_image_size": 6}, r"deploy_image_size=6.*input is 3x3"),
    ({"layers": 2, "deploy_layers": 8}, r"deploy_layers=8, layers=2:.*no normal cell"),
    ({"eval_layers": 1}, r"config keys eval_layers=1, layers=5: "),  # refused as the evaluation network
    ({"eval_layers": 8, "deploy_image_size": 18}, r"config keys deploy_image_size=18, eval_layers=8, layers=5: the "
                                                  r"deployed network \(8 cells, 8 channels, 18x18\)"),
])
def test_a_deployed_network_the_layout_cannot_build_is_refused(data, match):
    with pytest.raises(ConfigError, match=match) as info:
        SearchConfig.from_dict(data)
    assert "\n" not in str(info.value)


def test_deployed_geometry_resolves_zero_to_eval_then_search():
    from searchspace.layout import DEPLOYMENT, EVALUATION, network_spec

    def deploy_geometry(config):
        spec = network_spec(config, DEPLOYMENT)
        return spec.layers, spec.channels, spec.image_size

    def eval_geometry(config):
        spec = network_spec(config, EVALUATION)
        return spec.layers, spec.channels, spec.image_size

    c = SearchConfig(layers=5, channels=6)
    assert deploy_geometry(c) == eval_geometry(c) == (5, 6, 32)
    c = SearchConfig(layers=5, channels=6, eval_layers=8, eval_channels=16, dataset="synthetic")
    assert deploy_geometry(c) == (8, 16, 16)
    c = c.replace(deploy_layers=20, deploy_image_size=64)
    assert deploy_geometry(c) == (20, 16, 64) and eval_geometry(c) == (8, 16, 16)
    # a 3-cell search (fashion preset) deploys to DARTS's 20 cells: its normal cell repeats after the reductions
    assert deploy_geometry(SearchConfig.from_dict({**preset("fashion"), "deploy_layers": 20,
                                                   "deploy_channels": 36})) == (20, 36, 32)


def test_cell_sources_maps_each_deployed_cell_to_a_searched_cell_of_its_kind():
    from searchspace.genotype import CellGenotype, Genotype
    from searchspace.layout import cell_sources, expand_genotype, reduction_cells

    flags = lambda n: [i in reduction_cells(n) for i in range(n)]  # noqa: E731
    assert cell_sources(flags(8), 8) == tuple(range(8))
    assert cell_sources(flags(5), 20) == (0,) * 6 + (1,) + (2,) * 6 + (3,) + (4,) * 6
    assert cell_sources(flags(3), 8) == (0, 0, 1, 0, 0, 2, 0, 0)  # no searched normal cell after the reductions
    assert cell_sources(flags(8), 5) == (0, 2, 3, 5, 6)
    for search, deploy in ((5, 20), (3, 8), (8, 5), (8, 20)):
        sources = cell_sources(flags(search), deploy)
        assert [flags(search)[s] for s in sources] == flags(deploy)  # same kind, same order of segments
        genotype = Genotype(tuple(CellGenotype(r, (("skip_connect", 0, 2), (f"op{i}", 1, 2)))
                                  for i, r in enumerate(flags(search))))
        assert expand_genotype(genotype, deploy).cells == tuple(genotype.cells[s] for s in sources)
    with pytest.raises(ValueError, match="reduction counts differ"):
        cell_sources(flags(5), 1)
