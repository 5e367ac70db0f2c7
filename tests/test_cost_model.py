"""The analytic DRAM model: physics properties over the whole registry, hand-computed golden values per
profile, profiles (built-in and user files), bad input, and the network-level tables. No Ray."""
from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from cost_models import (CostQuery, CostQueryError, list_profiles, load_profile, local_query_fn, op_cost,
                         search_cost_table)
from searchspace.config import SearchConfig
from searchspace.genotype import CellGenotype, Genotype, cell_edges
from searchspace.layout import network_spec, plan_cells
from searchspace.ops import CANDIDATES, OPS

from cost_helpers import config_network_cost, profile_variant

PROFILES = ("mobile-npu", "edge-gpu", "h100", "eyeriss", "h100-eager")
FUSED = tuple(p for p in PROFILES if load_profile(p).fused)


def _stride(op: str) -> int:
    return 2 if op == "factorized_reduce" else 1


def _cost(profile, op, c, h, w, batch=1, stride=None):
    return op_cost(profile, op, c, h, w, stride or _stride(op), batch, 10 if op == "classifier" else None)


# ------------------------------------------------------------------ properties, over the registry
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("op", list(OPS))
def test_never_below_compulsory_and_monotone(profile, op):
    p = load_profile(profile)
    strides = (2,) if op == "factorized_reduce" else (1,) if op == "classifier" else (1, 2)
    for s, c, h, b in itertools.product(strides, (4, 24, 96), (4, 16, 64), (1, 3)):
        base = _cost(p, op, c, h, h, b, s)
        assert base.dram_bytes >= base.compulsory_bytes
        assert base.dram_bytes == base.dram_read_bytes + base.dram_write_bytes
        for bigger in (dict(c=2 * c), dict(h=2 * h), dict(w=2 * h), dict(b=2 * b)):
            args = dict(c=c, h=h, w=h, b=b) | bigger
            more = _cost(p, op, args["c"], args["h"], args["w"], args["b"], s)
            assert more.dram_bytes >= base.dram_bytes, (bigger, base, more)
            assert more.dram_time_us >= base.dram_time_us - 1e-12
            assert more.dram_energy_uj >= base.dram_energy_uj - 1e-12


@pytest.mark.parametrize("profile", FUSED)
@pytest.mark.parametrize("op", list(OPS))
def test_equal_to_compulsory_when_everything_fits(profile, op):
    c = _cost(profile, op, 8, 8, 8)  # < 8 KiB of tensors and weights: fits every buffer
    assert c.dram_bytes == c.compulsory_bytes and c.spilled_intermediates == 0


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("family", ["sep_conv", "dil_conv"])
def test_5x5_never_cheaper_than_3x3(profile, family):
    for s, c, h, b in itertools.product((1, 2), (8, 64, 256), (8, 32, 64), (1, 4)):
        small = _cost(profile, f"{family}_3x3", c, h, h, b, s)
        large = _cost(profile, f"{family}_5x5", c, h, h, b, s)
        assert large.dram_bytes >= small.dram_bytes and large.dram_energy_uj >= small.dram_energy_uj


@pytest.mark.parametrize("profile", PROFILES)
def test_skip_connect_at_stride_1_runs_no_kernel(profile):
    # as an operator, an identity moves nothing; its node's sum reads it (tests/test_cost_accounting.py)
    c = _cost(profile, "skip_connect", 64, 32, 32, 8)
    assert (c.dram_bytes, c.compulsory_bytes, c.dram_latencies, c.dram_time_us) == (0, 0, 0, 0.0)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("op", list(OPS))
def test_latency_paid_once_per_kernel(profile, op):
    """Fused: one kernel (untiled, nothing spilled); unfused: one per primitive that is a kernel."""
    c = _cost(profile, op, 8, 8, 8)  # small: no tiling, no spill on a fused profile
    p = load_profile(profile)
    if c.dram_bytes == 0:
        assert c.dram_latencies == 0
    elif p.fused:
        assert c.dram_latencies == 1 < c.dram_transfers
    else:
        assert c.dram_latencies >= 1
    assert c.dram_time_us == pytest.approx(c.dram_bytes / p.dram_bytes_per_us + c.dram_latencies * p.dram_latency_ns / 1e3)


