"""Network geometry, torch-free: the single source of every tensor shape in the supernet, the derived
network and the cost model (DARTS's macro structure: stem, stacked normal and reduction cells,
global pooling and a linear classifier).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .genotype import Genotype, cell_edges
from .ops import op_primitives


@dataclass(frozen=True)
class CellPlan:
    """Shapes of one cell. Inputs s0 (c_prev_prev x h_prev_prev) and s1 (c_prev x h_in) are first
    preprocessed to c x h_in; intermediate nodes have c channels at h_in (normal) or h_in/2 (reduction);
    the output concatenates the intermediate nodes: (nodes * c) x h_out."""

    index: int
    reduction: bool
    reduction_prev: bool
    c_prev_prev: int
    c_prev: int
    c: int
    h_prev_prev: int
    h_in: int
    h_out: int


#: Roles of ``OpInstance``, in the order a cell runs them.
ROLES = ("stem", "preprocess0", "preprocess1", "edge", "node_sum", "cell_concat", "classifier")
NODE_SUM_OP = "add"  # not a registry operator: the elementwise sum of a node's inputs
CONCAT_OP = "concat"  # not a registry operator: a cell's output, the concatenation of its nodes


@dataclass(frozen=True)
class OpInstance:
    """One operator application in a network with the input shape it sees (per image, NCHW with N=batch).

    ``node_sum`` (op ``add``): node ``node`` = sum of ``fan_in`` tensors of c_in x h x w each.
    ``cell_concat`` (op ``concat``): ``fan_in`` nodes of c_in x h x w each -> c_out = fan_in * c_in."""

    op: str
    c_in: int
    c_out: int
    h: int
    w: int
    stride: int
    cell: int = -1  # -1: outside the cells (stem, classifier)
    edge: int = -1  # -1: not a searchable edge
    role: str = "edge"  # one of ROLES
    node: int = -1  # edge and node_sum: the node the edge feeds / the node summed; -1 otherwise
    fan_in: int = 0  # node_sum: tensors summed; cell_concat: nodes concatenated; 0 otherwise


def reduction_cells(layers: int) -> tuple[int, ...]:
    """Cells at 1/3 and 2/3 of the depth halve the resolution and double the channels (DARTS)."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))


def plan_cells(layers: int, channels: int, nodes: int, image_size: int, stem_multiplier: int = 3) -> tuple[CellPlan, ...]:
    reductions = reduction_cells(layers)
    c_pp = c_p = stem_multiplier * channels
    h_pp = h_p = image_size
    c = channels
    reduction_prev = False
    plans = []
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            c *= 2
            if h_p % 2:
                raise ValueError(f"cell {i} is a reduction cell but its input is {h_p}x{h_p} (odd); "
                                 f"use an image size divisible by {2 ** len(reductions)}")
        h_out = h_p // 2 if reduction else h_p
        plans.append(CellPlan(i, reduction, reduction_prev, c_pp, c_p, c, h_pp, h_p, h_out))
        c_pp, c_p, h_pp, h_p = c_p, nodes * c, h_p, h_out
        reduction_prev = reduction
    return tuple(plans)


def stem_channels(channels: int, stem_multiplier: int = 3) -> int:
    return stem_multiplier * channels


def edge_input(plan: CellPlan, src: int) -> tuple[int, int, int]:
    """(channels, height, stride) of the edge leaving node ``src`` in this cell."""
    if src < 2:
        return plan.c, plan.h_in, 2 if plan.reduction else 1
    return plan.c, plan.h_out, 1


def supernet_edge_shapes(plans: tuple[CellPlan, ...], nodes: int) -> list[list[tuple[int, int, int, int]]]:
    """[cell][edge] -> (C, H, W, stride) of the tensor entering each mixed operator."""
    out = []
    for plan in plans:
        row = []
        for src, _dst in cell_edges(nodes):
            c, h, s = edge_input(plan, src)
            row.append((c, h, h, s))
        out.append(row)
    return out


def stem_instance(plans: tuple[CellPlan, ...], in_channels: int, image_size: int) -> OpInstance:
    return OpInstance("stem_conv_bn", in_channels, plans[0].c_prev, image_size, image_size, 1, role="stem")


