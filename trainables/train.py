"""The inner loops: one search epoch (architecture and weight updates, joint or alternating), one plain training
epoch (warm-up and the target network), and accuracy. No host sync inside a loop: losses and hit
counts accumulate on the device and are read once per epoch.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .arch import ArchSpace, mixing_weights
from .compiled import CompiledStep, compiled_step, joint_loss_of
from .guard import EpochGuard, beta_penalty


@dataclass
class CostTerm:
    """λ_t·(T̂ − T_ref)/T_ref + λ_e·(Ê − E_ref)/E_ref with T̂ = Σ softmax(α)·cost (the cost part of the
    cost-loss patent, CN112001491A), plus the budget penalty (issue 10) when a budget is set.

    ``time_us`` / ``energy_uj``: (cells, E, K_max) per-candidate DRAM cost of the stage's candidates;
    the refs are fixed per trial (the uniform-alpha expectation of stage 1) so λ is unit-free and means
    the same across seeds, profiles and stages.

    Budgets are on the network the user ships, so the penalty needs the *derived* network's expected
    cost, not the supernet's: the supernet's T̂ sums all E edges of a cell, while a derived cell keeps 2
    incoming edges per node. ``derived`` estimates it as Σ_edges (2/k_node) · Σ_cands w·cost + fixed,
    where k_node is the number of incoming edges of the edge's node (2, 3, 4, 5 at 4 nodes;
    ``edge_scale`` (E,) holds 2/k) and ``fixed_*`` are the table's choice-independent terms (stem,
    preprocessing, node writes, concats, classifier). With one-hot alphas it is the mean over the node's
    edges of the chosen operators' shares, times 2: exact when the node's edges cost alike, within a few
    percent of ``derived_network_cost`` in general (tests/test_budget.py). Penalty, unit-free:
    ``hinge``: w·relu(C/B − 1) (zero under the budget); ``absolute`` (TuNAS): w·|C/B − 1|.
    """

    time_us: torch.Tensor
    energy_uj: torch.Tensor
    ref_time_us: float
    ref_energy_uj: float
    lambda_time: float
    lambda_energy: float
    # the budget penalty (off unless a budget > 0); stage_cost_term fills these from the config
    edge_scale: torch.Tensor | None = None  # (E,) 2 / incoming edges of the edge's node
    fixed_time_us: float = 0.0
    fixed_energy_uj: float = 0.0
    budget_time_us: float = 0.0  # 0 = off
    budget_energy_uj: float = 0.0  # 0 = off
    budget_weight: float = 0.0
    budget_penalty: str = "hinge"  # hinge | absolute

    def expected(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (weights * self.time_us).sum(), (weights * self.energy_uj).sum()

    def derived(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(time us, energy uJ): the derived network's expected DRAM cost under ``weights`` (cells, E, K)."""
        w = weights if self.edge_scale is None else weights * self.edge_scale[None, :, None]
        return (w * self.time_us).sum() + self.fixed_time_us, (w * self.energy_uj).sum() + self.fixed_energy_uj

    def budget_loss(self, weights: torch.Tensor) -> torch.Tensor:
        """budget_weight x (penalty(T/B_t - 1) + penalty(E/B_e - 1)) over the budgets that are set."""
        out = weights.new_zeros(())
        if self.budget_time_us <= 0 and self.budget_energy_uj <= 0:
            return out
        t, e = self.derived(weights)
        for cost, budget in ((t, self.budget_time_us), (e, self.budget_energy_uj)):
            if budget > 0:
                excess = cost / budget - 1.0
                out = out + (excess.abs() if self.budget_penalty == "absolute" else torch.relu(excess))
        return self.budget_weight * out

    def loss(self, weights: torch.Tensor) -> torch.Tensor:
        t, e = self.expected(weights)
        return (self.lambda_time * (t - self.ref_time_us) / self.ref_time_us
                + self.lambda_energy * (e - self.ref_energy_uj) / self.ref_energy_uj
                + self.budget_loss(weights))


