"""Collapse guards (issue 10, trainables/guard.py): every value runs a search end to end, each does what it says
(aux_skip's identity decays to 0 and never reaches the derived network, beta_decay's penalty has a gradient,
skip_dropout drops only parameter-free candidates and only in training, early_stop ends a skip-heavy stage 1),
resume equals an uninterrupted run, the compiled step takes the per-epoch values without recompiling, and an
unknown value is refused in one line."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from search_helpers import Killed, kill_at, pools_cheap, tiny
from searchspace.config import ConfigError
from trainables import SearchConfig, build_supernet, run_search, search_epoch
from trainables.cells import MixedOp
from trainables.compiled import compile_problem
from trainables.guard import (GUARDS, CollapseGuard, EpochGuard, GuardTerms, argmax_cell_skips, beta_penalty,
                              collapse_guard)
from trainables.state import PhaseProgress
from trainables.supernet import search_epochs
from trainables.train import _arch_loss  # noqa: F401  (the module's own hook, exercised through search_epoch)


def t(v: float) -> torch.Tensor:
    return torch.tensor(v)


def one_hot_weights(op: MixedOp, name: str) -> torch.Tensor:
    return torch.tensor([1.0 if c == name else 0.0 for c in op.candidates])


# ------------------------------------------------------------------------------------- the config key
def test_default_is_a_known_guard_and_unknown_values_are_refused_in_one_line():
    assert SearchConfig().collapse_guard in GUARDS
    with pytest.raises(ConfigError) as err:
        SearchConfig.from_dict({"collapse_guard": "magic"})
    msg = str(err.value)
    assert "\n" not in msg and "collapse_guard" in msg and "'magic'" in msg and "aux_skip" in msg
    with pytest.raises(ConfigError, match="skip_dropout_rate.*below 1"):
        SearchConfig.from_dict({"skip_dropout_rate": 1.0})
    with pytest.raises(ConfigError, match="beta_decay_weight.*>= 0"):
        SearchConfig.from_dict({"beta_decay_weight": -1})
    with pytest.raises(ValueError, match="collapse_guard 'magic'"):
        CollapseGuard(kind="magic")


@pytest.mark.parametrize("guard", GUARDS)
def test_every_guard_runs_a_tiny_search_end_to_end(guard):
    history = []
    r = run_search(tiny(seed=2, collapse_guard=guard, lambda_time=2.0, max_epochs=3, patience=3), pools_cheap,
                   report=history.append)
    assert r.config.collapse_guard == guard and 0 <= r.accuracy <= 1
    assert len(r.genotype.cells) == 3 and max(r.skip_counts) <= 2
    assert {"stage1", "stage2", "eval"} == {h["phase"] for h in history}
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in history)


# ------------------------------------------------------------------------------------- aux_skip (DARTS-)
def test_aux_skip_weight_decays_linearly_from_1_to_0_and_the_others_have_none():
    g = CollapseGuard("aux_skip", epochs=5)
    assert [g.aux_weight(e) for e in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    last = g.for_epoch(4, "cpu")
    assert float(last.terms.aux_weight) == 0.0 and last.terms.drop_rate is None and last.penalty_weight is None
    assert CollapseGuard("none", epochs=5).for_epoch(0, "cpu") is None
    assert CollapseGuard("beta_decay", epochs=5).aux_weight(0) == 0.0


def test_aux_skip_adds_the_identity_on_stride_1_edges_only():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    normal = MixedOp(("max_pool_3x3", "skip_connect", "sep_conv_3x3"), 4, 1, affine=False, supernet=True)
    w = torch.tensor([0.2, 0.3, 0.5])
    plain = normal(x, w)
    torch.testing.assert_close(normal(x, w, GuardTerms(aux_weight=t(0.7))), plain + 0.7 * x)
    torch.testing.assert_close(normal(x, w, GuardTerms(aux_weight=t(0.0))), plain)  # beta 0: the plain edge
    reduce = MixedOp(("max_pool_3x3", "skip_connect"), 4, 2, affine=False, supernet=True)
    torch.testing.assert_close(reduce(x, torch.tensor([0.5, 0.5]), GuardTerms(aux_weight=t(1.0))),
                               reduce(x, torch.tensor([0.5, 0.5])))  # shapes change: no identity
    # a derived edge (weights None) is a single operator: the guard's terms never reach it
    torch.testing.assert_close(normal(x, None, GuardTerms(aux_weight=t(1.0))), normal(x, None))


def test_aux_skip_changes_the_search_step_and_is_zero_in_its_last_epoch():
    cfg = tiny(collapse_guard="aux_skip", max_epochs=4, patience=4)
    guard = collapse_guard(cfg)
    assert float(guard.for_epoch(cfg.max_epochs - 1, "cpu").terms.aux_weight) == 0.0
    x, y = torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(1)), torch.arange(8) % 10
    on, off = build_supernet(cfg, pools_cheap), build_supernet(cfg, pools_cheap)
    search_epoch(on, [(x, y)], None, True, 5.0, guard.for_epoch(0, "cpu"))
    search_epoch(off, [(x, y)], None, True, 5.0, guard.for_epoch(3, "cpu"))  # beta 0: as no guard
    plain = build_supernet(cfg.replace(collapse_guard="none"), pools_cheap)
    search_epoch(plain, [(x, y)], None, True, 5.0)
    torch.testing.assert_close(off.alpha, plain.alpha)
    assert not torch.allclose(on.alpha, plain.alpha)


# ------------------------------------------------------------------------------------- beta_decay (beta-DARTS)
def test_beta_decay_penalty_is_mean_logsumexp_with_a_nonzero_gradient():
    g = CollapseGuard("beta_decay", epochs=3, beta_decay_weight=4.0)
    assert [g.penalty_weight(e) for e in range(3)] == [0.0, 2.0, 4.0]
    alpha = torch.tensor([[[1.0, 2.0, 0.0], [0.5, -1.0, 9.0]]], requires_grad=True)
    mask = torch.tensor([[[True, True, True], [True, True, False]]])  # the padded slot (9.0) is ignored
    pen = beta_penalty(alpha, mask, t(4.0))
    want = 4.0 * (torch.logsumexp(torch.tensor([1.0, 2.0, 0.0]), 0) + torch.logsumexp(torch.tensor([0.5, -1.0]), 0)) / 2
    torch.testing.assert_close(pen, want)
    (grad,) = torch.autograd.grad(pen, [alpha])
    soft = torch.softmax(alpha.detach().masked_fill(~mask, float("-inf")), -1)
    torch.testing.assert_close(grad, 4.0 * soft / 2)  # d/d alpha = weight * softmax / edges, 0 on padding
    assert grad.abs().sum() > 0 and grad[0, 1, 2] == 0


def test_beta_decay_enters_the_architecture_loss():
    from trainables.train import _arch_loss as arch_loss

    cfg = tiny(collapse_guard="beta_decay")
    sn = build_supernet(cfg, pools_cheap)
    x, y = torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(2)), torch.arange(8) % 10
    sn.net.eval()  # BN on running statistics: two forwards give the same CE
    base = arch_loss(sn, x, y)
    guarded = arch_loss(sn, x, y, EpochGuard(penalty_weight=t(3.0)))
    torch.testing.assert_close(guarded - base, beta_penalty(sn.alpha, sn.mask, t(3.0)))
    (g,) = torch.autograd.grad(guarded - base, [sn.alpha])
    assert g.abs().sum() > 0


# ------------------------------------------------------------------------------------- skip_dropout (P-DARTS)
def test_skip_dropout_rate_decays_to_0():
    g = CollapseGuard("skip_dropout", epochs=4, skip_dropout_rate=0.4)
    assert [round(g.drop_rate(e), 6) for e in range(4)] == [0.3, 0.2, 0.1, 0.0]


def test_skip_dropout_only_in_training_and_only_on_parameter_free_candidates():
    torch.manual_seed(0)
    x = torch.randn(4, 4, 8, 8) + 3.0  # no exact zeros
    op = MixedOp(("max_pool_3x3", "skip_connect", "sep_conv_3x3"), 4, 1, affine=False, supernet=True)
    assert op._free == (True, True, False)
    terms = GuardTerms(drop_rate=t(0.5))
    op.train()
    skip = op(x, one_hot_weights(op, "skip_connect"), terms)
    zeros = float((skip == 0).float().mean())
    assert 0.4 < zeros < 0.6  # about half the skip's outputs dropped
    kept = skip != 0
    torch.testing.assert_close(skip[kept], 2.0 * x[kept])  # the rest scaled by 1 / (1 - rate)
    conv_w = one_hot_weights(op, "sep_conv_3x3")
    torch.manual_seed(1)
    torch.testing.assert_close(op(x, conv_w, terms), op(x, conv_w))  # a convolution is never dropped
    op.eval()
    torch.testing.assert_close(op(x, one_hot_weights(op, "skip_connect"), terms), x)  # eval: no dropout


# ------------------------------------------------------------------------------------- early_stop (DARTS+)
def skip_heavy_alpha(sn, favour: str) -> torch.Tensor:
    """Alphas (n_sets, E, K) with ``favour`` strongest on every edge that has it."""
    alpha = torch.zeros_like(sn.alpha)
    for s, row in enumerate(sn.space.candidates):
        for e, cands in enumerate(row):
            if favour in cands:
                alpha[s, e, cands.index(favour)] = 5.0
    return alpha


def test_early_stop_fires_on_a_skip_heavy_normal_cell_in_stage_1_only():
    cfg = tiny(collapse_guard="early_stop")  # max_skip_per_cell 2: more than 2 skips stops
    sn = build_supernet(cfg, pools_cheap)
    heavy, convs = skip_heavy_alpha(sn, "skip_connect"), skip_heavy_alpha(sn, "sep_conv_3x3")
    assert argmax_cell_skips(sn.space, heavy) == [8, 8, 8] and argmax_cell_skips(sn.space, convs) == [0, 0, 0]
    guard = collapse_guard(cfg)
    assert guard.stops(1, sn.space, heavy) and not guard.stops(1, sn.space, convs)
    assert not guard.stops(2, sn.space, heavy)  # stage 2 cannot add skips (docstring)
    assert not collapse_guard(cfg.replace(collapse_guard="none")).stops(1, sn.space, heavy)
    assert collapse_guard(cfg.replace(max_skip_per_cell=-1)).skip_limit == 2
    # only normal cells count: skips in the reduction cell (set 1) alone do not stop
    red_only = convs.clone()
    red_only[1] = heavy[1]
    assert not guard.stops(1, sn.space, red_only)


def test_early_stop_ends_the_stage_loop_before_the_next_epoch(tmp_path):
    from trainables import load_datasets

    cfg = tiny(collapse_guard="early_stop", max_epochs=3, patience=3)
    data = load_datasets(cfg, "cpu")
    for favour, epochs in (("skip_connect", 0), ("sep_conv_3x3", 2)):
        sn = build_supernet(cfg, pools_cheap)
        sn.alpha.data.copy_(skip_heavy_alpha(sn, favour))
        progress = PhaseProgress(epoch=1)  # one arch-updating epoch done (warmup_epochs 0)
        ran = list(search_epochs(cfg, 1, sn, data, torch.Generator().manual_seed(0), progress))
        assert len(ran) == epochs, favour


# ------------------------------------------------------------------------------------- resume
@pytest.mark.parametrize("guard", ["aux_skip", "skip_dropout"])
def test_a_resumed_guarded_search_matches_an_uninterrupted_one(tmp_path, guard):
    cfg = tiny(seed=4, collapse_guard=guard, max_epochs=3, patience=3, eval_epochs=1)
    full_history = []
    full = run_search(cfg, pools_cheap, report=full_history.append)

    ck = tmp_path / "c.pt"
    with pytest.raises(Killed):
        run_search(cfg, pools_cheap, report=kill_at("stage1", 2), checkpoint=ck)
    history = []
    resumed = run_search(cfg, pools_cheap, report=history.append, checkpoint=ck)
    assert (history[0]["phase"], history[0]["epoch"]) == ("stage1", 3)
    assert resumed.genotype == full.genotype and resumed.supernet_accuracy == full.supernet_accuracy
    assert [h["train_loss"] for h in history] == [h["train_loss"] for h in full_history[2:]]


# ------------------------------------------------------------------------------------- the compiled step
@pytest.mark.skipif(compile_problem(torch.device("cpu")) is not None, reason="torch.compile cannot run here")
def test_compiled_step_takes_the_guard_values_as_inputs_without_recompiling():
    import torch._dynamo

    geo = dict(dataset="synthetic", layers=1, channels=2, nodes=1, batch_size=4, train_size=16, val_size=8,
               test_size=8, max_epochs=2, patience=1, warmup_epochs=0, bn_calibration_images=8, augment=False)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 1, 16, 16, generator=g), torch.randint(0, 10, (4,), generator=g)
    for kind, values in (("aux_skip", (1.0, 0.5)), ("beta_decay", (0.0, 2.0))):
        cfg = SearchConfig.from_dict({**geo, "collapse_guard": kind})
        eager, comp = build_supernet(cfg.replace(compile="off"), pools_cheap), build_supernet(cfg.replace(compile="on"),
                                                                                               pools_cheap)
        for i, v in enumerate(values):
            guard = (EpochGuard(terms=GuardTerms(aux_weight=t(v))) if kind == "aux_skip"
                     else EpochGuard(penalty_weight=t(v)))
            search_epoch(eager, [(x, y)], None, True, 5.0, guard)
            # compiled once (i == 0); a new value of the tensor input must not recompile. dynamo's own
            # config.patch: monkeypatch's undo deletes the attribute from dynamo's config module
            with torch._dynamo.config.patch(error_on_recompile=i > 0):
                search_epoch(comp, [(x, y)], None, True, 5.0, guard)
        assert comp.compiled.active, comp.compiled.fallback
        torch.testing.assert_close(comp.alpha, eager.alpha, rtol=1e-3, atol=1e-5)
        logits = eager.net(x, eager.weights().detach())
        assert torch.isfinite(F.cross_entropy(logits, y))
