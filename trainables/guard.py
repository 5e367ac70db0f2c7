"""Collapse guards: remedies, inside the search, for skip_connect taking over every edge ("collapse").

A first-order DARTS-like search drifts towards parameter-free operators, skip_connect above all: they
learn nothing, so early in a search they are the cheapest way to lower the loss, and the DRAM cost term
pushes the same way. Derivation caps skips per cell after the fact (``max_skip_per_cell``); a guard acts
while the alphas move. ``config.collapse_guard`` picks one (``benchmarks/collapse_guard.py`` measured them):

* ``aux_skip`` (DARTS-, Chu et al. 2021): an auxiliary identity ``beta * x`` added to every stride-1
  edge's mixed output (every normal-cell edge and the reduction cells' node-to-node edges, where input
  and output shapes agree). It carries the residual path skip_connect otherwise provides, so the alphas
  no longer need skip for that. ``beta`` decays linearly 1 -> 0 over the stage's ``max_epochs`` (0 in the
  last epoch); the derived network never has it (it is built without guard terms).
* ``beta_decay`` (beta-DARTS, Ye et al. 2022): the architecture loss gets
  ``w * mean over edges of logsumexp(alpha_edge)`` (padded slots excluded), ``w`` rising linearly from 0 to
  ``beta_decay_weight`` over the stage's epochs (the paper's schedule). Its gradient is softmax(alpha)/edges:
  it keeps the alphas small and their softmax from saturating early.
* ``skip_dropout`` (P-DARTS, Chen et al. 2019): dropout on the outputs of the parameter-free candidates
  (skip_connect as identity, the supernet's pools) in training mode only, rate
  ``skip_dropout_rate * (E - e - 1) / E`` in epoch e of E (P-DARTS's linear decay: 0 in the last epoch).
* ``early_stop`` (DARTS+, Liang et al. 2019): stage 1 ends once any normal cell's argmax cell (per node the
  two strongest incoming edges, each edge's strongest candidate) holds more than ``max_skip_per_cell``
  skips (more than 2 with no cap). Stage 1 only: in stage 2 a skip edge's derivation score is fixed by
  stage 1 (its group has one operator), so stage 2 can lower a cell's skip count but never raise it.

Every schedule is a function of the epoch index, so a resumed stage behaves as an uninterrupted one; the
per-epoch values enter the losses as tensors (``EpochGuard``), so the compiled step does not recompile.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .arch import ArchSpace

log = logging.getLogger(__name__)

GUARDS = ("none", "aux_skip", "beta_decay", "skip_dropout", "early_stop")  # config.collapse_guard
SKIP = "skip_connect"


class GuardTerms(NamedTuple):
    """What the supernet's forward adds (``Network.forward(x, weights, terms)``): 0-dim tensors or None."""

    aux_weight: torch.Tensor | None = None  # DARTS-: weight of the auxiliary identity on stride-1 edges
    drop_rate: torch.Tensor | None = None  # P-DARTS: dropout rate on parameter-free candidates' outputs


class EpochGuard(NamedTuple):
    """One epoch's guard inputs to ``search_epoch``: the forward's terms and the arch loss's penalty weight."""

    terms: GuardTerms | None = None
    penalty_weight: torch.Tensor | None = None  # beta-DARTS: 0-dim weight of ``beta_penalty``


