"""The two-stage clustered supernet search (CN112561027A) with the DRAM cost loss (CN112001491A).

``run_search`` is one trial, the patent's steps in order, each a function over the typed
``SearchState`` (a phase already done is a no-op, which is how a resumed trial skips it):

  0. ``choose_groups``: candidate operators in groups of one kind (default four, or learned: claim 2);
  1. ``search_stage1``: the stage-1 supernet holds one representative per group on every edge
     (claim 3); architecture and weights are each optimised on the same data (one joint step, or
     ``arch_step: alternate``) until the argmax is stable (claim 6), the loss being CE + the
     processor's expected DRAM time/energy (the cost-loss patent, CN112001491A);
  2. ``search_stage2``: edge j of cell i becomes the mixed operator of *all* operators of the group
     whose representative won in stage 1 (claim 4), fresh equal alphas, trained modules kept, the
     siblings started fairly (``stage2_start``: copied from the representative, or a weight-only warm-up);
  3. ``derive``: per node the two edges with the highest stage-1 group weight x stage-2 operator weight,
     per edge the strongest operator, at most ``max_skip_per_cell`` skips (``arch.derive_genotype``);
  4. ``train_target_network``: the target network from the genotype, trained from scratch under each of
     ``eval_seeds`` training seeds and tested; the trial's accuracy is their mean.

Every epoch writes a checkpoint (when given a path) and then calls ``report``; a run resumed from any
checkpoint ends with the same genotype as an uninterrupted run (CPU, same seed).
"""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch

from searchspace.config import SearchConfig
from searchspace.genotype import Genotype
from searchspace.layout import EVALUATION, expand_genotype, network_instances, network_macs, network_spec

from .arch import derive_genotype, mixing_weights, stage1_alternatives
from .clustering import search_groups
from .data import Datasets, load_datasets
from .result import SearchResult
from .state import PhaseProgress, SearchState, Stage1Outcome, Stage2Outcome, load_checkpoint, save_checkpoint
from .supernet import (argmax, build_supernet, edge_table, reference_cost, restore, search_device, search_epochs,
                       representative_of, stage1_space, stage2_space, supernet_accuracy, warm_start)
from .target import TargetRun, build_target, eval_generator, final_accuracy, target_epochs

log = logging.getLogger(__name__)
Report = Callable[[dict[str, Any]], None]
NetworkCostFn = Callable[[Genotype], Any]  # -> .dram_time_us, .dram_energy_uj, .dram_bytes


class _Unknown:
    dram_time_us = dram_energy_uj = float("nan")
    dram_bytes = 0


def run_search(config: SearchConfig, cost_table, report: Report | None = None, checkpoint=None,
               network_cost: NetworkCostFn | None = None) -> SearchResult:
    """One full trial.

    ``cost_table``: what the loss weighs the architecture with: a ``searchspace.layout.CostTable``
    ((cells, E, len(candidates)) arrays, e.g. ``cost_models.search_cost_table(config)``) or a callable
    ``(op, c, h, stride) -> (time_us, energy_uj)``.
    ``checkpoint``: a file resumed from if it exists and rewritten after every epoch.
    ``network_cost``: the derived genotype -> an object with ``dram_time_us``, ``dram_energy_uj`` and
    ``dram_bytes`` of the network the trial reports (``cost_models.derived_network_cost``); without it
    the result's DRAM fields are NaN. The search core never imports the cost model itself.
    """
    t_start = time.perf_counter()
    table = edge_table(config, cost_table)
    device = search_device(config)
    state = load_checkpoint(checkpoint, config) or SearchState()
    if state.resumed:
        log.info("resuming from %s at %s epoch %d", checkpoint, state.phase, state.progress.epoch)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)  # the data order / augmentation stream
    if state.rng is not None:
        gen.set_state(state.rng)
    trial = Trial(config, load_datasets(config, device), table, device, gen, report, checkpoint,
                  started=t_start - state.wall)

    state = choose_groups(trial, state)
    state = search_stage1(trial, state)
    state = search_stage2(trial, state)
    state = derive(config, state)
    state, target = train_target_network(trial, state)
    return _result(trial, state, target, network_cost)