def test_eager_costs_more_than_fused():
    for op in ("sep_conv_3x3", "dil_conv_5x5", "factorized_reduce"):
        assert _cost("h100-eager", op, 32, 16, 16).dram_bytes > 2 * _cost("h100", op, 32, 16, 16).dram_bytes
    # a deployed pool is one kernel either way: fp32 moves exactly twice bf16's bytes
    assert _cost("h100-eager", "max_pool_3x3", 32, 16, 16).dram_bytes == 2 * _cost("h100", "max_pool_3x3", 32, 16, 16).dram_bytes


# ------------------------------------------------------------------ golden values (hand arithmetic)
def test_golden_mobile_npu_sep_conv_fits():
    c = op_cost("mobile-npu", "sep_conv_3x3", 16, 32, 32)  # int8, 1 MiB: all on chip
    # weights, 32 B bursts: dw 16*9=144 -> 160; pw 16*16 + 16 bias = 272 -> 288; twice: 896
    assert c.dram_read_bytes == 16 * 32 * 32 + 896 == 17280
    assert c.dram_write_bytes == 16384 and c.compulsory_bytes == 33664
    # streams: input, 4 weight tensors, output = 6, in flight together: one kernel, one 100 ns latency;
    # 51.2 GB/s = 51200 B/us
    assert (c.dram_transfers, c.dram_latencies) == (6, 1)
    assert c.dram_time_us == pytest.approx(33664 / 51200 + 1 * 0.1)
    assert c.dram_energy_uj == pytest.approx(33664 * 32e-6)  # 32 pJ/B


def test_golden_edge_gpu_max_pool_stride2_batch4():
    c = op_cost("edge-gpu", "max_pool_3x3", 32, 16, 16, stride=2, batch=4)
    # deployed form, no BN: fp16 in 4*32*16*16*2 = 65536, out 4*32*8*8*2 = 16384; one kernel, 200 ns
    assert (c.dram_read_bytes, c.dram_write_bytes, c.dram_latencies) == (65536, 16384, 1)
    assert c.dram_time_us == pytest.approx(81920 / 204800 + 1 * 0.2)
    assert c.dram_energy_uj == pytest.approx(81920 * 32e-6)


def test_golden_h100_factorized_reduce_one_kernel():
    c = op_cost("h100", "factorized_reduce", 16, 32, 32, stride=2, c_out=32)
    # bf16: in 16*32*32*2 = 32768; two 1x1 convs 2*16*16 + 32 bias = 544 el = 1088 B; out 32*16*16*2 = 16384
    assert (c.dram_read_bytes, c.dram_write_bytes, c.dram_transfers, c.dram_latencies) == (32768 + 1088, 16384, 3, 1)
    assert c.dram_time_us == pytest.approx(50240 / 3.35e6 + 1 * 0.5)  # 3.35 TB/s = 3.35e6 B/us, 500 ns
    assert c.dram_energy_uj == pytest.approx(50240 * 31.2e-6)


def test_golden_h100_sep_conv_one_latency():
    c = op_cost("h100", "sep_conv_3x3", 16, 28, 28)
    # bf16: in = out = 16*28*28*2 = 25088; weights 2 x (dw 144 -> 288 B, pw 256 + 16 bias -> 544 B) = 1664
    assert c.dram_bytes == 2 * 25088 + 1664 == 51840
    # 6 streams in flight together: one 500 ns latency (was 6 x 500 ns = 3.02 us)
    assert c.dram_time_us == pytest.approx(51840 / 3.35e6 + 0.5)
    assert c.dram_energy_uj == pytest.approx(51840 * 31.2e-6)