@dataclass(frozen=True)
class CollapseGuard:
    """A guard and its strengths, with the per-epoch schedules. Build with ``collapse_guard(config)``."""

    kind: str = "none"
    epochs: int = 1  # the stage's max_epochs: the span of every schedule
    beta_decay_weight: float = 0.0
    skip_dropout_rate: float = 0.0
    skip_limit: int = 2  # early_stop: a normal cell with more argmax skips than this ends stage 1

    def __post_init__(self) -> None:
        if self.kind not in GUARDS:
            raise ValueError(f"collapse_guard {self.kind!r}: expected one of {', '.join(GUARDS)}")

    # ------------------------------------------------------------ schedules (epoch: 0-based index)
    def aux_weight(self, epoch: int) -> float:
        """DARTS-'s beta: 1 in the first epoch, linearly down to 0 in the last (``epochs`` 1: 0)."""
        if self.kind != "aux_skip" or self.epochs <= 1:
            return 0.0
        return max(0.0, 1.0 - epoch / (self.epochs - 1))

    def drop_rate(self, epoch: int) -> float:
        """P-DARTS's rate: ``skip_dropout_rate * (E - e - 1) / E`` (0 in the last epoch)."""
        if self.kind != "skip_dropout":
            return 0.0
        return max(0.0, self.skip_dropout_rate * (self.epochs - epoch - 1) / self.epochs)

    def penalty_weight(self, epoch: int) -> float:
        """beta-DARTS's weight: 0 in the first epoch, linearly up to ``beta_decay_weight`` in the last."""
        if self.kind != "beta_decay":
            return 0.0
        return self.beta_decay_weight * (epoch / (self.epochs - 1) if self.epochs > 1 else 1.0)

    def for_epoch(self, epoch: int, device: torch.device | str) -> EpochGuard | None:
        """The tensors ``search_epoch`` passes to the losses in epoch ``epoch``; None for no term."""
        def t(v: float) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.float32, device=device)

        if self.kind == "aux_skip":
            return EpochGuard(terms=GuardTerms(aux_weight=t(self.aux_weight(epoch))))
        if self.kind == "skip_dropout":
            return EpochGuard(terms=GuardTerms(drop_rate=t(self.drop_rate(epoch))))
        if self.kind == "beta_decay":
            return EpochGuard(penalty_weight=t(self.penalty_weight(epoch)))
        return None

    def seed_epoch(self, seed: int, stage: int, epoch: int) -> None:
        """skip_dropout draws its masks from torch's global generator (as inductor's compiled random ops do):
        seeded per (trial seed, stage, epoch), so a resumed epoch draws the masks an uninterrupted one drew.
        The other guards draw nothing and leave the generator alone."""
        if self.kind == "skip_dropout":
            torch.manual_seed((seed * 1000 + stage) * 10_000 + epoch)

    def stops(self, stage: int, space: ArchSpace, alpha: torch.Tensor) -> bool:
        """DARTS+'s early stop: stage 1, some normal cell's argmax holds more than ``skip_limit`` skips."""
        if self.kind != "early_stop" or stage != 1:
            return False
        counts = argmax_cell_skips(space, alpha)
        worst = max((n for s, n in enumerate(counts) if s in normal_sets(space)), default=0)
        if worst > self.skip_limit:
            log.info("early_stop: a normal cell's argmax holds %d skip_connects (> %d): stage %d ends", worst,
                     self.skip_limit, stage)
            return True
        return False


def collapse_guard(config) -> CollapseGuard:
    """The guard ``config`` (a ``SearchConfig``) asks for, spanning its stages' ``max_epochs``."""
    cap = config.max_skip_per_cell
    return CollapseGuard(kind=config.collapse_guard, epochs=config.max_epochs,
                         beta_decay_weight=config.beta_decay_weight, skip_dropout_rate=config.skip_dropout_rate,
                         skip_limit=cap if cap >= 0 else 2)


# ---------------------------------------------------------------- the terms themselves
def beta_penalty(alpha: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """beta-DARTS: ``weight * mean over (set, edge) of logsumexp(alpha[set, edge, valid slots])``.

    alpha, mask: (n_sets, E, K_max); weight: 0-dim. Gradient w.r.t. alpha: weight * softmax(alpha) / (n_sets*E).
    """
    lse = torch.logsumexp(alpha.masked_fill(~mask, float("-inf")), dim=-1)  # (n_sets, E)
    return weight * lse.mean()


def dropout(y: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """Elementwise dropout at a tensor ``rate`` (a rate change is a new input, not a recompile); y: (N, C, H, W)."""
    keep = 1.0 - rate
    return y * (torch.rand_like(y) < keep).to(y.dtype) / keep.clamp_min(1e-6)


# ---------------------------------------------------------------- measuring collapse
def normal_sets(space: ArchSpace) -> set[int]:
    """Alpha sets whose cells are normal cells."""
    return {s for s, red in zip(space.set_of_cell, space.reduction_of_cell) if not red}


def argmax_cell_skips(space: ArchSpace, alpha: torch.Tensor) -> list[int]:
    """Per alpha set: skip_connects in the argmax cell (per node the two incoming edges whose strongest
    candidate has the largest softmax weight, each edge its strongest candidate); no cap applied.

    alpha: (n_sets, E, K_max) architecture parameters (or any logits; the softmax is taken here).
    """
    p = torch.softmax(alpha.detach().float().cpu().masked_fill(~space.mask(), float("-inf")), dim=-1)
    best, arg = p.max(-1)  # (n_sets, E)
    counts = []
    for s, row in enumerate(space.candidates):
        e, n = 0, 0
        for dst in range(2, space.nodes + 2):
            incoming = list(range(e, e + dst))  # edges (src, dst) for src < dst, in cell_edges order
            top = sorted(incoming, key=lambda i: -float(best[s, i]))[:2]
            n += sum(row[i][int(arg[s, i])] == SKIP for i in top)
            e += dst
        counts.append(n)
    return counts
