"""The two-stage clustered supernet search (CN112561027A) with the DRAM cost loss (CN112001491A).

``run_search`` follows the patent's steps:

  0. search space: candidate operators in groups of one kind (default four, or clustered: claim 2);
  1. stack cells into the stage-1 supernet: on every edge one representative per group (claim 3);
  2. optimise architecture and weights alternately on the same training data until convergence
     (claim 6), the loss being CE + the processor's expected DRAM time/energy (seed 2);
  3. stage 2: edge j of cell i becomes the mixed operator of *all* operators of the group whose
     representative won in stage 1 (claim 4), with fresh equal weights; optimise again;
  4. derive the cell and build the target network from it; train it from scratch, test it, cost it.

Every epoch writes a checkpoint (when given a path) and then calls ``report``; a run resumed from any
checkpoint ends with the same genotype as an uninterrupted run (CPU, same seed).
"""
from __future__ import annotations

import itertools
import logging
import time
from typing import Any, Callable

import numpy as np
import torch

from .arch import ArchSpace, alpha_entropy, argmax_names, derive_genotype, make_space, mixing_weights
from .cells import Network, derived_edge_spec
from searchspace.config import SearchConfig
from .data import Datasets, batches, load_datasets
from searchspace.groups import Groups, parse_groups
from searchspace.genotype import Genotype
from searchspace.layout import expand_genotype, network_instances, network_macs, plan_cells, supernet_edge_shapes
from searchspace.ops import CANDIDATES
from .result import SearchResult, load_checkpoint, save_checkpoint
from .train import CostTerm, SearchState, accuracy, calibrate_bn, epoch_summary, search_epoch, set_lr, train_epoch

log = logging.getLogger(__name__)
Report = Callable[[dict[str, Any]], None]
NetworkCostFn = Callable[[Genotype], Any]  # -> .dram_time_us, .dram_energy_uj, .dram_bytes


class _Unknown:
    dram_time_us = dram_energy_uj = float("nan")
    dram_bytes = 0


_NO_COST = _Unknown()


