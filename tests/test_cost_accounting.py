"""Nothing is free: node sums and cell concats are charged, and the loss's table and the network cost
are one accounting (cost_models.accounting). No Ray, no torch."""
from __future__ import annotations

import random

import numpy as np
import pytest

from cost_models import derived_network_cost, load_profile, network_cost, op_cost, search_cost_table
from searchspace.config import SearchConfig
from searchspace.genotype import CellGenotype, Genotype, cell_edges
from searchspace.layout import (DEPLOYMENT, cell_sources, expand_genotype, network_instances, network_macs, network_spec,
                                plan_cells)
from searchspace.ops import CANDIDATES

from cost_helpers import config_network_cost, profile_variant

PROFILES = ("mobile-npu", "edge-gpu", "h100", "eyeriss", "h100-eager")
RESIDENT = tuple(p for p in PROFILES if load_profile(p).resident)
ROUND_TRIP = tuple(p for p in PROFILES if not load_profile(p).resident)


def _plans(config: SearchConfig):
    return plan_cells(network_spec(config))


def random_genotype(config: SearchConfig, seed: int) -> Genotype:
    """DARTS-style: per node two distinct inputs, any candidate on each."""
    rng = random.Random(seed)
    cells = []
    for plan in _plans(config):
        edges = [(rng.choice(CANDIDATES), src, dst) for dst in range(2, config.nodes + 2)
                 for src in sorted(rng.sample(range(dst), 2))]
        cells.append(CellGenotype(plan.reduction, tuple(edges)))
    return Genotype(tuple(cells))


def uniform_genotype(config: SearchConfig, op: str, inputs=lambda dst: (dst - 2, dst - 1)) -> Genotype:
    return Genotype(tuple(CellGenotype(p.reduction, tuple((op, s, d) for d in range(2, config.nodes + 2)
                                                          for s in inputs(d))) for p in _plans(config)))


# ------------------------------------------------------------------ one accounting
@pytest.mark.parametrize("profile", PROFILES)
def test_table_entries_plus_fixed_terms_equal_network_cost(profile):
    config = SearchConfig(layers=5, channels=6, profile=profile, cost_batch=2)
    table = search_cost_table(config)
    index = {e: i for i, e in enumerate(cell_edges(config.nodes))}
    for seed in range(4):
        genotype = random_genotype(config, seed)
        net = config_network_cost(genotype, config)
        picks = [(c, index[(s, d)], CANDIDATES.index(op)) for c, cg in enumerate(genotype.cells) for op, s, d in cg.edges]
        time_us = table.fixed_time_us + sum(table.time_us[k] for k in picks)
        energy_uj = table.fixed_energy_uj + sum(table.energy_uj[k] for k in picks)
        dram_bytes = table.fixed_dram_bytes + sum(int(table.dram_bytes[k]) for k in picks)
        assert time_us == pytest.approx(net.dram_time_us, rel=0.01)
        assert energy_uj == pytest.approx(net.dram_energy_uj, rel=0.01)
        assert dram_bytes == pytest.approx(net.dram_bytes, rel=0.01)
        # by construction it is exact, not only within 1 % (resident: everything fits here)
        assert dram_bytes == net.dram_bytes and time_us == pytest.approx(net.dram_time_us, rel=1e-9)
        assert table.genotype_cost(genotype, config.nodes) == pytest.approx((time_us, energy_uj, dram_bytes), rel=1e-12)


# searched geometry -> deployed geometry: deeper and wider (DARTS's 8 -> 20, C=36), from a 3-cell search (its
# normal cells after the reductions repeat the searched normal cell), shallower than the search (searched
# cells standing for no deployed cell), larger input and batch
DEPLOYED = [
    dict(layers=5, channels=6, deploy_layers=20, deploy_channels=36, deploy_image_size=32),
    dict(layers=3, channels=6, deploy_layers=8, deploy_channels=16, deploy_image_size=64, cost_batch=4),
    dict(layers=8, channels=4, eval_layers=5, eval_channels=12, cost_batch=2),
]


# (profile, geometry) where a resident profile's tensors spill: the table is an expectation there (module doc
# of cost_models.kernels), not exact; benchmarks/table_fidelity.py prints how far any per-edge table can get
SPILLING = {("mobile-npu", "3-to-8-at-64px"), ("edge-gpu", "3-to-8-at-64px")}


GEOMETRY_IDS = ["darts-20x36", "3-to-8-at-64px", "8-to-5-by-eval"]