def test_golden_h100_eager_relu_conv_bn():
    c = op_cost("h100-eager", "relu_conv_bn_1x1", 16, 32, 32)
    # fp32, 3 kernels each read + write 16*32*32*4 = 65536; conv weights 16*16*4 = 1024; BN 4*16*4 = 256
    assert c.dram_read_bytes == 3 * 65536 + 1024 + 256 == 197888
    assert c.dram_write_bytes == 3 * 65536 and c.compulsory_bytes == 65536 + 1024 + 256 + 65536
    assert c.dram_latencies == 3  # ReLU, conv, BN kernels (8 streams)
    assert c.dram_time_us == pytest.approx(394496 / 3.35e6 + 3 * 0.5)
    assert c.dram_energy_uj == pytest.approx(394496 * 31.2e-6)


def test_golden_eyeriss_tiled_conv_rereads():
    c = op_cost("eyeriss", "relu_conv_bn_1x1", 256, 16, 16)
    # 16-bit: in 131072, weights 256*256*2 + 512 bias = 131584, out 131072 > 108 KB (110592): tiled. The
    # stationary operand takes 1/2, 3/4 or 7/8 of the buffer (55296, 82944, 96768); the cheapest plan is
    # order A at 7/8: 2 weight chunks, input streamed 2x: 131584 + 2*131072 = 393728 (order B at 7/8:
    # 2 input bands, weights read 2x: 131072 + 2*131584 = 394240; at 1/2 order A paid 524800)
    assert (c.dram_read_bytes, c.dram_write_bytes) == (393728, 131072)
    assert c.compulsory_bytes == 131072 + 131584 + 131072
    # 0.48 GB/s = 480 B/us; one kernel in 2 weight-chunk waves, none prefetched: 2 latencies of 100 ns
    # (5 streams: 2 x (input + chunk) + output)
    assert (c.dram_transfers, c.dram_latencies) == (5, 2)
    assert c.dram_time_us == pytest.approx(524800 / 480 + 2 * 0.1)
    assert c.dram_energy_uj == pytest.approx(524800 * 160e-6)  # 640 pJ per 32-bit word


def test_golden_eyeriss_sep_conv_spills():
    c = op_cost("eyeriss", "sep_conv_3x3", 64, 32, 32)
    # every intermediate is 64*32*32*2 = 131072 B > 108 KB: all three spill (write + read)
    # reads: 2 x (131072 + dw 64*9*2 = 1152) + 2 x (131072 + pw 64*64*2 + 128 bias = 8320)
    assert c.spilled_intermediates == 3 and c.dram_read_bytes == 2 * 132224 + 2 * 139392
    assert c.dram_write_bytes == 4 * 131072 and c.compulsory_bytes == 131072 + 2 * 1152 + 2 * 8320 + 131072
    assert c.dram_energy_uj == pytest.approx(1067520 * 160e-6)
    # each stage after a spill waits for it: 4 kernels; dw stages stream per group, pw weights fit a half
    # (8320 <= 55296 B): one wave each
    assert c.dram_latencies == 4 and c.dram_time_us == pytest.approx(1067520 / 480 + 4 * 0.1)


# ------------------------------------------------------------------ profiles and bad input
def test_builtin_profiles_load():
    assert set(PROFILES) <= {p.name for p in list_profiles()}
    assert load_profile("eyeriss").dram_read_pj_per_byte == pytest.approx(640 / 4)
    assert load_profile("h100-eager").fused is False and load_profile("h100-eager").bytes_per_element == 4
    with pytest.raises(ValueError, match="known profiles: .*mobile-npu"):
        load_profile("tpu-v9")


