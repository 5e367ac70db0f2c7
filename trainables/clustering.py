"""Step 0, claim 2: operator groups learned from data (``groups: learned:K``).

Every candidate sits on every edge of a uniform supernet; after a short weight-only warm-up and a BN
re-calibration (``bn_calibration_images``), each operator's eval-mode output on one batch is compared
with the others' on the same edge of the *normal* cells (cosine similarity, averaged over edges; a
reduction edge's skip is a factorized reduce, another operator) and the operators are clustered into
K groups (average linkage). ``benchmarks/group_stability.py`` measures how much the groups move with
the seed (adjusted Rand index).
"""
from __future__ import annotations

import itertools
import logging

import numpy as np
import torch

from searchspace.config import SearchConfig
from searchspace.groups import Groups, cluster_operators, parse_groups
from searchspace.layout import network_spec
from searchspace.ops import CANDIDATES

from .arch import make_space
from .cells import Network
from .data import Datasets, batches
from .supernet import cell_reductions
from .train import calibrate_bn, train_epoch

log = logging.getLogger(__name__)


def search_groups(config: SearchConfig, data: Datasets) -> Groups:
    """The groups ``config.groups`` names, learning them from ``data`` for ``learned:K``."""
    spec = parse_groups(config.groups)
    return spec if isinstance(spec, Groups) else learn_groups(config, data, spec)


def learn_groups(config: SearchConfig, data: Datasets, k: int) -> Groups:
    """``k`` groups of ``CANDIDATES`` by output similarity, on ``data``'s device (seeded by ``config.seed``)."""
    device = data.train.x.device
    torch.manual_seed(config.seed * 1000)
    space = make_space(CANDIDATES, cell_reductions(config), config.nodes, share=True)
    net = Network(space.edge_spec(), network_spec(config), affine=False, supernet=config.supernet_pool_bn,
                  shared_relu=False).to(device)  # the hooks below need every op's own forward
    w = torch.full((config.layers, space.n_edges, len(CANDIDATES)), 1.0 / len(CANDIDATES), device=device)
    opt = torch.optim.SGD(net.parameters(), config.lr, momentum=config.momentum)
    g = torch.Generator().manual_seed(config.seed)  # its own stream: the search's data order is untouched
    steps = itertools.islice(itertools.chain.from_iterable(
        batches(data.train, config.batch_size, g, False) for _ in itertools.count()), config.learned_warmup_steps)
    train_epoch(net, opt, steps, config.grad_clip, forward=lambda x: net(x, w))

    # BN running statistics re-estimated for the warmed-up weights (20 steps leave the EMA lagging), so the
    # eval-mode features compared below are what the operators compute, not stale normalisation
    calibrate_bn(net, data.train.x[:max(config.bn_calibration_images, config.batch_size)], weights=w)
    # stride-2 edges run other operators (a skip is a factorized reduce); a network of reductions only has no choice
    normal = [cell for cell in net.cells if not cell.plan.reduction] or list(net.cells)
    outputs: dict[int, list[torch.Tensor]] = {}  # id(op module) -> [(N, C*H*W)]
    hooks = [m.register_forward_hook(lambda mod, i, o: outputs.setdefault(id(mod), []).append(o.detach().flatten(1)))
             for cell in normal for mixed in cell.edges.values() for m in mixed.ops.values()]
    net.eval()
    with torch.no_grad():
        net(data.train.x[:config.batch_size], w)
    for h in hooks:
        h.remove()

    sim = np.zeros((len(CANDIDATES), len(CANDIDATES)))
    n_edges = 0
    for cell in normal:
        for mixed in cell.edges.values():
            outs = torch.stack([outputs[id(m)][0] for m in mixed.ops.values()])  # (K, N, C*H*W)
            outs = torch.nn.functional.normalize(outs, dim=-1)
            sim += torch.einsum("anf,bnf->ab", outs, outs).cpu().numpy() / outs.shape[1]  # mean cosine per pair
            n_edges += 1
    groups = cluster_operators(sim / max(1, n_edges), CANDIDATES, k)
    log.info("learned %d groups: %s", k, groups.to_dict())
    return groups