@pytest.mark.parametrize("geometry", DEPLOYED, ids=GEOMETRY_IDS)
@pytest.mark.parametrize("profile", PROFILES)
def test_one_accounting_at_the_deployed_geometry(profile, geometry):
    """The table the loss weighs keeps the search's shape, but a searched genotype's entries + fixed terms
    are the cost of the network the user deploys: within 1 %, and in fact exactly, wherever nothing spills
    between kernels (round-trip profiles; resident ones where the live set fits). Where a resident profile
    spills, what spills depends on the whole genotype: the table is the mean over random wirings, unbiased
    for a random genotype and within 35 % of each one here (benchmarks/table_fidelity.py: no per-edge table
    does much better)."""
    spilling = (profile, GEOMETRY_IDS[DEPLOYED.index(geometry)]) in SPILLING
    config = SearchConfig(profile=profile, **geometry)
    geo = network_spec(config, DEPLOYMENT)
    table = search_cost_table(config)
    assert table.time_us.shape == (config.layers, len(cell_edges(config.nodes)), len(CANDIDATES))
    assert table.geometry == geo and sum(table.deployed_cells) == geo.layers
    sources = cell_sources([p.reduction for p in _plans(config)], geo.layers)
    assert table.deployed_cells == tuple(sources.count(i) for i in range(config.layers))
    unused = [i for i, n in enumerate(table.deployed_cells) if n == 0]
    # a used cell's edges all have a candidate that costs something (resident: pools may move nothing)
    assert np.all(table.dram_bytes[unused] == 0) and np.all(np.delete(table.dram_bytes, unused, axis=0).max(-1) > 0)
    for seed in range(3):
        genotype = random_genotype(config, seed)  # one cell per searched cell
        net = derived_network_cost(genotype, config)
        assert len({r["cell"] for r in net.rows if r["cell"] >= 0}) == geo.layers
        (stem,) = [r for r in net.rows if r["role"] == "stem"]
        assert (stem["h"], stem["c_out"]) == (geo.image_size, config.stem_multiplier * geo.channels)
        time_us, energy_uj, dram_bytes = table.genotype_cost(genotype, config.nodes)
        rel = 0.35 if spilling else 0.01
        assert time_us == pytest.approx(net.dram_time_us, rel=rel)
        assert energy_uj == pytest.approx(net.dram_energy_uj, rel=rel)
        if not spilling:
            assert dram_bytes == net.dram_bytes and time_us == pytest.approx(net.dram_time_us, rel=1e-9)
        else:
            assert dram_bytes == pytest.approx(net.dram_bytes, rel=rel) and any(r["spilled_bytes"] for r in net.rows)
        # the same network as the searched genotype expanded by hand and costed at the deployed size
        by_hand = network_cost(expand_genotype(genotype, geo.layers), geo, config.profile, config.cost_batch)
        assert by_hand.dram_bytes == net.dram_bytes


def test_deployed_geometry_defaults_to_the_evaluation_then_the_search_network():
    base = SearchConfig(layers=5, channels=6)
    default = search_cost_table(base)
    explicit = search_cost_table(base.replace(deploy_layers=5, deploy_channels=6, deploy_image_size=32))
    assert default.geometry == explicit.geometry and np.array_equal(default.dram_bytes, explicit.dram_bytes)
    assert default.fixed_dram_bytes == explicit.fixed_dram_bytes and default.deployed_cells == (1,) * 5
    via_eval = base.replace(eval_layers=8, eval_channels=16)
    assert network_spec(via_eval, DEPLOYMENT) == network_spec(via_eval.replace(deploy_layers=8, deploy_channels=16),
                                                             DEPLOYMENT)
    assert search_cost_table(via_eval).fixed_dram_bytes == search_cost_table(
        base.replace(deploy_layers=8, deploy_channels=16)).fixed_dram_bytes
    assert search_cost_table(via_eval.replace(deploy_layers=20)).geometry.layers == 20  # deploy_* wins over eval_*