def preprocess_instances(plan: CellPlan) -> tuple[OpInstance, OpInstance]:
    """s0 -> c x h_in (a factorized reduce after a reduction cell, else ReLU-conv1x1-BN), s1 -> c x h_in."""
    if plan.reduction_prev:
        p0 = OpInstance("factorized_reduce", plan.c_prev_prev, plan.c, plan.h_prev_prev, plan.h_prev_prev, 2,
                        plan.index, role="preprocess0")
    else:
        p0 = OpInstance("relu_conv_bn_1x1", plan.c_prev_prev, plan.c, plan.h_prev_prev, plan.h_prev_prev, 1,
                        plan.index, role="preprocess0")
    return p0, OpInstance("relu_conv_bn_1x1", plan.c_prev, plan.c, plan.h_in, plan.h_in, 1, plan.index, role="preprocess1")


def node_sum_instance(plan: CellPlan, node: int, fan_in: int) -> OpInstance:
    return OpInstance(NODE_SUM_OP, plan.c, plan.c, plan.h_out, plan.h_out, 1, plan.index, role="node_sum",
                      node=node, fan_in=fan_in)


def cell_concat_instance(plan: CellPlan, nodes: int) -> OpInstance:
    return OpInstance(CONCAT_OP, plan.c, nodes * plan.c, plan.h_out, plan.h_out, 1, plan.index, role="cell_concat",
                      fan_in=nodes)


def classifier_instance(plans: tuple[CellPlan, ...], nodes: int, num_classes: int) -> OpInstance:
    last = plans[-1]
    return OpInstance("classifier", nodes * last.c, num_classes, last.h_out, last.h_out, 1, role="classifier")


def network_instances(genotype: Genotype, plans: tuple[CellPlan, ...], nodes: int, in_channels: int,
                      image_size: int, num_classes: int, stem_multiplier: int = 3) -> list[OpInstance]:
    """Every operator of the derived network in execution order, with its input shape: stem; per cell
    preprocess0, preprocess1, per node its edges then its ``node_sum``, the ``cell_concat``; classifier.

    A node with no incoming edge is an error (the cell could not compute it).
    """
    if len(genotype.cells) != len(plans):
        raise ValueError(f"genotype has {len(genotype.cells)} cells, the network {len(plans)}")
    if not plans:
        raise ValueError("a network needs at least one cell")
    index = {e: i for i, e in enumerate(cell_edges(nodes))}
    out = [stem_instance(plans, in_channels, image_size)]
    for plan, cell in zip(plans, genotype.cells):
        if cell.reduction != plan.reduction:
            raise ValueError(f"genotype cell {plan.index} reduction={cell.reduction}, network says {plan.reduction}")
        out.extend(preprocess_instances(plan))
        for op, src, dst in cell.edges:
            if (src, dst) not in index:
                raise ValueError(f"edge {src}->{dst} does not exist in a cell of {nodes} nodes")
        for dst in range(2, nodes + 2):
            incoming = [(op, src) for op, src, d in cell.edges if d == dst]
            if not incoming:
                raise ValueError(f"genotype cell {plan.index}: node {dst} has no incoming edge")
            for op, src in incoming:
                c, h, s = edge_input(plan, src)
                out.append(OpInstance(op, c, c, h, h, s, plan.index, index[(src, dst)], node=dst))
            out.append(node_sum_instance(plan, dst, len(incoming)))
        out.append(cell_concat_instance(plan, nodes))
    out.append(classifier_instance(plans, nodes, num_classes))
    return out


@dataclass(frozen=True)
class Geometry:
    """A network's size: cells, initial channels (doubled at each reduction), input image side."""

    layers: int
    channels: int
    image_size: int


def eval_geometry(config) -> Geometry:
    """The evaluation (target) network: ``eval_layers`` / ``eval_channels``, 0 = the search's; the search's
    image size. ``config``: anything with SearchConfig's fields (pure arithmetic, no import of it)."""
    return Geometry(config.eval_layers or config.layers, config.eval_channels or config.channels, config.image_size)


def deploy_geometry(config) -> Geometry:
    """The network the user ships, whose DRAM costs the loss weighs and every trial reports:
    ``deploy_layers`` / ``deploy_channels`` / ``deploy_image_size``, each 0 = the evaluation network's."""
    ev = eval_geometry(config)
    return Geometry(config.deploy_layers or ev.layers, config.deploy_channels or ev.channels,
                    config.deploy_image_size or ev.image_size)


