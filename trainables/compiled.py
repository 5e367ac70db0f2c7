"""The compiled search step (issue 12): ``torch.compile`` of the architecture step's and the weight step's
forward and backward, one compile per stage's supernet.

What is compiled, and why that way:

* ``arch_loss(x, y) -> loss``: mixing weights, supernet forward, cross entropy and the DRAM cost term,
  with the network's parameters *detached* (``torch.func.functional_call``), so AOTAutograd's backward
  graph computes d loss / d alpha only, as the eager ``torch.autograd.grad(loss, [alpha])`` does
  (no weight gradients are computed and thrown away);
* ``weight_loss(x, y, w) -> (loss, logits)``: forward and cross entropy under fixed mixing weights;
  ``loss.backward()`` runs AOTAutograd's compiled backward graph;
* ``joint_loss(x, y) -> (loss, CE, logits)`` (``arch_step: joint``, the default with the same batches):
  one graph whose backward gives the alphas' and the weights' gradients together; only the functions a
  stage calls are compiled (torch.compile is lazy).

Both take the collapse guard's per-epoch values (``trainables.guard``: the auxiliary-skip weight, the dropout
rate, the beta-decay weight) as 0-dim tensor inputs, so a schedule's new value each epoch does not recompile.
Both are compiled with ``fullgraph=True`` and ``dynamic=False`` (static shapes: ``data.batches`` drops the
last partial batch, so every step of an epoch has the batch's shape). Stage 2 builds a new supernet (other
candidate sets), hence its own compile; inside a stage nothing recompiles. On CUDA the mode is
``reduce-overhead`` (CUDA graphs: one launch per graph instead of one per kernel); on CPU the default mode
(inductor fuses the BN / ReLU / elementwise chains and emits C++ loops).

The optimiser steps stay eager: ``w_opt`` is SGD with ``foreach=True`` (a handful of multi-tensor kernels)
and its learning rate is a Python float that ``set_lr`` changes every epoch; compiling ``step`` would
recompile per epoch unless the rate became a tensor, which would change the checkpoint's optimiser state.

When compilation is unavailable (no C++ compiler, an unsupported op, an inductor error) the step falls back
to eager with one warning naming the cause; the search goes on and its result stays valid.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from .arch import mixing_weights
from .guard import GuardTerms, beta_penalty

log = logging.getLogger(__name__)

COMPILE_CHOICES = ("auto", "on", "off")  # config.compile


def compile_wanted(choice: str, device: torch.device) -> bool:
    """``config.compile`` on ``device``: on, off, or auto = on where it was measured to win.

    auto: CUDA yes (the step is host-bound: hundreds of small kernels per step); CPU no: on the fashion
    preset's trial sizes a stage's compile costs more than it saves (docs/benchmarks.md, "Speed": numbers).
    """
    if choice not in COMPILE_CHOICES:
        raise ValueError(f"compile {choice!r}: expected one of {', '.join(COMPILE_CHOICES)}")
    if choice == "auto":
        return device.type == "cuda"
    return choice == "on"


def compile_problem(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot work here, or None. Checked before compiling so the usual cause
    (inductor's CPU code needs a C++ compiler) gets a plain sentence instead of a long traceback."""
    if device.type == "cpu" and not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
        return "no C++ compiler on PATH (inductor's CPU kernels need one: apt-get install g++)"
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "triton is not installed (inductor's CUDA kernels need it)"
    return None


@dataclass
class CompiledStep:
    """The compiled losses of one stage's supernet. Build with ``compiled_step``; ``None`` callables mean
    the eager path (after a fallback). ``compile_seconds``: wall time of the first call of each (the
    compile itself, one step included)."""

    arch_loss: Callable[..., torch.Tensor] | None  # (x, y, terms=None, penalty=None) -> loss
    weight_loss: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None  # (x, y, w, terms=None) -> (loss, logits)
    # (x, y, terms=None, penalty=None) -> (loss, CE, logits): both gradients from one backward (arch_step joint)
    joint_loss: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
    compile_seconds: float = 0.0
    compiled: set[str] = field(default_factory=set)  # names of the functions compiled so far
    fallback: str | None = None  # why the step went back to eager, if it did

    @property
    def active(self) -> bool:
        return self.arch_loss is not None and self.fallback is None

    def fall_back(self, reason: str) -> None:
        log.warning("compiled search step unavailable, running eager: %s", reason)
        self.fallback = reason
        self.arch_loss = self.weight_loss = self.joint_loss = None


def joint_loss_of(st, x: torch.Tensor, y: torch.Tensor, terms: GuardTerms | None = None,
                  penalty: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, CE, logits) of supernet ``st`` (a ``train.Supernet``) for ``arch_step: joint``: loss = CE +
    cost(alpha) [+ the guard's penalty], one graph whose backward gives d/d alpha and d/d weights together.
    The eager step calls it as is, the compiled step compiles it."""
    w = mixing_weights(st.alpha, st.mask, st.set_of_cell)  # (cells, E, K_max), differentiable in alpha
    logits = st.net(x, w, terms)  # (N, classes)
    ce = F.cross_entropy(logits, y)
    loss = ce + st.cost.loss(w)
    return (loss if penalty is None else loss + beta_penalty(st.alpha, st.mask, penalty)), ce, logits


def compiled_step(st) -> CompiledStep:
    """The compiled architecture and weight losses of supernet ``st`` (a ``train.Supernet``).

    Nothing compiles here: ``torch.compile`` is lazy, the first step compiles (and ``search_epoch`` times it).
    """
    device = st.alpha.device
    problem = compile_problem(device)
    if problem is not None:
        step = CompiledStep(None, None)
        step.fall_back(problem)
        return step
    net, cost = st.net, st.cost
    mask, set_of_cell, alpha = st.mask, st.set_of_cell, st.alpha

    def arch_loss(x: torch.Tensor, y: torch.Tensor, terms: GuardTerms | None = None,
                  penalty: torch.Tensor | None = None) -> torch.Tensor:
        # x: (N, C, H, W), y: (N,); alpha (n_sets, E, K_max) is the only input that needs a gradient;
        # terms / penalty: the collapse guard's per-epoch 0-dim tensors (inputs, so a new value never recompiles)
        w = mixing_weights(alpha, mask, set_of_cell)  # (cells, E, K_max)
        params = {k: v.detach() for k, v in net.named_parameters()}
        logits = torch.func.functional_call(net, params, (x, w, terms), strict=False)  # (N, classes)
        loss = F.cross_entropy(logits, y) + cost.loss(w)
        return loss if penalty is None else loss + beta_penalty(alpha, mask, penalty)

    def weight_loss(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                    terms: GuardTerms | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        # w: (cells, E, K_max) detached mixing weights
        logits = net(x, w, terms)
        return F.cross_entropy(logits, y), logits

    def joint_loss(x: torch.Tensor, y: torch.Tensor, terms: GuardTerms | None = None,
                   penalty: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return joint_loss_of(st, x, y, terms, penalty)

    mode = "reduce-overhead" if device.type == "cuda" else None
    compiled = [torch.compile(fn, fullgraph=True, dynamic=False, mode=mode)
                for fn in (arch_loss, weight_loss, joint_loss)]
    return CompiledStep(*compiled)
