"""Tensors between kernels (issue 22): the resident rule's physics on whole networks, the schedule's rules
on hand-built kernels, the profile key, and ONNX graphs. No Ray, no torch."""
from __future__ import annotations

import random

import pytest

from cost_models import CostQueryError, derived_network_cost, load_profile
from cost_models.accounting import Term
from cost_models.residency import Kernel, schedule
from searchspace.config import SearchConfig
from searchspace.genotype import random_genotype
from searchspace.layout import reduction_cells
from searchspace.ops import CANDIDATES

from cost_helpers import profile_variant

RESIDENT = ("mobile-npu", "edge-gpu", "h100")
DEPLOYED = dict(layers=5, channels=6, deploy_layers=20, deploy_channels=36)


def _genotypes(config: SearchConfig, n: int = 3):
    reds = [i in reduction_cells(config.layers) for i in range(config.layers)]
    return [random_genotype(reds, config.nodes, random.Random(s), CANDIDATES) for s in range(n)]


def _weights_in_out(net) -> int:
    """The network's compulsory traffic under any rule: its input read, every weight read, its output written
    once (the resident rule's compulsory bytes are exactly these)."""
    return sum(r["compulsory_bytes"] for r in net.rows)


def test_the_shipped_profiles_say_which_rule_they_follow():
    assert {p: load_profile(p).between_kernels for p in ("mobile-npu", "edge-gpu", "h100", "eyeriss",
                                                           "h100-eager")} == {
        "mobile-npu": "resident", "edge-gpu": "resident", "h100": "resident", "eyeriss": "round-trip",
        "h100-eager": "round-trip"}
    for name in ("mobile-npu", "eyeriss", "h100-eager"):  # each states why, in its file
        assert "Between kernels:" in open(load_profile(name).source).read()


@pytest.mark.parametrize("profile", RESIDENT)
@pytest.mark.parametrize("batch", [1, 8, 32])
def test_never_below_compulsory_never_above_round_trip(profile, batch, tmp_path):
    round_trip = profile_variant(tmp_path, profile, "rt", between_kernels="round-trip")
    config = SearchConfig(profile=profile, cost_batch=batch, **DEPLOYED)
    for genotype in _genotypes(config):
        net = derived_network_cost(genotype, config)
        rt = derived_network_cost(genotype, config.replace(profile=round_trip))
        weights = sum(r["compulsory_bytes"] for r in net.rows)
        assert weights <= net.dram_bytes <= rt.dram_bytes
        assert net.dram_latencies == rt.dram_latencies  # one per kernel under both rules
        assert net.dram_energy_uj <= rt.dram_energy_uj + 1e-9


def test_where_everything_fits_the_network_moves_input_weights_and_output_only():
    config = SearchConfig(profile="mobile-npu", **DEPLOYED)  # 20 x 36 at batch 1: 36,864 B per cell tensor
    for genotype in _genotypes(config):
        net = derived_network_cost(genotype, config)
        assert net.dram_bytes == net.compulsory_bytes == _weights_in_out(net)
        assert all(r["spilled_bytes"] == 0 for r in net.rows)
        (stem,) = [r for r in net.rows if r["role"] == "stem"]
        assert stem["dram_read_bytes"] >= 32 * 32  # the image, read once
        (cls,) = [r for r in net.rows if r["role"] == "classifier"]
        assert cls["dram_write_bytes"] == 32  # ten int8 logits, one burst
        assert sum(r["onchip_bytes"] for r in net.rows) > 0


def test_never_more_for_a_larger_buffer(tmp_path):
    config = SearchConfig(layers=5, channels=6, deploy_layers=8, deploy_channels=16, cost_batch=4)
    buffers = [2 ** k for k in range(13, 23)] + [3 * 2 ** k for k in range(13, 21)]
    paths = {b: profile_variant(tmp_path, "mobile-npu", f"npu-{b}", onchip_buffer_bytes=b) for b in buffers}
    for genotype in _genotypes(config, 2):
        costs = [derived_network_cost(genotype, config.replace(profile=paths[b])).dram_bytes for b in sorted(buffers)]
        assert costs == sorted(costs, reverse=True), costs
        assert costs[0] > costs[-1]  # and the range is real: from spilling everything to keeping everything


def test_equal_to_round_trip_when_no_tensor_fits_beside_another(tmp_path):
    """12,000 B: no two of the 20 x 36 network's activation tensors (the smallest are 9,216 B) fit together
    with a kernel's working set, so every tensor makes the round trip, exactly as under that rule."""
    resident = profile_variant(tmp_path, "mobile-npu", "npu-small", onchip_buffer_bytes=12000)
    round_trip = profile_variant(tmp_path, "mobile-npu", "npu-small-rt", onchip_buffer_bytes=12000,
                                 between_kernels="round-trip")
    config = SearchConfig(**DEPLOYED)
    for genotype in _genotypes(config):
        a = derived_network_cost(genotype, config.replace(profile=resident))
        b = derived_network_cost(genotype, config.replace(profile=round_trip))
        assert (a.dram_read_bytes, a.dram_write_bytes, a.dram_latencies) == \
            (b.dram_read_bytes, b.dram_write_bytes, b.dram_latencies)
        assert a.dram_energy_uj == pytest.approx(b.dram_energy_uj, rel=1e-12)


