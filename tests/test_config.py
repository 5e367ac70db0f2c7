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