def run_search(config: SearchConfig, cost_table, report: Report | None = None, checkpoint=None,
               network_cost: NetworkCostFn | None = None) -> SearchResult:
    """One full trial.

    ``cost_table``: what the loss weighs the architecture with: an object with ``candidates``,
    ``time_us`` and ``energy_uj`` ((cells, E, len(candidates)) arrays, e.g.
    ``cost_models.edge_cost_table(config)``) or a callable ``(op, c, h, stride) -> (time_us, energy_uj)``.
    ``network_cost``: the derived genotype -> an object with ``dram_time_us``, ``dram_energy_uj`` and
    ``dram_bytes`` of the network the trial reports (``cost_models.derived_network_cost``); without it
    the result's DRAM fields are NaN. The search core never imports the cost model itself.
    """
    t_start = time.perf_counter()
    device = _device(config)
    state = load_checkpoint(checkpoint, config) or {"phase": "stage1", "phase_seconds": {}, "history": []}
    if state["phase"] != "stage1" or state.get("epoch"):
        log.info("resuming from %s at %s epoch %d", checkpoint, state["phase"], state.get("epoch", 0))
    torch.manual_seed(config.seed)
    data = load_datasets(config, device)
    plans = plan_cells(config.layers, config.channels, config.nodes, config.image_size, config.stem_multiplier)
    reductions = tuple(p.reduction for p in plans)
    table = _cost_table(config, plans, cost_table)
    gen = torch.Generator().manual_seed(config.seed)  # the data order / augmentation stream

    state.setdefault("wall", 0.0)  # wall seconds spent by earlier (interrupted) runs of this trial

    def emit(metrics: dict[str, Any]) -> None:
        state["history"].append(metrics)
        metrics = dict(metrics, seconds=state["wall"] + time.perf_counter() - t_start)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {**state, "config": config.to_dict(), "gen": gen.get_state(),
                                         "wall": metrics["seconds"]})
        log.info("%s epoch %d: %s", metrics["phase"], metrics["epoch"],
                 ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
        if report is not None:
            report(dict(metrics))

    if "gen" in state:
        gen.set_state(state.pop("gen"))

    # step 0: the groups of candidate operators
    if "groups" not in state:
        spec = parse_groups(config.groups)
        groups = spec if isinstance(spec, Groups) else _learn_groups(config, data, spec, device)
        state["groups"] = groups.to_dict()
    groups = Groups.from_dict(state["groups"])

    # steps 1-2: stage 1, one representative per group on every edge
    reps = groups.representatives(config.representatives)
    space1 = make_space(reps, reductions, config.nodes, config.share_alphas)
    cost1 = _stage_cost(config, space1, table, device, ref=None)
    state.setdefault("ref", (cost1.ref_time_us, cost1.ref_energy_uj))
    if state["phase"] == "stage1":
        st = _run_stage(config, 1, space1, cost1, data, gen, device, state, emit)
        probs = mixing_weights(st.alpha.detach(), st.mask, torch.arange(st.alpha.shape[0], device=device))
        winners = argmax_names(space1, st.alpha)
        state["stage1"] = {
            "choice": [[groups.group_of(op) for op in row] for row in winners],
            "strength": probs.max(-1).values.cpu().numpy(),
            "epochs": state["epoch"],
            "net": st.net.state_dict(),
        }
        state.update(phase="stage2", epoch=0, net=None, alpha=None)
        state["phase_seconds"]["stage1"] = state.pop("phase_elapsed", 0.0)

    # step 3: stage 2, edge j of cell i holds all operators of its stage-1 winning group
    s1 = state["stage1"]
    space2 = make_space([[groups.ops(g) for g in row] for row in s1["choice"]], reductions, config.nodes,
                        config.share_alphas)
    cost2 = _stage_cost(config, space2, table, device, ref=state["ref"])
    if state["phase"] == "stage2":
        st = _run_stage(config, 2, space2, cost2, data, gen, device, state, emit, warm_from=s1["net"])
        probs2 = mixing_weights(st.alpha.detach(), st.mask, torch.arange(st.alpha.shape[0], device=device))
        genotype = derive_genotype(space2, probs2.cpu().numpy(), s1["strength"], config.max_skip_per_cell)
        sets = torch.tensor(space2.set_of_cell, device=device)
        state.update(
            genotype=genotype.to_dict(), stage2_epochs=state["epoch"],
            supernet_accuracy=_supernet_accuracy(config, st, data, sets),
            phase="eval", epoch=0, net=None, alpha=None)
        state["phase_seconds"]["stage2"] = state.pop("phase_elapsed", 0.0)

    # step 4: the target network, built from the genotype with the same cell code, trained from scratch
    genotype = Genotype.from_dict(state["genotype"])
    test_acc, target = _train_target(config, genotype, data, gen, device, state, emit)
    state["phase_seconds"]["eval"] = state.pop("phase_elapsed", 0.0)
    layers, channels = config.eval_layers or config.layers, config.eval_channels or config.channels
    instances = network_instances(expand_genotype(genotype, layers),
                                  plan_cells(layers, channels, config.nodes, config.image_size, config.stem_multiplier),
                                  config.nodes, config.in_channels, config.image_size, config.num_classes,
                                  config.stem_multiplier)
    net_cost = network_cost(genotype) if network_cost is not None else _NO_COST
    return SearchResult(
        config=config, genotype=genotype, groups=state["groups"],
        stage1_choice=[s1["choice"][s] for s in space2.set_of_cell],
        stage2_candidates=[[list(c) for c in row] for row in space2.edge_spec()],
        stage1_epochs=int(s1["epochs"]), stage2_epochs=int(state["stage2_epochs"]),
        supernet_accuracy=float(state["supernet_accuracy"]), accuracy=test_acc,
        params=sum(p.numel() for p in target.parameters()), flops=network_macs(instances),
        skip_counts=genotype.skip_counts(), dram_time_us=float(net_cost.dram_time_us),
        dram_energy_uj=float(net_cost.dram_energy_uj), dram_bytes=int(net_cost.dram_bytes),
        seconds=state["wall"] + time.perf_counter() - t_start, phase_seconds=dict(state["phase_seconds"]),
        history=list(state["history"]))


def _run_stage(config: SearchConfig, stage: int, space: ArchSpace, cost: CostTerm, data: Datasets,
               gen: torch.Generator, device: torch.device, state: dict, emit, warm_from=None) -> SearchState:
    """Alternate architecture and weight updates until every edge's argmax is unchanged for
    ``patience`` epochs, or ``max_epochs``."""
    torch.manual_seed(config.seed * 1000 + stage)  # the stage's fresh modules: same on resume
    st = _build_state(config, space, cost, device)
    if state.get("net") is not None:  # resuming mid-stage
        st.net.load_state_dict(state["net"])
        st.alpha.data.copy_(state["alpha"].to(device))
        st.w_opt.load_state_dict(state["w_opt"])
        st.a_opt.load_state_dict(state["a_opt"])
    elif warm_from is not None:  # stage 2 keeps every module stage 1 trained (same state_dict keys)
        own = st.net.state_dict()
        st.net.load_state_dict({k: v for k, v in warm_from.items() if k in own and own[k].shape == v.shape}, strict=False)
    state.setdefault("epoch", 0)
    state.setdefault("stable", 0)
    state.setdefault("prev_argmax", argmax_names(space, st.alpha))
    phase = f"stage{stage}"
    warmup = config.warmup_epochs if stage == 1 else 0
    sets = torch.tensor(space.set_of_cell, device=device)
    while state["epoch"] < config.max_epochs and not (state["epoch"] >= warmup and state["stable"] >= config.patience):
        t0 = time.perf_counter()
        epoch = state["epoch"]
        lr = set_lr(st.w_opt, epoch, config.max_epochs, config.lr, config.lr_min)
        update_arch = epoch >= warmup
        arch_stream = None
        if config.arch_data == "split":
            arch_stream = itertools.chain.from_iterable(
                batches(data.val, config.batch_size, gen, config.augment) for _ in itertools.count())
        m = search_epoch(st, batches(data.train, config.batch_size, gen, config.augment), arch_stream,
                         update_arch, config.grad_clip)
        metrics = {"phase": phase, "epoch": epoch + 1, **epoch_summary(m, phase, epoch + 1), "lr": lr,
                   "val_acc": _supernet_accuracy(config, st, data, sets),
                   "alpha_entropy": float(alpha_entropy(st.alpha.detach(), st.mask))}
        now = argmax_names(space, st.alpha)
        if update_arch:
            state["stable"] = state["stable"] + 1 if now == state["prev_argmax"] else 0
        state["prev_argmax"] = now
        metrics["stable_epochs"] = state["stable"]
        state.update(epoch=epoch + 1, net=st.net.state_dict(), alpha=st.alpha.detach().cpu(),
                     w_opt=st.w_opt.state_dict(), a_opt=st.a_opt.state_dict(),
                     phase_elapsed=state.get("phase_elapsed", 0.0) + time.perf_counter() - t0)
        emit(metrics)
    state.pop("stable", None)
    state.pop("prev_argmax", None)
    return st


def _supernet_accuracy(config: SearchConfig, st: SearchState, data: Datasets, sets: torch.Tensor) -> float:
    """Validation accuracy of the supernet under the current mixing weights (BN re-estimated first)."""
    w = mixing_weights(st.alpha.detach(), st.mask, sets)
    calibrate_bn(st.net, data.train.x[:config.bn_calibration_images], weights=w)
    return accuracy(st.net, data.val.x, data.val.y, weights=w)


def _build_state(config: SearchConfig, space: ArchSpace, cost: CostTerm, device: torch.device) -> SearchState:
    net = Network(space.edge_spec(), layers=config.layers, channels=config.channels, nodes=config.nodes,
                  in_channels=config.in_channels, image_size=config.image_size, num_classes=config.num_classes,
                  stem_multiplier=config.stem_multiplier, affine=False, shared_relu=config.fast).to(device)
    mask = space.mask().to(device)
    alpha = torch.zeros(mask.shape, device=device, requires_grad=True)  # equal weights at every stage start
    w_opt = torch.optim.SGD(net.parameters(), config.lr, momentum=config.momentum,
                            weight_decay=config.weight_decay, foreach=True)
    a_opt = torch.optim.Adam([alpha], config.arch_lr, betas=(0.5, 0.999), weight_decay=config.arch_weight_decay)
    return SearchState(net, alpha, mask, torch.tensor(space.set_of_cell, device=device), w_opt, a_opt, cost)


def _train_target(config: SearchConfig, genotype, data: Datasets, gen: torch.Generator, device, state: dict, emit):
    layers, channels = config.eval_layers or config.layers, config.eval_channels or config.channels
    torch.manual_seed(config.seed * 1000 + 3)
    net = Network(derived_edge_spec(expand_genotype(genotype, layers), config.nodes), layers=layers,
                  channels=channels, nodes=config.nodes, in_channels=config.in_channels,
                  image_size=config.image_size, num_classes=config.num_classes,
                  stem_multiplier=config.stem_multiplier, affine=True).to(device)
    opt = torch.optim.SGD(net.parameters(), config.eval_lr, momentum=0.9, weight_decay=3e-4, foreach=True)
    if state.get("net") is not None:
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["w_opt"])
    while state["phase"] == "eval" and state["epoch"] < config.eval_epochs:
        t0 = time.perf_counter()
        epoch = state["epoch"]
        lr = set_lr(opt, epoch, config.eval_epochs, config.eval_lr, 1e-4)
        m = train_epoch(net, opt, batches(data.eval_train, config.eval_batch_size, gen, config.augment),
                        config.grad_clip)
        calibrate_bn(net, data.eval_train.x[:config.bn_calibration_images])
        metrics = {"phase": "eval", "epoch": epoch + 1, **epoch_summary(m, "eval", epoch + 1), "lr": lr,
                   "val_acc": accuracy(net, data.val.x, data.val.y)}
        state.update(epoch=epoch + 1, net=net.state_dict(), w_opt=opt.state_dict(),
                     phase_elapsed=state.get("phase_elapsed", 0.0) + time.perf_counter() - t0)
        emit(metrics)
    calibrate_bn(net, data.eval_train.x[:config.bn_calibration_images])  # also after a resume at the end
    return accuracy(net, data.test.x, data.test.y), net


