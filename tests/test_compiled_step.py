"""The compiled search step (issue 12) on CPU: the same loss and gradients as eager, a compiled search that
resumes from its checkpoint like an eager one, the eager fallback, and the config key.

Compiling is slow on a small CPU machine, so every compiled test uses one tiny geometry (1 cell, 1 node,
2 channels, 16x16 synthetic images, batch 4); inductor's on-disk cache makes the later compiles of the
same graphs cheap.
"""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from search_helpers import Killed, kill_at, pools_cheap
from searchspace.config import ConfigError
from trainables import SearchConfig, build_supernet, run_search, search_epoch
from trainables.compiled import compile_problem, compile_wanted

TINY = dict(dataset="synthetic", layers=1, channels=2, nodes=1, batch_size=4, train_size=16, val_size=8,
            test_size=8, max_epochs=2, patience=1, warmup_epochs=0, eval_epochs=1, eval_batch_size=8,
            bn_calibration_images=8, augment=False, lambda_time=0.5, lambda_energy=0.5, device="cpu")

needs_compiler = pytest.mark.skipif(compile_problem(torch.device("cpu")) is not None,
                                    reason="torch.compile cannot run here (no C++ compiler)")


def tiny(**overrides) -> SearchConfig:
    return SearchConfig.from_dict({**TINY, **overrides})


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(4, 1, 16, 16, generator=g), torch.randint(0, 10, (4,), generator=g)


def test_compile_key_defaults_auto_and_refuses_other_values():
    assert SearchConfig().compile == "auto"
    with pytest.raises(ConfigError, match="compile.*'yes'"):
        SearchConfig.from_dict({"compile": "yes"})
    assert compile_wanted("auto", torch.device("cuda")) and not compile_wanted("auto", torch.device("cpu"))
    assert compile_wanted("on", torch.device("cpu")) and not compile_wanted("off", torch.device("cuda"))
    with pytest.raises(ValueError, match="compile 'fast'"):
        compile_wanted("fast", torch.device("cpu"))


def test_eager_is_the_cpu_default():
    sn = build_supernet(tiny(), pools_cheap, 1)
    assert not sn.compile and sn.step_functions() is None


@needs_compiler
def test_compiled_losses_and_gradients_match_eager():
    eager = build_supernet(tiny(compile="off"), pools_cheap, 1)
    comp = build_supernet(tiny(compile="on"), pools_cheap, 1)  # same seed: same initial weights
    step = comp.step_functions()
    assert step is not None
    x, y = batch()

    # architecture loss and d/d alpha (n_sets, E, K_max); the weights get no gradient from it
    w = eager.weights()
    a_eager = F.cross_entropy(eager.net(x, w), y) + eager.cost.loss(w)
    (g_eager,) = torch.autograd.grad(a_eager, [eager.alpha])
    a_comp = step.arch_loss(x, y)
    (g_comp,) = torch.autograd.grad(a_comp, [comp.alpha])
    torch.testing.assert_close(a_comp, a_eager, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(g_comp, g_eager, rtol=1e-3, atol=1e-6)
    assert g_comp.abs().sum() > 0

    # weight loss, logits and every parameter's gradient
    loss_e = F.cross_entropy(logits_e := eager.net(x, eager.weights().detach()), y)
    loss_e.backward()
    loss_c, logits_c = step.weight_loss(x, y, comp.weights().detach())
    loss_c.backward()
    torch.testing.assert_close(loss_c, loss_e, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits_c, logits_e, rtol=1e-4, atol=1e-5)
    for (name, pe), pc in zip(eager.net.named_parameters(), comp.net.parameters()):
        torch.testing.assert_close(pc.grad, pe.grad, rtol=1e-3, atol=1e-5, msg=lambda m: f"{name}: {m}")
    # BN running statistics were updated in the compiled graph as in eager (two train-mode forwards each)
    for (name, be), bc in zip(eager.net.named_buffers(), comp.net.buffers()):
        torch.testing.assert_close(bc, be, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")


@needs_compiler
@pytest.mark.parametrize("arch_step, compiled", [("joint", {"joint_loss"}), ("alternate", {"arch_loss", "weight_loss"})])
def test_compiled_epochs_track_eager_and_compile_once_per_stage(arch_step, compiled):
    eager = build_supernet(tiny(compile="off", arch_step=arch_step), pools_cheap, 1)
    comp = build_supernet(tiny(compile="on", arch_step=arch_step), pools_cheap, 1)
    batches = [batch(s) for s in range(3)]
    for _ in range(2):
        m_e = search_epoch(eager, batches, None, True, 5.0)
        m_c = search_epoch(comp, batches, None, True, 5.0)
    torch.testing.assert_close(m_c["loss_sum"], m_e["loss_sum"], rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(comp.alpha, eager.alpha, rtol=1e-3, atol=1e-5)
    for pe, pc in zip(eager.net.parameters(), comp.net.parameters()):
        torch.testing.assert_close(pc, pe, rtol=1e-3, atol=1e-5)
    step = comp.compiled
    assert step.active and step.compiled == compiled and step.compile_seconds > 0
    assert comp.step_functions() is step  # the same compiled functions every epoch: no recompile


@needs_compiler
def test_compiled_search_resumes_from_its_checkpoint_like_an_uninterrupted_one(tmp_path):
    cfg = tiny(compile="on", patience=2)  # stage 1 runs both its epochs: the kill lands mid-stage
    full = run_search(cfg, pools_cheap)

    ck = tmp_path / "search.ckpt"
    with pytest.raises(Killed):
        run_search(cfg, pools_cheap, report=kill_at("stage1", 1), checkpoint=ck)
    eager_ck = tmp_path / "eager.ckpt"
    eager_ck.write_bytes(ck.read_bytes())
    history = []
    resumed = run_search(cfg, pools_cheap, report=history.append, checkpoint=ck)
    assert (history[0]["phase"], history[0]["epoch"]) == ("stage1", 2)  # really resumed mid-stage
    assert resumed.genotype == full.genotype
    assert resumed.supernet_accuracy == full.supernet_accuracy
    # an eager run resumes the compiled run's checkpoint too (compile is not part of its identity)
    eager_history = []
    run_search(cfg.replace(compile="off"), pools_cheap, report=eager_history.append, checkpoint=eager_ck)
    assert (eager_history[0]["phase"], eager_history[0]["epoch"]) == ("stage1", 2)


def test_without_a_compiler_the_step_falls_back_to_eager_with_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no g++, c++ or clang++
    sn = build_supernet(tiny(compile="on"), pools_cheap, 1)
    with caplog.at_level(logging.WARNING, logger="trainables.compiled"):
        m = search_epoch(sn, [batch(0), batch(1)], None, True, 5.0)
        search_epoch(sn, [batch(2)], None, True, 5.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no C++ compiler" in warnings[0].getMessage()
    assert sn.step_functions() is None and sn.compiled.fallback.startswith("no C++ compiler")
    assert torch.isfinite(m["loss_sum"]) and int(m["seen"]) == 8
