"""Cells and networks: one code path for the supernet and the derived (target) network.

A network is described by ``EdgeSpec``s: per cell, per edge, the tuple of candidate operator names.
The supernet has several candidates per edge (mixed operators weighted by softmax(alpha)); the derived
network has one operator on each kept edge and none on the others, exactly as NNI's
``LayerChoice.freeze``: the same ``Cell`` class, frozen to a choice.

Shapes: a cell takes s0 (N, C_pp, H_pp, H_pp) and s1 (N, C_p, H, H), preprocesses both to
(N, C, H, H), and outputs the concatenation of its intermediate nodes (N, nodes*C, H', H') with
H' = H/2 in reduction cells.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from searchspace.genotype import Genotype, cell_edges
from searchspace.layout import CellPlan, NetworkSpec, plan_cells, stem_channels
from .guard import GuardTerms, dropout
from .modules import FactorizedReduce, build_op

# [cell][edge] -> candidate operator names on that edge (empty = edge absent)
EdgeSpec = list[list[tuple[str, ...]]]


def _after_relu(module: nn.Module):
    """The part of an operator after its leading ReLU (same modules, same state_dict), or None."""
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[0], nn.ReLU):
        return module[1:]
    if isinstance(module, FactorizedReduce):
        return module.forward_after_relu
    return None


class MixedOp(nn.Module):
    """The operators of one edge. ``weights`` (K_max,) mixes them; a single operator runs alone.

    ``shared_relu``: DARTS applies one ReLU per candidate; every candidate that starts with a ReLU
    sees the same relu(x), so it is computed once per edge (identical outputs and gradients, fewer
    kernels; the modules and their state_dict keys stay as the registry builds them).
    """

    def __init__(self, candidates: tuple[str, ...], c: int, stride: int, affine: bool, shared_relu: bool = True,
                 supernet: bool | None = None):
        super().__init__()
        self.candidates = candidates
        # keyed by name so weights carry over from stage 1 to stage 2 by state_dict key;
        # supernet=True: the registry's supernet form (pools + non-affine BN); False: the deployed form;
        # None: supernet form when not affine (the search passes config.supernet_pool_bn explicitly)
        self.ops = nn.ModuleDict({name: build_op(name, c, c, stride, affine, supernet) for name in candidates})
        tails = [_after_relu(m) for m in self.ops.values()] if shared_relu else []
        # plain list (not registered): the tails share the registered modules' parameters
        self._tails = tails if sum(t is not None for t in tails) >= 2 else None
        # collapse guards (trainables.guard): which candidates are parameter-free (skip as identity, the
        # supernet's pools: skip_dropout's targets), and whether the edge keeps its shape (aux_skip's identity)
        self._free = tuple(not any(True for _ in m.parameters()) for m in self.ops.values())
        self._keeps_shape = stride == 1

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None, terms: GuardTerms | None = None) -> torch.Tensor:
        # x: (N, C, H, W); weights: (K_max,) mixing weights or None (derived edge: no guard terms either);
        # terms: the search's collapse-guard inputs (0-dim tensors), None outside the search's steps
        ops = list(self.ops.values())
        if weights is None:
            return ops[0](x)
        if self._tails is None:
            outs = [op(x) for op in ops]
        else:
            xr = torch.relu(x)
            outs = [op(x) if tail is None else tail(xr) for op, tail in zip(ops, self._tails)]
        if terms is not None and terms.drop_rate is not None and self.training:
            outs = [dropout(o, terms.drop_rate) if free else o for o, free in zip(outs, self._free)]
        out = weights[0] * outs[0]
        for k in range(1, len(outs)):
            out = out + weights[k] * outs[k]
        if terms is not None and terms.aux_weight is not None and self._keeps_shape:
            out = out + terms.aux_weight * x  # DARTS-'s auxiliary skip, (N, C, H, W)
        return out


class Cell(nn.Module):
    def __init__(self, plan: CellPlan, edges: list[tuple[str, ...]], nodes: int, affine: bool, shared_relu: bool = True,
                 supernet: bool | None = None):
        super().__init__()
        self.plan, self.nodes = plan, nodes
        if plan.reduction_prev:
            self.preprocess0 = build_op("factorized_reduce", plan.c_prev_prev, plan.c, 2, affine)
        else:
            self.preprocess0 = build_op("relu_conv_bn_1x1", plan.c_prev_prev, plan.c, 1, affine)
        self.preprocess1 = build_op("relu_conv_bn_1x1", plan.c_prev, plan.c, 1, affine)
        self.edge_list = cell_edges(nodes)
        if len(edges) != len(self.edge_list):
            raise ValueError(f"cell {plan.index}: {len(edges)} edge specs for {len(self.edge_list)} edges")
        self.edges = nn.ModuleDict()
        for e, ((src, _dst), cands) in enumerate(zip(self.edge_list, edges)):
            if cands:
                stride = 2 if plan.reduction and src < 2 else 1
                self.edges[str(e)] = MixedOp(cands, plan.c, stride, affine, shared_relu, supernet)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor | None,
                terms: GuardTerms | None = None) -> torch.Tensor:
        # weights: (n_edges, K_max) mixing weights of this cell, or None for a derived cell
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        e = 0
        for dst in range(2, self.nodes + 2):
            acc = None
            for src in range(dst):
                op = self.edges[str(e)] if str(e) in self.edges else None
                if op is not None:
                    y = op(states[src], None if weights is None else weights[e], terms)
                    acc = y if acc is None else acc + y
                e += 1
            if acc is None:
                raise RuntimeError(f"cell {self.plan.index}: node {dst} has no incoming edge")
            states.append(acc)
        return torch.cat(states[2:], dim=1)


class Network(nn.Module):
    """Stem, stacked cells, global pooling and a linear classifier (DARTS's macro structure), of the
    geometry ``spec`` (``searchspace.layout.network_spec``) with the operators ``edge_spec`` names."""

    def __init__(self, edge_spec: EdgeSpec, spec: NetworkSpec, *, affine: bool = True, shared_relu: bool = True,
                 supernet: bool | None = None):
        # supernet: the edge operators' form (pools with or without their BN, see trainables.modules);
        # None = not affine (the search's supernet is non-affine, its derived network affine)
        super().__init__()
        self.spec = spec
        self.plans = plan_cells(spec)
        if len(edge_spec) != spec.layers:
            raise ValueError(f"edge spec has {len(edge_spec)} cells, network has {spec.layers}")
        self.stem = build_op("stem_conv_bn", spec.in_channels, stem_channels(spec), 1, True)
        self.cells = nn.ModuleList(Cell(p, edge_spec[p.index], spec.nodes, affine, shared_relu, supernet)
                                   for p in self.plans)
        self.classifier = build_op("classifier", spec.nodes * self.plans[-1].c, spec.num_classes, 1, True)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None,
                terms: GuardTerms | None = None) -> torch.Tensor:
        # x: (N, in_channels, 32, 32); weights: (layers, n_edges, K_max) per-cell mixing weights or None;
        # terms: the collapse guard's extra inputs during search steps (trainables.guard), else None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, None if weights is None else weights[i], terms)
        return self.classifier(s1)  # (N, num_classes) logits

    def weight_parameters(self):
        return self.parameters()


def derived_edge_spec(genotype: Genotype, nodes: int) -> EdgeSpec:
    index = {e: i for i, e in enumerate(cell_edges(nodes))}
    spec: EdgeSpec = []
    for cell in genotype.cells:
        row: list[tuple[str, ...]] = [() for _ in index]
        for op, src, dst in cell.edges:
            row[index[(src, dst)]] = (op,)
        spec.append(row)
    return spec