def test_user_profile_file_with_static_power(tmp_path):
    with open(load_profile("mobile-npu").source) as fh:
        text = fh.read()
    path = tmp_path / "my-npu.toml"
    path.write_text(text.replace('name = "mobile-npu"', 'name = "my-npu"').replace("static_power_w = 0.0",
                                                                                  "static_power_w = 0.5"))
    mine, ref = op_cost(str(path), "sep_conv_3x3", 16, 32, 32), op_cost("mobile-npu", "sep_conv_3x3", 16, 32, 32)
    assert mine.profile == "my-npu" and mine.dram_bytes == ref.dram_bytes
    assert mine.dram_energy_uj == pytest.approx(ref.dram_energy_uj + 0.5 * ref.dram_time_us)  # W x us = uJ
    path.write_text(text.replace("dram_bandwidth_gbps = 51.2", "dram_bandwidth_gbps = -1"))
    with pytest.raises(CostQueryError, match="dram_bandwidth_gbps"):
        load_profile(str(path))
    path.write_text(text + "\ncolour = 3\n")
    with pytest.raises(CostQueryError, match="unknown field"):
        load_profile(str(path))


@pytest.mark.parametrize("args, word", [
    (("h100", "conv_7x7", 8, 8, 8), "unknown operator"),
    (("nope", "sep_conv_3x3", 8, 8, 8), "unknown profile"),
    (("h100", "sep_conv_3x3", 0, 8, 8), "positive integer"),
    (("h100", "sep_conv_3x3", 8, -8, 8), "positive integer"),
    (("h100", "sep_conv_3x3", 8, 8, 8.0), "positive integer"),
    (("h100", "sep_conv_3x3", 8, 8, 8, 3), "stride"),
    (("h100", "factorized_reduce", 8, 7, 8, 2), "even"),
    (("h100", "skip_connect", 8, 8, 9, 2), "even"),
    (("h100", "factorized_reduce", 8, 8, 8, 1), "stride 2"),
    (("h100", "sep_conv_3x3", 8, 8, 8, 1, True), "positive integer"),
])
def test_bad_input_raises_cost_query_error(args, word):
    with pytest.raises(CostQueryError, match=word):
        op_cost(*args)


# ------------------------------------------------------------------ network level
def _genotype(config: SearchConfig) -> Genotype:
    plans = plan_cells(network_spec(config))
    edges = (("sep_conv_3x3", 0, 2), ("skip_connect", 1, 2), ("dil_conv_5x5", 0, 3), ("max_pool_3x3", 2, 3),
             ("sep_conv_5x5", 1, 4), ("skip_connect", 2, 4), ("avg_pool_3x3", 3, 5), ("dil_conv_3x3", 4, 5))
    return Genotype(tuple(CellGenotype(p.reduction, edges) for p in plans))


def test_network_cost_sums_its_rows_with_one_batched_query():
    config = SearchConfig(layers=3, channels=4, profile="eyeriss", cost_batch=2)
    calls = []
    net = config_network_cost(_genotype(config), config, lambda qs: calls.append(len(qs)) or local_query_fn(qs))
    assert len(calls) == 1
    assert net.dram_bytes == sum(r["dram_bytes"] for r in net.rows) == net.dram_read_bytes + net.dram_write_bytes
    assert net.dram_energy_uj == pytest.approx(sum(r["dram_energy_uj"] for r in net.rows))
    roles = [r["role"] for r in net.rows]
    assert roles[0] == "stem" and roles[-1] == "classifier"
    assert roles.count("node_sum") == 3 * 4 and roles.count("cell_concat") == 3
    assert net.dram_bytes >= net.compulsory_bytes
    wider = config_network_cost(_genotype(config), config, channels=8)
    assert wider.dram_bytes > net.dram_bytes


