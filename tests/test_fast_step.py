"""The CPU speed levers of issue 12 that change how a step runs, not what it computes:

* ``arch_step``: ``joint`` (default with the same batches) takes alpha's and the weights' gradients from one
  forward and backward; ``alternate`` is DARTS's order (alpha first, then the weights under the new alpha).
  Each is checked against the same updates written out by hand.
* ``channels_last``: the networks in channels_last memory (auto on CPU) give the NCHW step's numbers.
* ``val_every``: the supernet's val accuracy on a stage's last epoch only, by default.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from search_helpers import pools_cheap, tiny
from searchspace.config import ConfigError
from searchspace.genotype import CellGenotype, Genotype
from trainables import build_supernet, run_search, search_epoch
from trainables.supernet import memory_format
from trainables.target import build_target

CLIP = 5.0


def batch(seed: int = 0, n: int = 8, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def cfg(**overrides):
    # lambda > 0: the cost term's gradient reaches alpha
    return tiny(**{"lambda_time": 0.5, "lambda_energy": 0.5, "channels_last": "off", **overrides})


def arch_grad(sn, x, y) -> torch.Tensor:
    """d (CE + cost) / d alpha at the current weights and alpha, (n_sets, E, K_max)."""
    w = sn.weights()
    loss = F.cross_entropy(sn.net(x, w), y) + sn.cost.loss(w)
    (g,) = torch.autograd.grad(loss, [sn.alpha])
    return g


def weight_step(sn, x, y) -> None:
    """The weight update under the current alpha (detached), clipped as the search clips."""
    sn.w_opt.zero_grad(set_to_none=True)
    F.cross_entropy(sn.net(x, sn.weights().detach()), y).backward()
    nn.utils.clip_grad_norm_(sn.net.parameters(), CLIP)
    sn.w_opt.step()


def arch_step(sn, grad: torch.Tensor) -> None:
    sn.a_opt.zero_grad(set_to_none=True)
    sn.alpha.grad = grad
    sn.a_opt.step()


def assert_same_state(a, b, atol: float = 1e-6) -> None:
    torch.testing.assert_close(a.alpha, b.alpha, rtol=1e-4, atol=atol)
    for (name, pa), pb in zip(a.net.named_parameters(), b.net.parameters()):
        torch.testing.assert_close(pb, pa, rtol=1e-4, atol=atol, msg=lambda m: f"{name}: {m}")


def test_arch_step_auto_is_joint_on_the_same_batches_and_alternate_with_a_split():
    assert tiny().arch_step == "auto" and tiny().joint_arch_step
    assert not tiny(arch_data="split").joint_arch_step
    assert tiny(arch_step="joint").joint_arch_step and not tiny(arch_step="alternate").joint_arch_step
    with pytest.raises(ConfigError, match="arch_step.*joint.*arch_data.*split"):
        tiny(arch_step="joint", arch_data="split")
    with pytest.raises(ConfigError, match="arch_step"):
        tiny(arch_step="both")


def test_joint_step_is_both_gradients_at_the_same_point():
    """One search step with arch_step=joint == the arch gradient and the weight gradient both taken at
    (w_t, alpha_t), then each optimiser's step."""
    joint, manual = build_supernet(cfg(arch_step="joint"), pools_cheap, 1), build_supernet(cfg(), pools_cheap, 1)
    assert joint.joint
    for seed in range(3):
        x, y = batch(seed)
        search_epoch(joint, [(x, y)], None, True, CLIP)
        g = arch_grad(manual, x, y)  # before either update: same point as the weight gradient
        weight_step(manual, x, y)
        arch_step(manual, g)
        assert_same_state(manual, joint)
    assert not torch.equal(joint.alpha, torch.zeros_like(joint.alpha))


def test_alternate_step_is_alpha_first_then_the_weights_under_the_new_alpha():
    alt, manual = build_supernet(cfg(arch_step="alternate"), pools_cheap, 1), build_supernet(cfg(), pools_cheap, 1)
    assert not alt.joint
    for seed in range(3):
        x, y = batch(seed)
        search_epoch(alt, [(x, y)], None, True, CLIP)
        arch_step(manual, arch_grad(manual, x, y))
        weight_step(manual, x, y)  # under alpha_{t+1}
        assert_same_state(manual, alt)