def test_spills_show_in_the_rows():
    """At batch 8 a 20 x 36 network's cell tensors (295 KB at 32x32) no longer all fit in 1 MiB."""
    config = SearchConfig(profile="mobile-npu", cost_batch=8, **DEPLOYED)
    net = derived_network_cost(_genotypes(config, 1)[0], config)
    assert sum(r["spilled_bytes"] for r in net.rows) > 0 and sum(r["onchip_bytes"] for r in net.rows) > 0
    assert net.dram_bytes > _weights_in_out(net)


# ------------------------------------------------------------------ the schedule's rules, by hand
SIZES = {"x": 100, "a": 100, "b": 100, "c": 100, "y": 10}


def _run(kernels, buffer, **kw):
    return schedule(kernels, SIZES, buffer, resident=True, inputs=("x",), outputs=("y",), **kw)


def test_farthest_next_read_spills_first():
    # a is read at kernel 3, b at kernel 2: when c arrives (kernel 2 needs room) a spills, not b
    ks = [Kernel(("x",), "a"), Kernel((), "b"), Kernel(("b",), "c"), Kernel(("a", "c"), "y")]
    t = _run(ks, buffer=250)
    assert t[2].evicted == ("a",) and t[2].term.dram_write_bytes == 100
    assert t[3].from_dram == (True, False) and t[3].term.dram_read_bytes == 100
    # a larger buffer keeps everything: x read from DRAM once (kept after its first read), y written
    big = _run(ks, buffer=10_000)
    assert sum(k.term.dram_bytes for k in big) == 100 + 10 and all(not k.evicted for k in big)


def test_a_clean_copy_is_dropped_for_free_and_an_own_input_spills_last():
    ks = [Kernel(("x",), "a"), Kernel(("x", "a"), "b", scratch_bytes=50), Kernel(("b",), "y")]
    t = _run(ks, buffer=250)
    # kernel 1: x (clean, in DRAM already) and a (dirty) on chip + b + 50 > 250: x is read again from DRAM,
    # dropping its copy costs nothing
    assert t[1].term.dram_write_bytes == 0 and t[1].from_dram == (True, False)
    # an input that must leave is written and read back: the round trip its producer would have paid
    tight = _run([Kernel(("x",), "a"), Kernel(("a",), "b", scratch_bytes=60)], buffer=150)
    assert tight[1].evicted == ("a",) and tight[1].term.dram_bytes == 200


def test_a_tensor_read_twice_by_one_kernel_comes_from_dram_once():
    t = schedule([Kernel(("x", "x"), "y")], SIZES, 1000, resident=True, inputs=("x",), outputs=("y",))
    assert t[0].from_dram == (True, False) and t[0].term.dram_read_bytes == 100
    rt = schedule([Kernel(("x", "x"), "y")], SIZES, 1000, resident=False, inputs=("x",), outputs=("y",))
    assert rt[0].term.dram_read_bytes == 200 and rt[0].term.compulsory_bytes == 210


def test_reading_a_tensor_nobody_wrote_is_an_error():
    with pytest.raises(ValueError, match="kernel 0 reads a"):
        _run([Kernel(("a",), "y")], buffer=1000)


def test_internal_traffic_and_latency_are_the_kernels_own():
    k = Kernel(("x",), "y", internal=Term(dram_read_bytes=7, dram_latencies=2, compulsory_bytes=7))
    (t,) = _run([k], buffer=1000)
    assert (t.term.dram_read_bytes, t.term.dram_write_bytes, t.term.dram_latencies) == (107, 10, 3)


# ------------------------------------------------------------------ the profile key
@pytest.mark.parametrize("value, match", [("cached", "must be one of 'round-trip', 'resident'"),
                                          (True, "must be one of")])
def test_a_bad_rule_is_refused_naming_the_field(tmp_path, value, match):
    path = profile_variant(tmp_path, "mobile-npu", "bad", between_kernels=value)
    with pytest.raises(CostQueryError, match=f"between_kernels.*{match}"):
        load_profile(path)


def test_resident_needs_a_fused_profile(tmp_path):
    path = profile_variant(tmp_path, "h100-eager", "eager-resident", between_kernels="resident")
    with pytest.raises(CostQueryError, match="needs fused = true"):
        load_profile(path)


def test_a_profile_without_the_key_keeps_round_trips(tmp_path):
    text = open(load_profile("mobile-npu").source).read()
    path = tmp_path / "old.toml"
    path.write_text("\n".join(line for line in text.splitlines() if not line.startswith("between_kernels")))
    assert load_profile(str(path)).between_kernels == "round-trip"
    assert load_profile(str(path)).summary()["between_kernels"] == "round-trip"