@dataclass
class Supernet:
    """One stage's supernet, ready for ``search_epoch``: what an epoch updates (and a checkpoint saves).

    ``trainables.build_supernet`` makes one; ``space`` names the candidate behind every alpha slot.
    """

    space: ArchSpace
    net: nn.Module
    alpha: torch.Tensor  # (n_sets, E, K_max), requires grad
    mask: torch.Tensor  # (n_sets, E, K_max) bool
    set_of_cell: torch.Tensor  # (cells,) int64
    w_opt: torch.optim.Optimizer
    a_opt: torch.optim.Optimizer
    cost: CostTerm
    compile: bool = False  # run the compiled step (trainables.compiled); build_supernet sets it from config
    joint: bool = False  # config.arch_step resolved: one forward/backward gives both gradients (same batch only)
    compiled: CompiledStep | None = None  # made on the first compiled epoch (one compile per stage's supernet)

    def weights(self) -> torch.Tensor:
        return mixing_weights(self.alpha, self.mask, self.set_of_cell)

    def step_functions(self) -> CompiledStep | None:
        """The compiled losses, or None for the eager step (compile off, or fell back)."""
        if not self.compile:
            return None
        if self.compiled is None:
            self.compiled = compiled_step(self)
        return self.compiled if self.compiled.active else None


class NonFiniteLoss(FloatingPointError):
    """A NaN or infinite loss: the search stops with the stage and epoch in the message."""


def set_lr(opt: torch.optim.Optimizer, epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """Cosine annealing computed from the epoch number (nothing to checkpoint)."""
    value = lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * min(epoch, epochs) / max(epochs, 1)))
    for g in opt.param_groups:
        g["lr"] = value
    return value


def search_epoch(st: Supernet, batches: Iterable, arch_batches: Iterable | None, update_arch: bool,
                 grad_clip: float, guard: EpochGuard | None = None) -> dict[str, torch.Tensor]:
    """One epoch of first-order updates of alpha and the weights. With ``arch_batches`` None alpha learns
    from the same batch as the weights (claim 6): with ``st.joint`` from the same forward and backward
    (``_joint_step``), else in a pass of its own before the weight step (DARTS's order); with a stream,
    alpha steps on its next batch first. ``st.compile``: the losses' forward and backward run compiled
    (``trainables.compiled``), same maths. ``guard``: this epoch's collapse-guard inputs
    (``CollapseGuard.for_epoch``), in every loss."""
    st.net.train()
    dev = st.alpha.device
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    seen = 0
    arch_iter = iter(arch_batches) if arch_batches is not None else None
    joint = update_arch and st.joint and arch_iter is None
    for x, y in batches:
        if joint:
            loss, logits = _joint_step(st, x, y, grad_clip, guard)
        else:
            loss, logits = _alternate_step(st, x, y, arch_iter, update_arch, grad_clip, guard)
        loss_sum += loss.detach() * y.shape[0]
        correct += (logits.argmax(1) == y).sum()
        seen += y.shape[0]
    with torch.no_grad():
        t, e = st.cost.expected(st.weights())
    return {"loss_sum": loss_sum, "correct": correct, "seen": torch.tensor(seen), "time": t, "energy": e}


def _alternate_step(st: Supernet, x: torch.Tensor, y: torch.Tensor, arch_iter, update_arch: bool, grad_clip: float,
                    guard: EpochGuard | None) -> tuple[torch.Tensor, torch.Tensor]:
    """DARTS's order: alpha steps on (x, y) or the arch stream's next batch, then the weights step on
    (x, y) under the new alpha. Returns (CE, logits) of the weight step."""
    if update_arch:
        ax, ay = (x, y) if arch_iter is None else next(arch_iter)
        st.a_opt.zero_grad(set_to_none=True)
        a_loss = _arch_loss(st, ax, ay, guard)
        (grad,) = torch.autograd.grad(a_loss, [st.alpha])
        st.alpha.grad = grad
        st.a_opt.step()
    st.w_opt.zero_grad(set_to_none=True)
    loss, logits = _weight_loss(st, x, y, guard)
    loss.backward()
    nn.utils.clip_grad_norm_(st.net.parameters(), grad_clip, foreach=True)
    st.w_opt.step()
    return loss, logits