def test_the_two_orders_differ_but_stay_close():
    """Same start, same batches: joint and alternate are different algorithms (alpha moves the weight
    step in alternate), within a step's worth of each other."""
    a, b = build_supernet(cfg(arch_step="joint"), pools_cheap, 1), build_supernet(cfg(arch_step="alternate"),
                                                                                  pools_cheap, 1)
    x, y = batch(0)
    search_epoch(a, [(x, y)], None, True, CLIP)
    search_epoch(b, [(x, y)], None, True, CLIP)
    torch.testing.assert_close(a.alpha, b.alpha)  # the arch step is at the same point in both
    diffs = [float((pa - pb).detach().abs().max()) for pa, pb in zip(a.net.parameters(), b.net.parameters())]
    assert 0 < max(diffs) < 1e-2


def test_weight_only_epochs_ignore_arch_step():
    a, b = build_supernet(cfg(arch_step="joint"), pools_cheap, 1), build_supernet(cfg(arch_step="alternate"),
                                                                                  pools_cheap, 1)
    for sn in (a, b):
        search_epoch(sn, [batch(0), batch(1)], None, False, CLIP)
    assert_same_state(a, b)
    assert torch.equal(a.alpha, torch.zeros_like(a.alpha))


def test_channels_last_is_auto_on_cpu_only():
    assert memory_format(tiny(), torch.device("cpu")) == torch.channels_last
    assert memory_format(tiny(), torch.device("cuda")) == torch.contiguous_format  # a device name: no GPU needed
    assert memory_format(tiny(channels_last="on"), torch.device("cuda")) == torch.channels_last
    assert memory_format(tiny(channels_last="off"), torch.device("cpu")) == torch.contiguous_format
    with pytest.raises(ConfigError, match="channels_last"):
        tiny(channels_last="yes")


def cell_layouts(net: nn.Module, x: torch.Tensor, weights=None) -> list[str]:
    """The memory layout of every cell's output (N, nodes*C, H, W) on one forward."""
    seen = []
    hooks = [c.register_forward_hook(lambda _m, _i, out: seen.append(
        "cl" if out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous() else
        "nchw" if out.is_contiguous() else "other")) for c in net.cells]
    with torch.no_grad():
        net(x, weights) if weights is not None else net(x)
    for h in hooks:
        h.remove()
    return seen


def test_channels_last_networks_step_like_nchw_ones():
    cl = build_supernet(cfg(channels_last="on"), pools_cheap, 1)
    nchw = build_supernet(cfg(channels_last="off"), pools_cheap, 1)
    x, _ = batch(0)  # NCHW, as data.batches yields it: the network's first conv switches the layout
    assert cell_layouts(cl.net, x, cl.weights()) == ["cl"] * 3
    assert cell_layouts(nchw.net, x, nchw.weights()) == ["nchw"] * 3
    batches = [batch(s) for s in range(3)]
    m_cl = search_epoch(cl, batches, None, True, CLIP)
    m_nchw = search_epoch(nchw, batches, None, True, CLIP)
    torch.testing.assert_close(m_cl["loss_sum"], m_nchw["loss_sum"], rtol=1e-4, atol=1e-5)
    assert_same_state(nchw, cl, atol=1e-5)  # other kernels, other rounding; Adam scales tiny alpha grads up


def test_target_network_takes_the_memory_format():
    genotype = Genotype((CellGenotype(False, (("sep_conv_3x3", 0, 2), ("max_pool_3x3", 1, 2))),))
    one_node = dict(layers=1, nodes=1)
    net_cl, _ = build_target(tiny(channels_last="on", **one_node), genotype)
    net_nchw, _ = build_target(tiny(channels_last="off", **one_node), genotype)
    x, _ = batch(0)
    assert cell_layouts(net_cl, x) == ["cl"] and cell_layouts(net_nchw, x) == ["nchw"]
    net_nchw.load_state_dict(net_cl.state_dict())  # the same weights, whatever the layout
    net_cl.eval(), net_nchw.eval()
    torch.testing.assert_close(net_cl(x), net_nchw(x), rtol=1e-4, atol=1e-5)


def test_val_every_measures_the_supernet_every_n_epochs():
    history = []
    run_search(tiny(seed=1, max_epochs=3, patience=3, eval_epochs=2, val_every=1), pools_cheap, report=history.append)
    for phase in ("stage1", "stage2", "eval"):
        rows = [h for h in history if h["phase"] == phase]
        assert len(rows) > 1 and all("val_acc" in h for h in rows)
