"""The pure parts of benchmarks/front_range.py (the script itself runs hwnas search and is not run here):
coverage of the attainable range, the monotonicity check, gaps, and cost_models.extremes.cheapest_genotype
against brute force on a tiny cost table."""
from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

from cost_models import EdgeCostTable
from cost_models.extremes import cheapest_genotype
from searchspace.genotype import cell_edges

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "front_range.py"


@pytest.fixture(scope="module")
def fr():
    spec = importlib.util.spec_from_file_location("front_range", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coverage_maths(fr):
    assert fr.coverage(100.0, 80.0, 60.0) == pytest.approx(0.5)  # 20 of the 40 uJ the space allows
    assert fr.coverage(100.0, 60.0, 60.0) == pytest.approx(1.0)
    assert fr.coverage(100.0, 105.0, 60.0) == pytest.approx(-0.125)  # lambda max dearer than lambda 0
    assert fr.coverage(100.0, 90.0, 100.0) is None and fr.coverage(100.0, 90.0, 120.0) is None  # no range
    assert fr.coverage(100.0, float("nan"), 60.0) is None and fr.coverage(100.0, 90.0, None) is None


def test_monotonicity_within_one_percent(fr):
    assert fr.monotone_violations([10.0, 9.0, 9.05, 8.0]) == []  # +0.56 %: within 1 %
    (i, rise), = fr.monotone_violations([10.0, 9.0, 9.2, 8.0])
    assert i == 2 and rise == pytest.approx(0.2 / 9)
    assert fr.monotone_violations([10.0, 10.2], tol=0.01) == [(1, pytest.approx(0.02))]
    assert fr.monotone_violations([5.0]) == [] and fr.monotone_violations([]) == []


def _row(tid, lt, acc, energy, std=0.01, pareto=True, rnd=0, status="completed"):
    return {"trial_id": tid, "status": status, "lambda_time": lt, "lambda_energy": 0.0, "accuracy": acc,
            "accuracy_std": std, "error": 1 - acc, "dram_time_us": energy / 2, "dram_energy_uj": energy,
            "is_pareto": pareto, "round": rnd}


def test_seed_range_reads_lambda_order_not_row_order(fr):
    rows = [_row("c", 8.0, 0.70, 75.0), _row("a", 0.0, 0.78, 100.0), _row("b", 2.0, 0.75, 80.0),
            _row("d", 0.5, 0.0, 0.0, pareto=False, status="failed")]
    g = fr.seed_range(rows, e_min=60.0)
    assert (g["e_lambda0"], g["e_lambda_max"], g["lambda_max"]) == (100.0, 75.0, [8.0, 0.0])
    assert g["coverage"] == pytest.approx(25 / 40) and g["violations"] == [] and g["front"] == 3
    assert g["accuracy_given_up"] == pytest.approx(0.08) and g["points"] == 3
    rising = fr.seed_range([_row("a", 0.0, 0.78, 100.0), _row("b", 2.0, 0.75, 90.0), _row("c", 8.0, 0.7, 95.0)], 60.0)
    assert rising["violations"] == [[(8.0, 0.0), pytest.approx(5 / 90)]]
    assert fr.seed_range([_row("b", 2.0, 0.75, 80.0)], 60.0)["coverage"] is None  # no lambda-0 point


def test_adaptive_points_inside_the_widest_grid_gaps(fr):
    # grid front: lambda 0 (100 uJ), 0.5 (98 uJ), 8 (60 uJ): the widest gap is between 0.5 and 8
    grid = [_row("a", 0.0, 0.80, 100.0), _row("b", 0.5, 0.79, 98.0), _row("c", 8.0, 0.70, 60.0)]
    adaptive = [*grid, _row("n1", 2.0, 0.76, 80.0, rnd=1), _row("n2", 0.2, 0.795, 99.0, rnd=1)]
    hits = fr.gap_hits(grid, adaptive)
    assert len(hits["gaps"]) == 2 and hits["gaps"][0]["lambdas"] == [[8.0, 0.0], [0.5, 0.0]]
    by = {tuple(p["lambda"]): (p["in_gap_by_lambda"], p["in_gap_by_energy"]) for p in hits["new_points"]}
    assert by == {(2.0, 0.0): (True, True), (0.2, 0.0): (True, True)}
    far = fr.gap_hits(grid, [*grid, _row("n3", 20.0, 0.6, 50.0, rnd=1)])
    assert [(p["in_gap_by_lambda"], p["in_gap_by_energy"]) for p in far["new_points"]] == [(False, False)]


# ---------------------------------------------------------------------------------------------- cheapest
CANDS = ("max_pool_3x3", "skip_connect", "sep_conv_3x3")


def _table(seed: int, cells: int = 2, nodes: int = 2) -> EdgeCostTable:
    rng = np.random.default_rng(seed)
    shape = (cells, len(cell_edges(nodes)), len(CANDS))
    energy = rng.uniform(1.0, 10.0, shape)
    energy[..., 1] *= 0.3  # skips cheapest on most edges: the cap binds
    return EdgeCostTable(CANDS, rng.uniform(1.0, 10.0, shape), energy, profile="toy", batch=1,
                         dram_bytes=np.ones(shape, dtype=np.int64))


def _brute_force(table: EdgeCostTable, nodes: int, cap: int, ops=CANDS) -> float:
    """Every derivation of every cell: per node any two incoming edges, any operator each; skips <= cap."""
    edges = cell_edges(nodes)
    total = 0.0
    for cell in range(table.energy_uj.shape[0]):
        per_node = []
        for dst in range(2, nodes + 2):
            incoming = [e for e, (_, d) in enumerate(edges) if d == dst]
            per_node.append([(pair, choice) for pair in itertools.combinations(incoming, 2)
                             for choice in itertools.product(ops, repeat=2)])
        best = min(sum(table.energy_uj[cell, e, CANDS.index(op)] for (pair, choice) in combo
                       for e, op in zip(pair, choice))
                   for combo in itertools.product(*per_node)
                   if cap < 0 or sum(op == "skip_connect" for _, choice in combo for op in choice) <= cap)
        total += best
    return total


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("cap", [0, 1, 2, -1])
def test_cheapest_genotype_matches_brute_force(seed, cap):
    nodes = 2
    table = _table(seed, nodes=nodes)
    g = cheapest_genotype(table, nodes, cap)
    assert table.genotype_cost(g, nodes)[1] == pytest.approx(_brute_force(table, nodes, cap))
    assert all(c.skip_count() <= (cap if cap >= 0 else 99) for c in g.cells)
    assert all(sorted(d for _, _, d in c.edges) == [2, 2, 3, 3] for c in g.cells)
    assert [c.reduction for c in g.cells] == [True, True]  # reduction_cells(2)


def test_cheapest_genotype_respects_the_space_and_the_metric():
    nodes, table = 2, _table(7, cells=1, nodes=2)
    pools = cheapest_genotype(table, nodes, 2, operators=("max_pool_3x3", "sep_conv_3x3"))
    assert "skip_connect" not in pools.cells[0].ops()
    assert table.genotype_cost(pools, nodes)[1] == pytest.approx(
        _brute_force(table, nodes, 2, ops=("max_pool_3x3", "sep_conv_3x3")))
    by_time = cheapest_genotype(table, nodes, -1, metric="time")
    assert table.genotype_cost(by_time, nodes)[0] <= table.genotype_cost(cheapest_genotype(table, nodes, -1), nodes)[0]
    with pytest.raises(ValueError, match="unknown metric"):
        cheapest_genotype(table, nodes, 2, metric="power")
    with pytest.raises(ValueError, match="not candidates"):
        cheapest_genotype(table, nodes, 2, operators=("conv_7x7",))
    with pytest.raises(ValueError, match="edges per cell"):
        cheapest_genotype(table, 4, 2)


def test_cheapest_genotype_of_a_real_table_is_under_every_uniform_cell():
    """On the real cost model: E_min is no dearer than any one-operator genotype that respects the cap."""
    from cost_models import derived_network_cost, search_cost_table
    from searchspace.config import SearchConfig
    from searchspace.genotype import CellGenotype, Genotype
    from searchspace.layout import reduction_cells

    config = SearchConfig(dataset="fashion", layers=3, channels=4, deploy_layers=8, deploy_channels=16)
    table = search_cost_table(config)
    g = cheapest_genotype(table, config.nodes, config.max_skip_per_cell)
    e_min = table.genotype_cost(g, config.nodes)[1]
    for op in ("max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3", "dil_conv_5x5"):
        uniform = Genotype(tuple(CellGenotype(i in reduction_cells(3), tuple((op, s, n) for n in range(2, 6)
                                                                              for s in (0, 1))) for i in range(3)))
        assert e_min <= table.genotype_cost(uniform, config.nodes)[1]
    assert max(g.skip_counts()) <= config.max_skip_per_cell
    assert derived_network_cost(g, config).dram_energy_uj > 0
