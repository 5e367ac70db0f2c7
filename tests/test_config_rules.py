"""Configs that cannot work are refused before any work (issue 16 item 6): one line naming the keys."""
import pytest

from searchspace.config import ConfigError, SearchConfig


@pytest.mark.parametrize("values, keys", [
    (dict(warmup_epochs=4, max_epochs=4), ("'warmup_epochs' = 4", "'max_epochs' = 4")),
    (dict(warmup_epochs=9, max_epochs=3), ("'warmup_epochs' = 9", "'max_epochs' = 3")),
    (dict(patience=5, max_epochs=4), ("'patience' = 5", "'max_epochs' = 4")),
    (dict(layers=3, eval_layers=1), ("eval_layers=1", "layers=3")),
    (dict(layers=2, eval_layers=1, eval_channels=4), ("eval_layers=1", "eval_channels=4", "layers=2")),
])
def test_unworkable_configs_are_refused_naming_the_keys(values, keys):
    with pytest.raises(ConfigError) as info:
        SearchConfig.from_dict(values)
    msg = str(info.value)
    assert "\n" not in msg and all(k in msg for k in keys), msg


@pytest.mark.parametrize("values", [
    dict(warmup_epochs=3, max_epochs=4), dict(patience=4, max_epochs=4), dict(layers=3, eval_layers=8),
    dict(layers=5, eval_layers=20, eval_channels=36),
])
def test_the_edges_of_what_works_are_accepted(values):
    SearchConfig.from_dict(values)


def test_every_preset_passes():
    from searchspace.config import PRESETS

    for name, values in PRESETS.items():
        SearchConfig.from_dict(values)


@pytest.mark.parametrize("key, value", [("derive_rank", "best"), ("stage2_start", "fresh")])
def test_new_choice_keys_list_their_choices(key, value):
    with pytest.raises(ConfigError, match=key):
        SearchConfig.from_dict({key: value})