def _joint_step(st: Supernet, x: torch.Tensor, y: torch.Tensor, grad_clip: float,
                guard: EpochGuard | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Both updates from one pass: loss = CE(net(x; w(alpha))) + cost(alpha) [+ guard penalty]; its
    backward gives d/d weights (only the CE depends on them: the weight step's gradient) and d/d alpha (the
    architecture step's, at the same weights); SGD steps the weights, Adam the alphas. Returns (CE, logits)."""
    terms, penalty = guard if guard is not None else (None, None)
    st.a_opt.zero_grad(set_to_none=True)
    st.w_opt.zero_grad(set_to_none=True)
    step = st.step_functions()
    out = _call(step, "joint_loss", x, y, terms, penalty) if step is not None else None
    loss, ce, logits = out if out is not None else joint_loss_of(st, x, y, terms, penalty)
    loss.backward()
    nn.utils.clip_grad_norm_(st.net.parameters(), grad_clip, foreach=True)
    st.w_opt.step()
    st.a_opt.step()
    return ce, logits


def _arch_loss(st: Supernet, x: torch.Tensor, y: torch.Tensor, guard: EpochGuard | None = None) -> torch.Tensor:
    """CE + cost term under softmax(alpha) (+ the guard's forward terms and penalty); its gradient is taken
    w.r.t. alpha only."""
    terms, penalty = guard if guard is not None else (None, None)
    step = st.step_functions()
    if step is not None:
        out = _call(step, "arch_loss", x, y, terms, penalty)
        if out is not None:
            return out
    w = st.weights()
    loss = F.cross_entropy(st.net(x, w, terms), y) + st.cost.loss(w)
    return loss if penalty is None else loss + beta_penalty(st.alpha, st.mask, penalty)


def _weight_loss(st: Supernet, x: torch.Tensor, y: torch.Tensor,
                 guard: EpochGuard | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(CE loss, logits (N, classes)) under the current mixing weights, detached (and the guard's terms)."""
    terms = guard.terms if guard is not None else None
    w = st.weights().detach()
    step = st.step_functions()
    if step is not None:
        out = _call(step, "weight_loss", x, y, w, terms)
        if out is not None:
            return out
    logits = st.net(x, w, terms)
    return F.cross_entropy(logits, y), logits


def _call(step: CompiledStep, name: str, *args):
    """``step.<name>(*args)``. Its first call compiles (timed into ``step.compile_seconds``); a failure
    there sends the stage back to eager with one warning (returns None). Later errors are real errors."""
    fn = getattr(step, name)
    if args[0].device.type == "cuda":
        torch.compiler.cudagraph_mark_step_begin()  # CUDA graphs: the previous step's outputs are consumed
    if name in step.compiled:
        return fn(*args)
    t0 = time.perf_counter()
    try:
        out = fn(*args)
    except Exception as exc:  # dynamo / inductor failures have many types; the cause goes in the warning
        lines = str(exc).strip().splitlines()
        step.fall_back(f"{type(exc).__name__}: {lines[0] if lines else ''}")
        return None
    step.compile_seconds += time.perf_counter() - t0
    step.compiled.add(name)
    return out


def train_epoch(net: nn.Module, opt: torch.optim.Optimizer, batches: Iterable, grad_clip: float,
                forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Plain supervised epoch (warm-up of the supernet under fixed weights, or the target network)."""
    net.train()
    forward = forward or net
    dev = next(net.parameters()).device
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    seen = 0
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        logits = forward(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), grad_clip, foreach=True)
        opt.step()
        loss_sum += loss.detach() * y.shape[0]
        correct += (logits.argmax(1) == y).sum()
        seen += y.shape[0]
    return {"loss_sum": loss_sum, "correct": correct, "seen": torch.tensor(seen)}


@torch.no_grad()
def calibrate_bn(net: nn.Module, x: torch.Tensor, batch_size: int = 256, weights: torch.Tensor | None = None) -> None:
    """Re-estimate every BN layer's running mean/var as the exact average over ``x`` (train-mode
    forwards, no weight change), so accuracy reflects the current weights rather than a lagging EMA."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns or x.shape[0] == 0:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    net.train()
    for i in range(0, x.shape[0], batch_size):
        net(x[i:i + batch_size], weights) if weights is not None else net(x[i:i + batch_size])
    for m, mom in zip(bns, saved):
        m.momentum = mom


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
             weights: torch.Tensor | None = None) -> float:
    """Top-1 accuracy in eval mode (BN running statistics)."""
    net.eval()
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for i in range(0, x.shape[0], batch_size):
        logits = net(x[i:i + batch_size], weights) if weights is not None else net(x[i:i + batch_size])
        correct += (logits.argmax(1) == y[i:i + batch_size]).sum()
    return float(correct) / max(1, x.shape[0])


def epoch_summary(m: dict[str, torch.Tensor], phase: str, epoch: int) -> dict[str, float]:
    """The one host sync of an epoch: tensors -> floats, and the NaN/inf check."""
    seen = max(1, int(m["seen"]))
    loss = float(m["loss_sum"]) / seen
    if not math.isfinite(loss):
        raise NonFiniteLoss(f"non-finite loss ({loss}) in {phase} epoch {epoch}: lower lr/arch_lr or the lambdas")
    out = {"train_loss": loss, "train_acc": float(m["correct"]) / seen}
    if "time" in m:
        out["expected_dram_time_us"] = float(m["time"])
        out["expected_dram_energy_uj"] = float(m["energy"])
    return out
