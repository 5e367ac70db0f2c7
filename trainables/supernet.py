"""A search stage's supernet: built ready for ``search_epoch`` (candidates, cost term, alphas,
optimisers), and trained by the stage's epoch loop.

Public: ``build_supernet`` (what ``run_search`` trains in each stage, and what the step benchmark
times), ``stage_cost_term`` (the DRAM part of the loss), ``edge_table`` (a ``CostTable``, or a cost
callable evaluated into one), ``stage1_space`` / ``stage2_space``,
``supernet_accuracy``, ``search_device``, and ``search_epochs``, claim 6's loop: architecture and
weight updates on the same batches (``arch_step``: joint or alternate) until no edge's strongest
candidate has changed for ``patience`` epochs, or ``max_epochs``. It is a generator yielding
``(progress, metrics)`` after every epoch, so the caller checkpoints and reports between epochs;
resuming is passing back the last ``progress``.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from searchspace.config import SearchConfig
from searchspace.genotype import cell_edges
from searchspace.groups import Groups, parse_groups
from searchspace.layout import CostTable, network_spec, plan_cells

from .arch import ArchSpace, alpha_entropy, argmax_names, make_space, mixing_weights
from .cells import Network
from .compiled import compile_wanted
from .data import Datasets, batches
from .guard import collapse_guard
from .state import Names, PhaseProgress
from .train import CostTerm, Supernet, accuracy, calibrate_bn, epoch_summary, search_epoch, set_lr

# (op, channels, height, stride) -> (time_us, energy_uj): a cost model as a function
CostFn = Callable[[str, int, int, int], tuple[float, float]]


def search_device(config: SearchConfig) -> torch.device:
    """``config.device``: cuda, cpu, or auto (cuda when there is one)."""
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("config device=cuda but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


def memory_format(config: SearchConfig, device: torch.device) -> torch.memory_format:
    """``config.channels_last`` on ``device``: channels_last (on; auto on CPU, where mkldnn's depthwise
    convs and pools vectorise over channels, docs/benchmarks.md "Speed") or NCHW (off; auto on CUDA, not measured)."""
    on = config.channels_last == "on" or (config.channels_last == "auto" and device.type == "cpu")
    return torch.channels_last if on else torch.contiguous_format


def edge_table(config: SearchConfig, cost_table: CostTable | CostFn) -> CostTable:
    """``cost_table`` as the search core's ``CostTable``: as is when it is one (``cost_models``'s
    ``search_cost_table(config)`` is), else a ``CostFn`` evaluated on every edge shape of the supernet."""
    if isinstance(cost_table, CostTable):
        return cost_table
    if callable(cost_table):
        return CostTable.from_fn(network_spec(config), cost_table)
    raise TypeError(f"the search needs a cost table (a searchspace.layout.CostTable such as cost_models' "
                    f"search_cost_table(config), or a callable), not {type(cost_table).__name__}")


def cell_reductions(config: SearchConfig) -> tuple[bool, ...]:
    """Per cell of the search network: is it a reduction cell."""
    return tuple(p.reduction for p in plan_cells(network_spec(config)))


def config_groups(config: SearchConfig) -> Groups:
    """The groups ``config.groups`` names; learned groups have to be learned first (``learn_groups``)."""
    spec = parse_groups(config.groups)
    if not isinstance(spec, Groups):
        raise ValueError(f"groups {config.groups!r} are learned from data: pass groups=learn_groups(config, data, "
                         f"{spec})")
    return spec


def stage1_space(config: SearchConfig, groups: Groups) -> ArchSpace:
    """Claim 3: every edge mixes one representative per group."""
    return make_space(groups.representatives(config.representatives), cell_reductions(config), config.nodes,
                      config.share_alphas)


def stage2_space(config: SearchConfig, groups: Groups, choice: Sequence[Sequence[str]]) -> ArchSpace:
    """Claim 4: edge j of alpha set i mixes every operator of its stage-1 winning group ``choice[i][j]``."""
    return make_space([[groups.ops(g) for g in row] for row in choice], cell_reductions(config), config.nodes,
                      config.share_alphas)


def reference_cost(space: ArchSpace, table: CostTable) -> tuple[float, float]:
    """(T_ref us, E_ref uJ): the expected cost of ``space`` under uniform alphas (the stage-1 space gives
    the trial's reference, so lambda is unit-free)."""
    t = space.cost_tensor(table.time_us, table.candidates)  # (cells, E, K_max)
    e = space.cost_tensor(table.energy_uj, table.candidates)
    uniform = space.mask().float()
    uniform = (uniform / uniform.sum(-1, keepdim=True)).index_select(0, torch.tensor(space.set_of_cell))
    return float((uniform * t).sum()), float((uniform * e).sum())


def stage_cost_term(config: SearchConfig, space: ArchSpace, cost_table: CostTable | CostFn,
                    device: torch.device | str = "cpu",
                    ref: tuple[float, float] | None = None) -> CostTerm:
    """lambda_t (T - T_ref)/T_ref + lambda_e (E - E_ref)/E_ref over ``space``'s candidates. ``ref`` None: the
    uniform-alpha cost of ``space`` itself (right for stage 1; stage 2 passes stage 1's).

    With ``dram_time_budget_us`` / ``dram_energy_budget_uj`` set, also the budget penalty on the derived
    network's expected cost (``CostTerm.derived``): each edge's expectation scaled by 2 / (its node's
    incoming edges), plus the table's fixed terms (``fixed_time_us`` / ``fixed_energy_uj``; a callable
    cost model has none, so its budget covers the edges only)."""
    table = edge_table(config, cost_table)
    t = space.cost_tensor(table.time_us, table.candidates).to(device)
    e = space.cost_tensor(table.energy_uj, table.candidates).to(device)
    ref_t, ref_e = (max(r, 1e-12) for r in (ref if ref is not None else reference_cost(space, table)))
    scale = torch.tensor([2.0 / dst for _src, dst in cell_edges(space.nodes)], device=device)  # (E,)
    return CostTerm(t, e, ref_t, ref_e, config.lambda_time, config.lambda_energy, edge_scale=scale,
                    fixed_time_us=float(table.fixed_time_us), fixed_energy_uj=float(table.fixed_energy_uj),
                    budget_time_us=config.dram_time_budget_us, budget_energy_uj=config.dram_energy_budget_uj,
                    budget_weight=config.budget_weight, budget_penalty=config.budget_penalty)


def build_supernet(config: SearchConfig, cost_table: CostTable | CostFn, stage: int = 1, candidates=None, *,
                   groups: Groups | None = None, device: torch.device | str | None = None,
                   ref: tuple[float, float] | None = None) -> Supernet:
    """The supernet of search stage ``stage`` with equal alphas, ready for ``search_epoch``.

    ``candidates``: stage 1: a tuple of operator names on every edge (default: one representative per
    group); stage 2: ``[alpha set][edge] -> operator names`` (required: the winning groups' operators,
    see ``stage2_space``), or an ``ArchSpace``. ``groups``: default ``config.groups``. ``ref``: the cost
    reference, default the uniform stage-1 cost of these groups (what ``run_search`` uses in both
    stages). Module weights are drawn under seed ``config.seed * 1000 + stage``, as in a trial.
    """
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, not {stage!r}")
    device = torch.device(device) if device is not None else search_device(config)
    if isinstance(candidates, ArchSpace):
        space = candidates
    elif candidates is None:
        if stage == 2:
            raise ValueError("a stage-2 supernet needs candidates: [set][edge] -> the winning group's operators")
        groups = groups or config_groups(config)
        space = stage1_space(config, groups)
    else:
        space = make_space(candidates if isinstance(candidates, tuple) else [list(r) for r in candidates],
                           cell_reductions(config), config.nodes, config.share_alphas)
    table = edge_table(config, cost_table)
    if ref is None:
        ref = reference_cost(space if stage == 1 else stage1_space(config, groups or config_groups(config)), table)
    cost = stage_cost_term(config, space, table, device, ref)
    torch.manual_seed(config.seed * 1000 + stage)  # the stage's fresh modules: the same again on resume
    net = Network(space.edge_spec(), network_spec(config), affine=False, shared_relu=config.fast,
                  supernet=config.supernet_pool_bn).to(device, memory_format=memory_format(config, device))
    mask = space.mask().to(device)  # (n_sets, E, K_max)
    alpha = torch.zeros(mask.shape, device=device, requires_grad=True)  # equal weights at every stage start
    w_opt = torch.optim.SGD(net.parameters(), config.lr, momentum=config.momentum,
                            weight_decay=config.weight_decay, foreach=True)
    a_opt = torch.optim.Adam([alpha], config.arch_lr, betas=(0.5, 0.999), weight_decay=config.arch_weight_decay)
    return Supernet(space=space, net=net, alpha=alpha, mask=mask,
                    set_of_cell=torch.tensor(space.set_of_cell, device=device), w_opt=w_opt, a_opt=a_opt, cost=cost,
                    compile=compile_wanted(config.compile, device), joint=config.joint_arch_step)


STAGE2_STARTS = ("warmup", "copy", "representative")  # config.stage2_start


def warm_start(sn: Supernet, weights: Mapping[str, torch.Tensor], source_of: Mapping[str, str] | None = None) -> int:
    """Stage 2 keeps every module stage 1 trained (same state_dict keys: modules are keyed by operator name,
    same shapes). ``source_of`` (operator -> its group's stage-1 representative) also starts each sibling
    from its representative where the shapes allow: equal shapes are copied, a smaller odd conv kernel is
    centred in a larger one (a 3x3 in a 5x5 with the padding 2 it has computes the same function). Without
    it the siblings stay freshly initialised. Returns how many sibling tensors were initialised that way."""
    own = sn.net.state_dict()
    sn.net.load_state_dict({k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}, strict=False)
    if not source_of:
        return 0
    copied: dict[str, torch.Tensor] = {}
    for key, dst in own.items():
        if key in weights or ".ops." not in key:
            continue
        head, _, tail = key.partition(".ops.")
        op, _, rest = tail.partition(".")
        rep = source_of.get(op)
        src = weights.get(f"{head}.ops.{rep}.{rest}") if rep and rep != op else None
        value = None if src is None else _fit(src, dst)
        if value is not None:
            copied[key] = value
    sn.net.load_state_dict(copied, strict=False)
    return len(copied)


def _fit(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor | None:
    """``src`` as a tensor of ``dst``'s shape: itself, or a conv kernel (O, I, k, k) centred in a larger one."""
    if src.shape == dst.shape:
        return src.clone()
    if src.ndim == 4 and src.shape[:2] == dst.shape[:2] and all(
            d > s_ and (d - s_) % 2 == 0 for s_, d in zip(src.shape[2:], dst.shape[2:])):
        out = torch.zeros_like(dst)
        ph, pw = ((d - s_) // 2 for s_, d in zip(src.shape[2:], dst.shape[2:]))
        out[..., ph:ph + src.shape[2], pw:pw + src.shape[3]] = src
        return out
    return None


def representative_of(groups: Groups, representatives: tuple[str, ...] = ()) -> dict[str, str]:
    """operator -> the stage-1 representative of its group."""
    reps = groups.representatives(representatives)
    return {op: rep for (_name, ops), rep in zip(groups.items, reps) for op in ops}


def supernet_accuracy(config: SearchConfig, sn: Supernet, data: Datasets) -> float:
    """Val accuracy of the supernet under its current mixing weights (BN statistics re-estimated first)."""
    w = mixing_weights(sn.alpha.detach(), sn.mask, sn.set_of_cell)  # (cells, E, K_max)
    calibrate_bn(sn.net, data.train.x[:config.bn_calibration_images], weights=w)
    return accuracy(sn.net, data.val.x, data.val.y, weights=w)


# ---------------------------------------------------------------- the stage's epoch loop
def argmax(sn: Supernet) -> Names:
    """[set][edge] -> the strongest candidate's name."""
    return tuple(tuple(row) for row in argmax_names(sn.space, sn.alpha))


def restore(sn: Supernet, progress: PhaseProgress) -> None:
    """Load the snapshot of a stage interrupted mid-way into a freshly built supernet of that stage."""
    if not progress.started:
        return
    sn.net.load_state_dict(progress.net)
    sn.alpha.data.copy_(progress.alpha.to(sn.alpha.device))
    sn.w_opt.load_state_dict(progress.w_opt)
    sn.a_opt.load_state_dict(progress.a_opt)


def weight_only_epochs(config: SearchConfig, stage: int) -> int:
    """Epochs at the start of a stage that train the weights only: ``warmup_epochs`` in stage 1, and in
    stage 2 too with ``stage2_start: warmup`` (the fresh siblings catch up before the alphas judge them)."""
    return config.warmup_epochs if stage == 1 or config.stage2_start == "warmup" else 0


def stage_arch_lr(config: SearchConfig, stage: int, train_images: int) -> float:
    """The stage's Adam learning rate for the alphas: ``arch_lr``, or with ``arch_travel`` > 0 that distance
    spread over the stage's architecture steps (``max_epochs`` less its weight-only epochs, times the
    batches of ``train_images`` per epoch)."""
    if not config.arch_travel:
        return config.arch_lr
    steps = (config.max_epochs - weight_only_epochs(config, stage)) * max(1, train_images // config.batch_size)
    return config.arch_travel / max(1, steps)


def converged(config: SearchConfig, stage: int, progress: PhaseProgress) -> bool:
    warmup = weight_only_epochs(config, stage)
    return progress.epoch >= config.max_epochs or (progress.epoch >= warmup and progress.stable >= config.patience)


def search_epochs(config: SearchConfig, stage: int, sn: Supernet, data: Datasets, gen: torch.Generator,
                  progress: PhaseProgress) -> Iterator[tuple[PhaseProgress, dict[str, Any]]]:
    """Train ``sn`` (already restored to ``progress``) epoch by epoch until the stage has converged.

    ``gen`` draws the data order and augmentation (and the val stream with ``arch_data: split``); the
    first ``weight_only_epochs(config, stage)`` update the weights only. ``config.collapse_guard``
    (``trainables.guard``) adds its per-epoch terms to both steps' losses, and ``early_stop`` ends stage 1
    before an epoch once a normal cell's argmax is skip-heavy.
    """
    phase = f"stage{stage}"
    warmup = weight_only_epochs(config, stage)
    guard = collapse_guard(config)
    arch_lr = stage_arch_lr(config, stage, len(data.train))
    for group in sn.a_opt.param_groups:  # also after a resume (the optimiser's saved lr is the same)
        group["lr"] = arch_lr
    if progress.prev_argmax is None:
        progress = replace(progress, prev_argmax=argmax(sn))
    def ends(p: PhaseProgress) -> bool:
        # early_stop reads the alphas restored to ``p``, so a resumed stage stops where an uninterrupted one did
        return converged(config, stage, p) or (p.epoch > warmup and guard.stops(stage, sn.space, sn.alpha))

    while not ends(progress):
        t0 = time.perf_counter()
        epoch = progress.epoch
        lr = set_lr(sn.w_opt, epoch, config.max_epochs, config.lr, config.lr_min)
        update_arch = epoch >= warmup
        arch_stream = None
        if config.arch_data == "split":  # claim 6 uses the same batches; DARTS a held-out stream
            arch_stream = itertools.chain.from_iterable(
                batches(data.val, config.batch_size, gen, config.augment) for _ in itertools.count())
        guard.seed_epoch(config.seed, stage, epoch)
        m = search_epoch(sn, batches(data.train, config.batch_size, gen, config.augment), arch_stream,
                         update_arch, config.grad_clip, guard.for_epoch(epoch, sn.alpha.device))
        metrics = {"phase": phase, "epoch": epoch + 1, **epoch_summary(m, phase, epoch + 1), "lr": lr,
                   "arch_lr": arch_lr, "alpha_entropy": float(alpha_entropy(sn.alpha.detach(), sn.mask))}
        now = argmax(sn)
        stable = (progress.stable + 1 if now == progress.prev_argmax else 0) if update_arch else progress.stable
        metrics["stable_epochs"] = stable
        # the val accuracy (a BN re-estimation and a pass over the val split) on the stage's last epoch, where
        # the record reads it, and every val_every epochs if asked: it never steers the search
        if config.measures_val(epoch + 1, last=ends(replace(progress, epoch=epoch + 1, stable=stable))):
            metrics["val_acc"] = supernet_accuracy(config, sn, data)
        progress = PhaseProgress(epoch=epoch + 1, seconds=progress.seconds + time.perf_counter() - t0,
                                 stable=stable, prev_argmax=now, net=sn.net.state_dict(),
                                 alpha=sn.alpha.detach().cpu(), w_opt=sn.w_opt.state_dict(),
                                 a_opt=sn.a_opt.state_dict())
        yield progress, metrics