@pytest.mark.parametrize("profile", ROUND_TRIP)
def test_no_candidate_is_free(profile):
    config = SearchConfig(layers=3, channels=6, profile=profile)
    table = search_cost_table(config)
    assert np.all(table.dram_bytes > 0) and np.all(table.energy_uj > 0) and np.all(table.time_us > 0)
    # a stride-1 skip pays at least the read of its source: normal cell 0, c=6, 32x32
    p = load_profile(profile)
    source = -(-6 * 32 * 32 * p.bytes_per_element // p.dram_burst_bytes) * p.dram_burst_bytes
    assert np.all(table.dram_bytes[0, :, skip_index()] >= source)


def skip_index() -> int:
    return CANDIDATES.index("skip_connect")


@pytest.mark.parametrize("profile", RESIDENT)
def test_resident_candidates_pay_their_weights_where_everything_fits(profile):
    """Where every tensor stays on chip, an edge's share is what its operator moves itself: its weights
    (and latencies of its own further kernels); a pool or an identity moves nothing, the node kernel's
    latency being a fixed term."""
    config = SearchConfig(layers=3, channels=6, profile=profile)
    table = search_cost_table(config)
    p = load_profile(profile)
    for k, op in enumerate(CANDIDATES):
        entry = table.dram_bytes[0, 0, k]  # normal cell 0, edge 0->2: c=6, 32x32, stride 1
        cost = op_cost(p, op, 6, 32, 32)
        assert entry == cost.compulsory_bytes - (2 * cost.dram_write_bytes if op != "skip_connect" else 0)
        if op in ("max_pool_3x3", "avg_pool_3x3", "skip_connect"):
            assert entry == 0 and table.time_us[0, 0, k] == 0
        else:
            assert entry > 0
    assert table.fixed_time_us > 0 and table.fixed_dram_bytes > 0


@pytest.mark.parametrize("profile", PROFILES)
def test_an_identity_cell_is_cheap_but_never_free(profile):
    """Round-trip: its node kernels read and write DRAM. Resident: its tensors stay on chip, yet its
    preprocessing reads weights and every node kernel pays its latency."""
    config = SearchConfig(layers=3, channels=6, profile=profile)
    net = config_network_cost(uniform_genotype(config, "skip_connect", lambda d: (0, 1)), config)
    cell0 = [r for r in net.rows if r["cell"] == 0]
    pre = [r for r in cell0 if r["role"].startswith("preprocess")]
    sums = [r for r in cell0 if r["role"] == "node_sum"]
    assert len(sums) == 4 and all(r["dram_latencies"] >= 1 and r["dram_time_us"] > 0 for r in sums)
    assert all(r["dram_read_bytes"] > 0 for r in pre)  # their 1x1 convs' weights, at least
    if load_profile(profile).resident:
        assert all(r["dram_bytes"] == 0 and r["onchip_bytes"] > 0 for r in sums)
    else:
        assert all(r["dram_bytes"] > 0 for r in sums)
    assert sum(r["dram_time_us"] for r in cell0) > sum(r["dram_time_us"] for r in pre)


# ------------------------------------------------------------------ the kernels, hand arithmetic
def _cell0(profile: str, genotype_op: str, inputs=lambda dst: (dst - 2, dst - 1)) -> list[dict]:
    config = SearchConfig(layers=3, channels=4, profile=profile)  # cell 0: normal, c=4, 32x32
    net = config_network_cost(uniform_genotype(config, genotype_op, inputs), config)
    return [r for r in net.rows if r["cell"] == 0]


def test_golden_h100_eager_add_and_cat_kernels():
    rows = _cell0("h100-eager", "sep_conv_3x3")
    node = 4 * 32 * 32 * 4  # fp32 node tensor: 16384 B
    for r in (r for r in rows if r["role"] == "node_sum"):  # acc + y: reads two, writes one
        assert (r["dram_read_bytes"], r["dram_write_bytes"], r["dram_latencies"]) == (2 * node, node, 1)
        assert r["dram_time_us"] == pytest.approx(3 * node / 3.35e6 + 0.5)
        assert r["dram_energy_uj"] == pytest.approx(3 * node * 31.2e-6)
    (cat,) = [r for r in rows if r["role"] == "cell_concat"]  # torch.cat: a copy kernel
    assert (cat["dram_read_bytes"], cat["dram_write_bytes"], cat["dram_latencies"]) == (4 * node, 4 * node, 1)
    sep = op_cost("h100-eager", "sep_conv_3x3", 4, 32, 32)
    assert all(r["dram_bytes"] == sep.dram_bytes for r in rows if r["role"] == "edge")  # every kernel as it runs


def test_golden_mobile_npu_node_kernels_round_trip(tmp_path):
    """mobile-npu's numbers under the round-trip rule: every node kernel writes its node to DRAM."""
    npu = profile_variant(tmp_path, "mobile-npu", "npu-round-trip", between_kernels="round-trip")
    node = 4 * 32 * 32  # int8: 4096 B, 100 ns latency, 51200 B/us, 32 pJ/B
    rows = _cell0(npu, "sep_conv_3x3")
    for r in (r for r in rows if r["role"] == "node_sum"):  # two operators into one on-chip accumulator
        assert (r["dram_read_bytes"], r["dram_write_bytes"], r["dram_latencies"]) == (0, node, 1)
        assert r["dram_time_us"] == pytest.approx(node / 51200 + 0.1)
    sep = op_cost("mobile-npu", "sep_conv_3x3", 4, 32, 32)
    for r in (r for r in rows if r["role"] == "edge"):  # its write and its latency are the node's
        assert (r["dram_write_bytes"], r["dram_latencies"]) == (sep.dram_write_bytes - node, sep.dram_latencies - 1)
        assert r["dram_read_bytes"] == sep.dram_read_bytes
    (cat,) = [r for r in rows if r["role"] == "cell_concat"]
    assert cat["dram_bytes"] == 0 and cat["dram_time_us"] == 0.0  # written in place by the nodes
    skips = _cell0(npu, "skip_connect", lambda d: (0, 1))
    for r in (r for r in skips if r["role"] == "node_sum"):  # no operator: the node's kernel reads both inputs
        assert (r["dram_read_bytes"], r["dram_write_bytes"], r["dram_latencies"]) == (2 * node, node, 1)
    assert all(r["dram_bytes"] == 0 for r in skips if r["role"] == "edge")


def test_golden_mobile_npu_resident_cell():
    """mobile-npu keeps its 1 MiB scratchpad's tensors between kernels: a c=4 cell moves only weights."""
    node = 4 * 32 * 32  # int8: 4096 B
    rows = _cell0("mobile-npu", "sep_conv_3x3")
    sep = op_cost("mobile-npu", "sep_conv_3x3", 4, 32, 32)
    weights = sep.compulsory_bytes - 2 * node  # compulsory = its input + its weights + its output
    for r in (r for r in rows if r["role"] == "edge"):  # its source on chip, its output the node's
        assert (r["dram_read_bytes"], r["dram_write_bytes"], r["dram_latencies"]) == (weights, 0, 0)
        assert r["onchip_bytes"] == node and r["spilled_bytes"] == 0
    for r in (r for r in rows if r["role"] == "node_sum"):  # the node stays on chip; one kernel, one latency
        assert (r["dram_bytes"], r["dram_latencies"], r["onchip_bytes"]) == (0, 1, node)
        assert r["dram_time_us"] == pytest.approx(0.1)
    # both 1x1 convs read the stem's 12 channels from chip: each moves its 12x4 weights + 4 biases (whole bursts)
    pre = [r for r in rows if r["role"].startswith("preprocess")]
    assert [r["dram_bytes"] for r in pre] == [-(-(12 * 4 + 4) // 32) * 32] * 2


def test_eager_node_of_one_or_three_inputs_runs_k_minus_one_adds():
    config = SearchConfig(layers=3, channels=4, profile="h100-eager")
    node = 4 * 32 * 32 * 4
    for inputs in ((lambda d: (d - 1,)), (lambda d: tuple(range(min(d, 3))))):
        net = config_network_cost(uniform_genotype(config, "max_pool_3x3", inputs), config)
        for r in (r for r in net.rows if r["cell"] == 0 and r["role"] == "node_sum"):
            assert r["dram_bytes"] == (r["fan_in"] - 1) * 3 * node and r["dram_latencies"] == r["fan_in"] - 1


# ------------------------------------------------------------------ layout
def test_instances_list_node_sums_and_concats_without_changing_macs():
    config = SearchConfig(layers=3, channels=4)
    genotype = random_genotype(config, 0)
    inst = network_instances(genotype, network_spec(config))
    roles = [i.role for i in inst]
    assert roles.count("node_sum") == 12 and roles.count("cell_concat") == 3
    assert {i.fan_in for i in inst if i.role == "node_sum"} == {2}
    edges_only = [i for i in inst if i.role not in ("node_sum", "cell_concat")]
    assert network_macs(inst) == network_macs(edges_only) > 0
    with pytest.raises(ValueError, match="node 3 has no incoming edge"):
        bad = Genotype(tuple(CellGenotype(c.reduction, tuple(e for e in c.edges if e[2] != 3)) for c in genotype.cells))
        network_instances(bad, network_spec(config))