def _learn_groups(config: SearchConfig, data: Datasets, k: int, device: torch.device) -> Groups:
    """Claim 2: cluster the operators by how alike their outputs are on one batch, after a short
    weight-only warm-up of a uniform supernet holding every candidate on every edge."""
    from searchspace.groups import cluster_operators

    torch.manual_seed(config.seed * 1000)
    reductions = tuple(p.reduction for p in plan_cells(config.layers, config.channels, config.nodes,
                                                        config.image_size, config.stem_multiplier))
    space = make_space(CANDIDATES, reductions, config.nodes, share=True)
    net = Network(space.edge_spec(), layers=config.layers, channels=config.channels, nodes=config.nodes,
                  in_channels=config.in_channels, image_size=config.image_size, num_classes=config.num_classes,
                  stem_multiplier=config.stem_multiplier, affine=False,
                  shared_relu=False).to(device)  # the hooks below need every op's own forward
    w = torch.full((config.layers, space.n_edges, len(CANDIDATES)), 1.0 / len(CANDIDATES), device=device)
    opt = torch.optim.SGD(net.parameters(), config.lr, momentum=config.momentum)
    g = torch.Generator().manual_seed(config.seed)
    steps = itertools.islice(itertools.chain.from_iterable(
        batches(data.train, config.batch_size, g, False) for _ in itertools.count()), config.learned_warmup_steps)
    train_epoch(net, opt, steps, config.grad_clip, forward=lambda x: net(x, w))
    outputs: dict[int, list[torch.Tensor]] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o: outputs.setdefault(id(mod), []).append(o.detach().flatten(1)))
             for cell in net.cells for mixed in cell.edges.values() for m in mixed.ops.values()]
    net.eval()
    with torch.no_grad():
        net(data.train.x[:config.batch_size], w)
    for h in hooks:
        h.remove()
    sim = np.zeros((len(CANDIDATES), len(CANDIDATES)))
    n_edges = 0
    for cell in net.cells:
        for mixed in cell.edges.values():
            outs = torch.stack([outputs[id(m)][0] for m in mixed.ops.values()])  # (K, N, C*H*W)
            outs = torch.nn.functional.normalize(outs, dim=-1)
            sim += torch.einsum("anf,bnf->ab", outs, outs).cpu().numpy() / outs.shape[1]
            n_edges += 1
    groups = cluster_operators(sim / max(1, n_edges), CANDIDATES, k)
    log.info("learned %d groups: %s", k, groups.to_dict())
    return groups


