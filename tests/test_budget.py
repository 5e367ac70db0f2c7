"""Cost budgets (issue 10), the search-core side: the config keys, the derived-cost estimate the penalty
uses, the penalty's shape (hinge / absolute) and where its gradient pushes the alphas."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cost_models import derived_network_cost, search_cost_table
from searchspace.config import ConfigError, SearchConfig
from searchspace.genotype import CellGenotype, Genotype, cell_edges
from searchspace.ops import CANDIDATES
from trainables.arch import make_space
from trainables.supernet import build_supernet, cell_reductions, stage_cost_term
from trainables.train import CostTerm

from search_helpers import pools_cheap, tiny

# the quick geometry's search, costed on a deployed network where operators differ (as budget_landing.py)
DEPLOYED = dict(dataset="fashion", layers=3, channels=4, deploy_layers=20, deploy_channels=36, profile="mobile-npu")


@pytest.mark.parametrize("key", ["dram_time_budget_us", "dram_energy_budget_uj"])
def test_negative_budget_is_refused_naming_the_key(key):
    with pytest.raises(ConfigError, match=f"'{key}' = -1.0: must be >= 0") as info:
        SearchConfig.from_dict({key: -1})
    assert "\n" not in str(info.value)


def test_unknown_penalty_form_is_refused():
    with pytest.raises(ConfigError, match="budget_penalty"):
        SearchConfig.from_dict({"budget_penalty": "square"})


def test_budgets_off_by_default_leave_the_loss_as_before():
    cfg = tiny(lambda_time=0.5)
    sn = build_supernet(cfg, pools_cheap, 1, device="cpu")
    w = sn.weights()
    t, e = sn.cost.expected(w)
    before = 0.5 * (t - sn.cost.ref_time_us) / sn.cost.ref_time_us
    assert float(sn.cost.budget_loss(w)) == 0.0
    assert torch.allclose(sn.cost.loss(w), before)


def _one_hot(choice: np.ndarray, k: int) -> torch.Tensor:
    """(cells, E) operator indices -> (cells, E, k) nearly one-hot mixing weights."""
    logits = torch.full((*choice.shape, k), -10.0)
    logits.scatter_(-1, torch.as_tensor(choice)[..., None], 10.0)
    return torch.softmax(logits, -1)


def _argmax_genotype(cfg: SearchConfig, choice: np.ndarray, rng: np.random.Generator | None = None) -> Genotype:
    """Each node keeps its first two incoming edges (the cell inputs): what equal edge strengths derive; with
    ``rng``, two incoming edges drawn at random (what the estimate's 2/k spreads over)."""
    edges, reds = cell_edges(cfg.nodes), cell_reductions(cfg)
    cells = []
    for c, red in enumerate(reds):
        keep = []
        for dst in range(2, cfg.nodes + 2):
            incoming = [j for j, e in enumerate(edges) if e[1] == dst]
            keep += sorted(rng.choice(incoming, 2, replace=False)) if rng is not None else incoming[:2]
        cells.append(CellGenotype(red, tuple((CANDIDATES[choice[c, i]], *edges[i]) for i in keep)))
    return Genotype(tuple(cells))


@pytest.mark.parametrize("pattern", ["max_pool_3x3", "skip_connect", "sep_conv_5x5", "dil_conv_3x3", "random"])
def test_derived_estimate_matches_the_argmax_network(pattern):
    cfg = SearchConfig.from_dict(DEPLOYED)
    table = search_cost_table(cfg)
    space = make_space(tuple(CANDIDATES), cell_reductions(cfg), cfg.nodes, False)
    term = stage_cost_term(cfg, space, table)
    shape = (cfg.layers, len(cell_edges(cfg.nodes)))
    choice = (np.random.default_rng(3).integers(0, len(CANDIDATES), shape) if pattern == "random"
              else np.full(shape, CANDIDATES.index(pattern)))
    t, e = term.derived(_one_hot(choice, len(CANDIDATES)))
    if pattern == "random":
        # the estimate spreads each node over 2/k of its edges, so it is the cost expected over which two
        # edges derivation keeps: under mobile-npu's resident rule an edge's share is its operator's
        # weights, and a random mix's kept edges alone scatter by +-20 % around that expectation
        rng = np.random.default_rng(0)
        nets = [derived_network_cost(_argmax_genotype(cfg, choice, rng), cfg) for _ in range(24)]
        real_t, real_e = (float(np.mean([getattr(n, k) for n in nets])) for k in ("dram_time_us", "dram_energy_uj"))
    else:
        real = derived_network_cost(_argmax_genotype(cfg, choice), cfg)
        real_t, real_e = real.dram_time_us, real.dram_energy_uj
    assert float(t) == pytest.approx(real_t, rel=0.06)
    assert float(e) == pytest.approx(real_e, rel=0.06)


def _term(form: str, budget: float) -> CostTerm:
    """One cell, one edge into the first node (2/k = 1), candidates costing 1 and 3 us; fixed 10 us."""
    cost = torch.tensor([[[1.0, 3.0]]])  # (cells=1, E=1, K=2)
    return CostTerm(cost, cost.clone(), 1.0, 1.0, 0.0, 0.0, edge_scale=torch.ones(1), fixed_time_us=10.0,
                    fixed_energy_uj=10.0, budget_time_us=budget, budget_weight=2.0, budget_penalty=form)


@pytest.mark.parametrize("form", ["hinge", "absolute"])
def test_penalty_zero_at_budget_and_growing_above(form):
    over = [float(_term(form, 12.0).budget_loss(torch.tensor([[[1 - p, p]]]))) for p in (0.5, 0.75, 1.0)]
    assert over[0] == pytest.approx(0.0, abs=1e-7)  # C = 12 = B
    assert 0 < over[1] < over[2] and over[2] == pytest.approx(2.0 * (13 / 12 - 1))
    under = float(_term(form, 13.0).budget_loss(torch.tensor([[[1.0, 0.0]]])))  # C = 11 < B = 13
    assert under == (0.0 if form == "hinge" else pytest.approx(2.0 * (1 - 11 / 13)))


def _alpha_grad(term: CostTerm) -> torch.Tensor:
    alpha = torch.zeros(1, 1, 2, requires_grad=True)
    term.loss(torch.softmax(alpha, -1)).backward()
    return alpha.grad[0, 0]


@pytest.mark.parametrize("form", ["hinge", "absolute"])
def test_gradient_pushes_to_cheaper_ops_only_over_budget(form):
    g = _alpha_grad(_term(form, 11.0))  # uniform: C = 12 > B = 11
    assert g[1] > 0 > g[0]  # descent lowers the dear candidate's alpha, raises the cheap one's
    if form == "hinge":
        assert torch.all(_alpha_grad(_term(form, 13.0)) == 0)  # under budget: no push at all
    else:
        g = _alpha_grad(_term(form, 13.0))  # under budget the absolute form pulls towards the budget
        assert g[1] < 0 < g[0]


def test_supernet_budget_penalty_in_the_arch_step():
    """Over a budget the arch step moves alpha mass to cheaper candidates; the loss sees the budget."""
    cfg = tiny(dram_time_budget_us=1e-3, budget_weight=50.0)
    sn = build_supernet(cfg, pools_cheap, 1, device="cpu")
    assert sn.cost.budget_time_us == 1e-3 and sn.cost.edge_scale.shape == (14,)
    assert float(sn.cost.budget_loss(sn.weights().detach())) > 0
    alpha = sn.alpha
    (grad,) = torch.autograd.grad(sn.cost.loss(sn.weights()), [alpha])
    cost = sn.cost.time_us[0]  # (E, K)
    dear = cost.argmax(-1, keepdim=True)
    cheap = cost.argmin(-1, keepdim=True)
    differs = (cost.max(-1).values > cost.min(-1).values)
    assert torch.all(grad[0].gather(-1, dear)[differs] > grad[0].gather(-1, cheap)[differs])


def test_compiled_step_sees_the_budget_like_eager():
    """The compiled architecture step (trainables/compiled.py calls the same CostTerm.loss) moves the alphas
    as the eager one does with a budget that binds."""
    from trainables.compiled import compile_problem
    from trainables.train import search_epoch

    if compile_problem(torch.device("cpu")) is not None:
        pytest.skip("torch.compile cannot run here (no C++ compiler)")
    small = dict(layers=1, channels=2, nodes=1, batch_size=4, device="cpu", dram_time_budget_us=1e-6,
                 budget_penalty="absolute", budget_weight=5.0)
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(4, 1, 16, 16, generator=g), torch.randint(0, 10, (4,), generator=g))]
    alphas = []
    for mode in ("off", "on"):
        sn = build_supernet(tiny(**small, compile=mode), pools_cheap, 1)
        search_epoch(sn, data, None, True, 5.0)
        alphas.append(sn.alpha.detach().clone())
    assert sn.step_functions() is not None  # it really ran compiled
    torch.testing.assert_close(alphas[1], alphas[0], rtol=1e-3, atol=1e-6)
    assert alphas[0].abs().sum() > 0