@dataclass(frozen=True, eq=False)
class Trial:
    """What every step of one trial reads: its config, data, cost table and streams (not checkpointed:
    rebuilt identically on resume, except ``gen``'s position, which the state carries)."""

    config: SearchConfig
    data: Datasets
    table: Any  # .candidates, .time_us, .energy_uj: (cells, E, len(candidates))
    device: torch.device
    gen: torch.Generator  # CPU: data order, augmentation, the val stream
    report: Report | None
    checkpoint: Any  # path or None
    started: float  # perf_counter() of the trial's start, earlier runs' wall time included

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def record(self, state: SearchState, progress: PhaseProgress, metrics: dict[str, Any]) -> SearchState:
        """After an epoch: the new state, checkpointed, then reported (a report that raises finds the
        checkpoint already written)."""
        seconds = self.seconds()
        state = replace(state.after_epoch(progress, metrics), wall=seconds, rng=self.gen.get_state())
        if self.checkpoint is not None:
            save_checkpoint(self.checkpoint, state, self.config)
        log.info("%s epoch %d: %s", metrics["phase"], metrics["epoch"],
                 ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
        if self.report is not None:
            self.report(dict(metrics, seconds=seconds))
        return state


def choose_groups(trial: Trial, state: SearchState) -> SearchState:
    """Step 0: ``config.groups`` as given, or learned from the training data (``learned:K``)."""
    if state.groups is not None:
        return state
    return replace(state, groups=search_groups(trial.config, trial.data))


def search_stage1(trial: Trial, state: SearchState) -> SearchState:
    """Steps 1-2: one representative per group on every edge, trained until the argmax is stable; the
    outcome is each edge's winning group and how clearly it won."""
    if state.phase != "stage1":
        return state
    config = trial.config
    space = stage1_space(config, state.groups)
    if state.ref is None:  # the uniform-alpha cost of this space: the trial's fixed reference
        state = replace(state, ref=reference_cost(space, trial.table))
    sn = build_supernet(config, trial.table, 1, space, device=trial.device, ref=state.ref)
    restore(sn, state.progress)
    for progress, metrics in search_epochs(config, 1, sn, trial.data, trial.gen, state.progress):
        state = trial.record(state, progress, metrics)
    sets = torch.arange(sn.alpha.shape[0], device=sn.alpha.device)
    probs = mixing_weights(sn.alpha.detach(), sn.mask, sets)  # (n_sets, E, K_max)
    outcome = Stage1Outcome(choice=tuple(tuple(state.groups.group_of(op) for op in row) for row in argmax(sn)),
                            strength=probs.max(-1).values.cpu(), epochs=state.progress.epoch,
                            net=sn.net.state_dict(), weight=probs.cpu())
    return state.next_phase("stage2", stage1=outcome)


def search_stage2(trial: Trial, state: SearchState) -> SearchState:
    """Step 3: every operator of each edge's winning group, equal alphas, stage 1's modules kept (and with
    ``stage2_start: copy`` every sibling started from its representative); trained until the argmax is stable. The outcome is the final mixing weights and the supernet's accuracy."""
    if state.phase != "stage2":
        return state
    config = trial.config
    space = stage2_space(config, state.groups, state.stage1.choice)
    sn = build_supernet(config, trial.table, 2, space, device=trial.device, ref=state.ref)
    if state.progress.started:
        restore(sn, state.progress)
    else:  # stage2_start copy: siblings start as their representative; otherwise fresh
        source = representative_of(state.groups, config.representatives) if config.stage2_start == "copy" else None
        warm_start(sn, state.stage1.net, source)
    val_acc = None  # the last epoch's: measured on the final weights already (a resumed, finished stage: none)
    for progress, metrics in search_epochs(config, 2, sn, trial.data, trial.gen, state.progress):
        state = trial.record(state, progress, metrics)
        val_acc = metrics.get("val_acc")
    sets = torch.arange(sn.alpha.shape[0], device=sn.alpha.device)
    outcome = Stage2Outcome(op_weight=mixing_weights(sn.alpha.detach(), sn.mask, sets).cpu(),
                            epochs=state.progress.epoch,
                            supernet_accuracy=supernet_accuracy(config, sn, trial.data) if val_acc is None else val_acc)
    return state.next_phase("eval", stage2=outcome)


def derive(config: SearchConfig, state: SearchState) -> SearchState:
    """Step 4: the genotype: per node the two edges scoring highest under ``derive_rank`` (default: stage-1
    group weight x stage-2 operator weight relative to uniform), per edge the strongest stage-2 operator,
    at most ``max_skip_per_cell`` skip_connects per cell (an edge the cap excludes takes its next-strongest
    stage-1 group)."""
    if state.genotype is not None:
        return state
    space = stage2_space(config, state.groups, state.stage1.choice)
    op_weight = state.stage2.op_weight.numpy()
    alternatives = None  # a checkpoint from before stage-1 weights were kept: no fallback groups
    if state.stage1.weight is not None:
        alternatives = stage1_alternatives(stage1_space(config, state.groups), state.stage1.weight.numpy(),
                                           state.groups, space, op_weight)
    genotype = derive_genotype(space, op_weight, state.stage1.strength.numpy(), config.max_skip_per_cell,
                               alternatives=alternatives, rank=config.derive_rank)
    return replace(state, genotype=genotype)


def train_target_network(trial: Trial, state: SearchState) -> tuple[SearchState, TargetRun]:
    """Step 5: the genotype's network trained from scratch and tested, once per training seed
    (``eval_seeds``): seed 0 continues the trial's data stream (the single-seed protocol), seed k >= 1 has
    its own init and data order (``target.eval_seed_streams``). Each finished seed's accuracy goes into the
    state, so a trial killed during seed k resumes there. Returns the last seed's run (same parameters)."""
    config = trial.config
    run = None  # a checkpoint never holds every seed's accuracy: the last is recorded after its last epoch
    for k in range(len(state.eval_accuracies), config.eval_seeds):  # k: the training seed in progress
        # seed k >= 1 resumed mid-way: its stream is the one run_search restored (state.rng); fresh: its own
        gen = trial.gen if k == 0 or state.progress.started else eval_generator(config, k)
        seed_trial = replace(trial, gen=gen)
        net, opt = build_target(config, state.genotype, trial.device, eval_seed=k)
        for progress, metrics in target_epochs(config, net, opt, trial.data, gen, state.progress):
            state = seed_trial.record(state, progress, dict(metrics, eval_seed=k))
        run = TargetRun(final_accuracy(config, net, trial.data), net)
        seconds = state.phase_seconds.get("eval", 0.0) + state.progress.seconds
        state = replace(state, eval_accuracies=state.eval_accuracies + (run.accuracy,), progress=PhaseProgress(),
                        phase_seconds={**state.phase_seconds, "eval": seconds})
        if config.eval_seeds > 1:
            log.info("eval seed %d of %d: accuracy %.4f", k + 1, config.eval_seeds, run.accuracy)
    return state, run


def eval_summary(accuracies: tuple[float, ...]) -> tuple[float, float | None]:
    """(mean, sample std with ddof=1 or None for one seed) of the training seeds' accuracies; one seed's
    mean is its accuracy exactly."""
    if len(accuracies) == 1:
        return float(accuracies[0]), None
    return statistics.fmean(accuracies), statistics.stdev(accuracies)


def _result(trial: Trial, state: SearchState, target: TargetRun, network_cost: NetworkCostFn | None) -> SearchResult:
    config, genotype, s1, s2 = trial.config, state.genotype, state.stage1, state.stage2
    space2 = stage2_space(config, state.groups, s1.choice)
    spec = network_spec(config, EVALUATION)
    instances = network_instances(expand_genotype(genotype, spec.layers), spec)
    net_cost = network_cost(genotype) if network_cost is not None else _Unknown()
    accuracy, accuracy_std = eval_summary(state.eval_accuracies)
    return SearchResult(
        config=config, genotype=genotype, groups=state.groups.to_dict(),
        stage1_choice=[list(s1.choice[s]) for s in space2.set_of_cell],
        stage2_candidates=[[list(c) for c in row] for row in space2.edge_spec()],
        stage1_epochs=s1.epochs, stage2_epochs=s2.epochs,
        supernet_accuracy=float(s2.supernet_accuracy), accuracy=accuracy, accuracy_std=accuracy_std,
        eval_accuracies=tuple(state.eval_accuracies),
        params=sum(p.numel() for p in target.net.parameters()), flops=network_macs(instances),
        skip_counts=genotype.skip_counts(), dram_time_us=float(net_cost.dram_time_us),
        dram_energy_uj=float(net_cost.dram_energy_uj), dram_bytes=int(net_cost.dram_bytes),
        seconds=trial.seconds(), phase_seconds=dict(state.phase_seconds), history=list(state.history))
