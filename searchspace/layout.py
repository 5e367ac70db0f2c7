"""Network geometry, torch-free: the single source of every tensor shape in the supernet, the derived
network and the cost model (DARTS's macro structure: stem, stacked normal and reduction cells,
global pooling and a linear classifier).
"""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class OpInstance:
    """One operator application in a network with the input shape it sees (per image, NCHW with N=batch)."""

    op: str
    c_in: int
    c_out: int
    h: int
    w: int
    stride: int
    cell: int = -1  # -1: outside the cells (stem, classifier)
    edge: int = -1  # -1: not a searchable edge
    role: str = "edge"  # stem | preprocess0 | preprocess1 | edge | classifier


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


def network_instances(genotype: Genotype, plans: tuple[CellPlan, ...], nodes: int, in_channels: int,
                      image_size: int, num_classes: int, stem_multiplier: int = 3) -> list[OpInstance]:
    """Every operator of the derived network in execution order, with its input shape.

    Node sums and the cells' output concatenation are taken as fused into their consumers (they move
    no extra DRAM bytes on a fusing processor); everything else is listed.
    """
    if len(genotype.cells) != len(plans):
        raise ValueError(f"genotype has {len(genotype.cells)} cells, the network {len(plans)}")
    index = {e: i for i, e in enumerate(cell_edges(nodes))}
    c_stem = plans[0].c_prev if plans else stem_multiplier * in_channels
    out = [OpInstance("stem_conv_bn", in_channels, c_stem, image_size, image_size, 1, role="stem")]
    for plan, cell in zip(plans, genotype.cells):
        if cell.reduction != plan.reduction:
            raise ValueError(f"genotype cell {plan.index} reduction={cell.reduction}, network says {plan.reduction}")
        if plan.reduction_prev:
            out.append(OpInstance("factorized_reduce", plan.c_prev_prev, plan.c, plan.h_prev_prev, plan.h_prev_prev, 2,
                                  plan.index, role="preprocess0"))
        else:
            out.append(OpInstance("relu_conv_bn_1x1", plan.c_prev_prev, plan.c, plan.h_prev_prev, plan.h_prev_prev, 1,
                                  plan.index, role="preprocess0"))
        out.append(OpInstance("relu_conv_bn_1x1", plan.c_prev, plan.c, plan.h_in, plan.h_in, 1, plan.index, role="preprocess1"))
        for op, src, dst in cell.edges:
            if (src, dst) not in index:
                raise ValueError(f"edge {src}->{dst} does not exist in a cell of {nodes} nodes")
            c, h, s = edge_input(plan, src)
            out.append(OpInstance(op, c, c, h, h, s, plan.index, index[(src, dst)]))
    last = plans[-1]
    out.append(OpInstance("classifier", nodes * last.c, num_classes, last.h_out, last.h_out, 1, role="classifier"))
    return out


def expand_genotype(genotype: Genotype, layers: int) -> Genotype:
    """Map a searched genotype onto a target network of another depth.

    Cells are split into segments by the reduction cells (normal / reduction / normal / ...); target cell
    j at relative position p of its segment takes the searched cell at the same relative position of the
    same segment. Same depth: the genotype itself.
    """
    if len(genotype.cells) == layers:
        return genotype
    from searchspace.layout import reduction_cells

    def segments(flags: list[bool]) -> list[list[int]]:
        segs: list[list[int]] = [[]]
        for i, red in enumerate(flags):
            if red:
                segs.append([i])
                segs.append([])
            else:
                segs[-1].append(i)
        return segs

    src = segments([c.reduction for c in genotype.cells])
    reds = set(reduction_cells(layers))
    dst = segments([i in reds for i in range(layers)])
    if len(src) != len(dst):
        raise ValueError(f"cannot map a {len(genotype.cells)}-cell genotype onto {layers} cells")
    cells = [None] * layers
    for s_seg, d_seg in zip(src, dst):
        for p, j in enumerate(d_seg):
            if not s_seg:
                raise ValueError(f"searched genotype has no cell for target segment of cell {j}")
            cells[j] = genotype.cells[s_seg[p * len(s_seg) // len(d_seg)]]
    return Genotype(tuple(cells))


def network_macs(instances: list[OpInstance]) -> int:
    """Multiply-accumulates per image of a network given as operator instances (convs and linears)."""
    total = 0
    for inst in instances:
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