def test_edge_cost_table_shape_order_and_single_query(tmp_path):
    npu = profile_variant(tmp_path, "mobile-npu", "npu-round-trip", between_kernels="round-trip")
    config = SearchConfig(layers=3, channels=4, profile=npu)
    calls = []
    table = search_cost_table(config, lambda qs: calls.append(len(qs)) or local_query_fn(qs))
    assert len(calls) == 1 and table.candidates == CANDIDATES
    assert table.time_us.shape == table.energy_uj.shape == (3, 14, len(CANDIDATES))
    assert table.time_us.dtype == np.float64
    skip = CANDIDATES.index("skip_connect")
    # normal cell 0 (c=4, 32x32): a stride-1 skip pays its node's read of its source, int8: 4096 B at 32 pJ/B
    assert np.all(table.dram_bytes[0, :, skip] == 4096)
    assert np.allclose(table.energy_uj[0, :, skip], 4096 * 32e-6)
    from_inputs = np.array([src < 2 for src, _dst in cell_edges(4)])  # reduction cell: factorized reduce there
    assert table.time_us[1, from_inputs, skip].min() > table.time_us[1, ~from_inputs, skip].max()
    # fused: an operator's share is its cost less its output write (the node's) and its kernel's latency
    q = CostQuery(npu, "sep_conv_5x5", 8, 8, 32, 32, 2, 1)  # cell 1 is a reduction: c=8, 32x32, stride 2
    op = local_query_fn([q])[0]
    k = (1, 0, CANDIDATES.index("sep_conv_5x5"))
    assert table.dram_bytes[k] == op.dram_bytes - 8 * 16 * 16
    assert table.time_us[k] == pytest.approx(op.dram_time_us - 8 * 16 * 16 / 51200 - 0.1)
    assert table.fixed_dram_bytes > 0 and table.fixed_time_us > 0 and table.fixed_energy_uj > 0
    # resident (mobile-npu as shipped): everything fits, so the same entry is the operator's weights only
    resident = search_cost_table(config.replace(profile="mobile-npu"))
    assert resident.dram_bytes[k] == op.compulsory_bytes - 8 * 32 * 32 - 8 * 16 * 16
    assert np.all(resident.dram_bytes[0, :, skip] == 0)


def _relative(config: SearchConfig) -> dict[str, float]:
    """Each candidate's table energy over the whole network, relative to sep_conv_3x3's."""
    energy = search_cost_table(config).energy_uj.sum(axis=(0, 1))
    return {op: energy[i] / energy[CANDIDATES.index("sep_conv_3x3")] for i, op in enumerate(CANDIDATES)}


def test_the_ranking_follows_the_deployed_geometry():
    """Round-trip (eyeriss): at the fashion proxy (C=6, 3 cells, 32x32) every candidate pays about a
    sep_conv's round trip; on the network the user ships (C=36, 20 cells) weights and spills separate them,
    and the loss's table says so (issue 16). Resident (mobile-npu): where tensors stay on chip an operator
    pays its weights only, so pools cost nothing and the convolutions their weights, at any geometry
    that fits; at batch 32 the activations spill and the ranking is the round trip's again (issue 22)."""
    from searchspace.config import preset

    fashion = {**preset("fashion"), "deploy_layers": 0, "deploy_channels": 0}  # the proxy itself
    deployed = dict(deploy_layers=20, deploy_channels=36, deploy_image_size=32)
    proxy = _relative(SearchConfig.from_dict({**fashion, "profile": "eyeriss"}))
    assert all(0.85 <= proxy[op] <= 1.1 for op in CANDIDATES)
    for geometry in ({}, deployed):
        npu = _relative(SearchConfig.from_dict({**fashion, "profile": "mobile-npu", **geometry}))
        assert npu["max_pool_3x3"] == npu["avg_pool_3x3"] == 0 and npu["skip_connect"] < 0.2
        assert npu["dil_conv_3x3"] < npu["dil_conv_5x5"] < 1 < npu["sep_conv_5x5"]
    eyeriss = _relative(SearchConfig.from_dict({**fashion, "profile": "eyeriss", **deployed}))
    assert eyeriss["max_pool_3x3"] < 0.5 and eyeriss["dil_conv_3x3"] < 0.6 < eyeriss["sep_conv_5x5"]
    npu32 = _relative(SearchConfig.from_dict({**fashion, "profile": "mobile-npu", "cost_batch": 32, **deployed}))
    assert npu32["avg_pool_3x3"] < 0.3 and npu32["dil_conv_5x5"] < 0.5


def test_importing_cost_models_does_not_import_ray():
    code = "import sys, cost_models, hwnas.cli.cost, cost_models.network; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