def _stage_cost(config: SearchConfig, space: ArchSpace, table, device, ref) -> CostTerm:
    t = space.cost_tensor(table.time_us, table.candidates).to(device)
    e = space.cost_tensor(table.energy_uj, table.candidates).to(device)
    if ref is None:  # the uniform-alpha expectation of this (stage-1) space: the trial's fixed reference
        uniform = space.mask().float()
        uniform = (uniform / uniform.sum(-1, keepdim=True)).index_select(0, torch.tensor(space.set_of_cell)).to(device)
        ref = (float((uniform * t).sum()), float((uniform * e).sum()))
    ref_t, ref_e = (max(r, 1e-12) for r in ref)
    return CostTerm(t, e, ref_t, ref_e, config.lambda_time, config.lambda_energy)


class _Table:
    def __init__(self, candidates, time_us, energy_uj):
        self.candidates, self.time_us, self.energy_uj = tuple(candidates), np.asarray(time_us), np.asarray(energy_uj)


def _cost_table(config: SearchConfig, plans, cost_table):
    if cost_table is None:
        raise TypeError("run_search needs a cost table (cost_models.edge_cost_table(config), or a callable)")
    if callable(cost_table):
        shapes = supernet_edge_shapes(plans, config.nodes)
        arr = np.array([[[cost_table(op, c, h, s) for op in CANDIDATES] for (c, h, _w, s) in row] for row in shapes],
                       dtype=np.float64)  # (cells, E, ops, 2)
        return _Table(CANDIDATES, arr[..., 0], arr[..., 1])
    return cost_table


def _device(config: SearchConfig) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("config device=cuda but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")