def _segments(flags: Sequence[bool]) -> list[list[int]]:
    """Cells split by the reduction cells: normal / reduction / normal / ... (reduction segments hold one cell)."""
    segs: list[list[int]] = [[]]
    for i, red in enumerate(flags):
        if red:
            segs.append([i])
            segs.append([])
        else:
            segs[-1].append(i)
    return segs


def cell_sources(searched: Sequence[bool], layers: int) -> tuple[int, ...]:
    """For each cell of a ``layers``-cell network, the index of the searched cell it takes (``searched``:
    the searched cells' reduction flags).

    Target cell j at relative position p of its segment (module doc of ``expand_genotype``) takes the
    searched cell at the same relative position of the same segment. A normal segment the search has no
    cell in (with 3 searched cells both reductions come last) takes the nearest searched normal segment,
    earlier ones first: DARTS's evaluation network repeats its one normal cell the same way.
    ValueError when the networks differ in reduction count or the search has no normal cell to repeat.
    """
    src = _segments(searched)
    reds = set(reduction_cells(layers))
    dst = _segments([i in reds for i in range(layers)])
    if len(src) != len(dst):
        raise ValueError(f"cannot map {len(searched)} searched cells ({len(src) // 2} reduction) onto "
                         f"{layers} cells ({len(dst) // 2} reduction): the reduction counts differ")
    normal = [k for k in range(0, len(src), 2) if src[k]]
    out = [0] * layers
    for k, d_seg in enumerate(dst):
        s_seg = src[k]
        if not s_seg and d_seg:
            if not normal:
                raise ValueError(f"cannot map {len(searched)} searched cells onto {layers} cells: the search has "
                                 f"no normal cell for target cell {d_seg[0]}")
            s_seg = src[min(normal, key=lambda n: (abs(n - k), n > k))]
        for p, j in enumerate(d_seg):
            out[j] = s_seg[p * len(s_seg) // len(d_seg)]
    return tuple(out)


def expand_genotype(genotype: Genotype, layers: int) -> Genotype:
    """Map a searched genotype onto a target network of another depth (``cell_sources``): cells are split
    into segments by the reduction cells (normal / reduction / normal / ...); target cell j at relative
    position p of its segment takes the searched cell at the same relative position of the same segment.
    Same depth: the genotype itself.
    """
    if len(genotype.cells) == layers:
        return genotype
    sources = cell_sources([c.reduction for c in genotype.cells], layers)
    return Genotype(tuple(genotype.cells[s] for s in sources))


def geometry_problem(search_layers: int, geometry: Geometry, nodes: int, stem_multiplier: int = 3) -> str | None:
    """Why a network of ``geometry`` cannot be built from a ``search_layers``-cell search, or None."""
    try:
        cell_sources([i in set(reduction_cells(search_layers)) for i in range(search_layers)], geometry.layers)
        plan_cells(geometry.layers, geometry.channels, nodes, geometry.image_size, stem_multiplier)
    except ValueError as exc:
        return str(exc)
    return None


def network_macs(instances: list[OpInstance]) -> int:
    """Multiply-accumulates per image of a network given as operator instances (convs and linears)."""
    total = 0
    for inst in instances:
        if inst.op in (NODE_SUM_OP, CONCAT_OP):
            continue  # elementwise sum / copy: no multiply-accumulates
        h = inst.h
        shapes: list[int] = []  # spatial size of each primitive's output, by index
        for p in op_primitives(inst.op, inst.c_in, inst.c_out, inst.stride):
            src = p.inputs[0] if p.inputs else len(shapes) - 1
            h_in = h if src < 0 else shapes[src]
            h_out = -(-(h_in - p.offset) // p.stride) if p.kind in ("conv", "max_pool", "avg_pool") else h_in
            if p.kind == "global_avg_pool":
                h_out = 1
            if p.kind == "conv":
                total += p.c_out * (p.c_in // p.groups) * p.kernel * p.kernel * h_out * h_out
            elif p.kind == "linear":
                total += p.c_in * p.c_out
            shapes.append(h_out)
    return total
