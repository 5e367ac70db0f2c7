"""Network geometry, torch-free: the single source of every tensor shape in the supernet, the derived
network and the cost model (DARTS's macro structure: stem, stacked normal and reduction cells,
global pooling and a linear classifier).

A network is a ``NetworkSpec`` (cells, channels, nodes, image side, stem multiplier, input channels,
classes). ``network_spec(config, role)`` resolves it once per role from a config's keys, 0 meaning "the
previous role's": the search's supernet (``SEARCH``), the target network a trial trains and tests
(``EVALUATION``: eval_* keys), the network the user ships whose DRAM costs the loss weighs and every trial
reports (``DEPLOYMENT``: deploy_* keys), and ``hwnas train``'s network (``TRAINING``: a ``TrainConfig``'s
layers / channels and dataset). The cell plans (``plan_cells``), the torch network
(``trainables.cells.Network``), the instance list (``network_instances``) and the cost model
(``cost_models.network``) all take a spec. ``CostTable`` is the per-(cell, edge, candidate) cost the
search loss weighs: the search core takes one, the cost model makes one.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .genotype import Genotype, cell_edges
from .ops import CANDIDATES, op_primitives

if TYPE_CHECKING:  # the arrays' type only: numpy loads in CostTable.from_fn, not with the layout
    import numpy as np

SEARCH, EVALUATION, DEPLOYMENT, TRAINING = "search", "evaluation", "deployment", "training"
NETWORK_ROLES = (SEARCH, EVALUATION, DEPLOYMENT, TRAINING)
# dataset -> (input channels, image side, classes): Fashion-MNIST is zero-padded 28 -> 32 so two reductions
# stay even (32 -> 16 -> 8); the synthetic test set is 16x16, which keeps CPU tests 4x cheaper
DATASET_SHAPES = {"fashion": (1, 32, 10), "cifar10": (3, 32, 10), "synthetic": (1, 16, 10)}


@dataclass(frozen=True)
class NetworkSpec:
    """A network's geometry: ``layers`` cells (reductions at 1/3 and 2/3 of the depth), ``channels`` initial
    cell channels (doubled at each reduction), ``nodes`` intermediate nodes per cell, ``image_size`` x
    ``image_size`` inputs of ``in_channels`` channels, a stem of ``stem_multiplier * channels`` channels and
    ``num_classes`` logits."""

    layers: int
    channels: int
    nodes: int
    image_size: int
    stem_multiplier: int = 3
    in_channels: int = 1
    num_classes: int = 10

    def resized(self, layers: int = 0, channels: int = 0, image_size: int = 0) -> "NetworkSpec":
        """This network with other cells, channels or image side; 0 keeps this one's (the config keys'
        "0 = fall back" rule, in one place)."""
        return replace(self, layers=layers or self.layers, channels=channels or self.channels,
                       image_size=image_size or self.image_size)


def dataset_shape(dataset: str) -> tuple[int, int, int]:
    """(input channels, image side, classes) of a dataset's images as the networks see them."""
    if dataset not in DATASET_SHAPES:
        raise ValueError(f"unknown dataset {dataset!r}; datasets: {', '.join(DATASET_SHAPES)}")
    return DATASET_SHAPES[dataset]


def network_spec(config: Any, role: str = SEARCH, train: Any = None) -> NetworkSpec:
    """The network of ``role`` (module docstring) of ``config``, anything with ``SearchConfig``'s keys (this
    module never imports the config, which validates its networks with it). ``TRAINING`` needs ``train``
    (a ``TrainConfig``): its layers / channels (0 = the evaluation network's) on its dataset's images."""
    in_channels, image_size, classes = dataset_shape(config.dataset)
    spec = NetworkSpec(config.layers, config.channels, config.nodes, image_size, config.stem_multiplier,
                       in_channels, classes)
    if role == SEARCH:
        return spec
    spec = spec.resized(config.eval_layers, config.eval_channels)
    if role == EVALUATION:
        return spec
    if role == DEPLOYMENT:
        return spec.resized(config.deploy_layers, config.deploy_channels, config.deploy_image_size)
    if role == TRAINING:
        if train is None:
            raise ValueError("the training network needs the train config (network_spec(search, TRAINING, train))")
        in_channels, image_size, classes = dataset_shape(train.dataset)
        return replace(spec.resized(train.layers, train.channels), image_size=image_size, in_channels=in_channels,
                       num_classes=classes)
    raise ValueError(f"unknown network role {role!r}; roles: {', '.join(NETWORK_ROLES)}")


def deploy_record(config: Any) -> dict[str, int]:
    """The deployed network the DRAM costs are for, resolved (never 0), as the result columns and records
    name it: deploy_layers, deploy_channels, deploy_image_size."""
    spec = network_spec(config, DEPLOYMENT)
    return {"deploy_layers": spec.layers, "deploy_channels": spec.channels, "deploy_image_size": spec.image_size}


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


def plan_cells(spec: NetworkSpec) -> tuple[CellPlan, ...]:
    """Every cell's shapes; ValueError when a reduction cell would halve an odd side."""
    reductions = reduction_cells(spec.layers)
    c_pp = c_p = stem_channels(spec)
    h_pp = h_p = spec.image_size
    c = spec.channels
    nodes = spec.nodes
    reduction_prev = False
    plans = []
    for i in range(spec.layers):
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


def stem_channels(spec: NetworkSpec) -> int:
    return spec.stem_multiplier * spec.channels


def edge_input(plan: CellPlan, src: int) -> tuple[int, int, int]:
    """(channels, height, stride) of the edge leaving node ``src`` in this cell."""
    if src < 2:
        return plan.c, plan.h_in, 2 if plan.reduction else 1
    return plan.c, plan.h_out, 1


def supernet_edge_shapes(spec: NetworkSpec) -> list[list[tuple[int, int, int, int]]]:
    """[cell][edge] -> (C, H, W, stride) of the tensor entering each mixed operator."""
    out = []
    for plan in plan_cells(spec):
        row = []
        for src, _dst in cell_edges(spec.nodes):
            c, h, s = edge_input(plan, src)
            row.append((c, h, h, s))
        out.append(row)
    return out


def stem_instance(spec: NetworkSpec) -> OpInstance:
    return OpInstance("stem_conv_bn", spec.in_channels, stem_channels(spec), spec.image_size, spec.image_size, 1,
                      role="stem")


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


def classifier_instance(spec: NetworkSpec, plans: tuple[CellPlan, ...]) -> OpInstance:
    last = plans[-1]
    return OpInstance("classifier", spec.nodes * last.c, spec.num_classes, last.h_out, last.h_out, 1, role="classifier")


def network_instances(genotype: Genotype, spec: NetworkSpec) -> list[OpInstance]:
    """Every operator of the derived network of ``genotype`` (one cell per layer of ``spec``) in execution
    order, with its input shape: stem; per cell preprocess0, preprocess1, per node its edges then its
    ``node_sum``, the ``cell_concat``; classifier.

    A node with no incoming edge is an error (the cell could not compute it).
    """
    plans = plan_cells(spec)
    nodes = spec.nodes
    if len(genotype.cells) != len(plans):
        raise ValueError(f"genotype has {len(genotype.cells)} cells, the network {len(plans)}")
    if not plans:
        raise ValueError("a network needs at least one cell")
    index = {e: i for i, e in enumerate(cell_edges(nodes))}
    out = [stem_instance(spec)]
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
    out.append(classifier_instance(spec, plans))
    return out


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


def geometry_problem(searched: NetworkSpec, target: NetworkSpec) -> str | None:
    """Why the network ``target`` cannot be built from the cells of a search of ``searched``, or None."""
    try:
        cell_sources([i in set(reduction_cells(searched.layers)) for i in range(searched.layers)], target.layers)
        plan_cells(target)
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


@dataclass(frozen=True, eq=False)
class CostTable:
    """What the search loss weighs the architecture with: ``time_us[cell, edge, candidate]`` (cell: a
    searched cell, candidates in ``candidates`` order), the DRAM time choosing that candidate on that edge
    adds, and the same for energy; ``fixed_*``: what no choice changes (stem, preprocessing, node writes,
    concats, classifier). The search core (``trainables``) takes one; ``cost_models.EdgeCostTable`` is one,
    priced on the deployed network, with its bytes and the profile it is for."""

    candidates: tuple[str, ...]
    time_us: "np.ndarray"  # float64 [cells, edges, candidates]
    energy_uj: "np.ndarray"  # float64 [cells, edges, candidates]
    fixed_time_us: float = 0.0
    fixed_energy_uj: float = 0.0

    @classmethod
    def from_fn(cls, spec: NetworkSpec, cost_fn: Callable[[str, int, int, int], tuple[float, float]],
                candidates: Sequence[str] = CANDIDATES) -> "CostTable":
        """A table from a cost model as a function ``(op, channels, height, stride) -> (time_us, energy_uj)``,
        evaluated on every edge shape of the network ``spec``; no fixed terms."""
        import numpy as np

        arr = np.array([[[cost_fn(op, c, h, s) for op in candidates] for (c, h, _w, s) in row]
                        for row in supernet_edge_shapes(spec)], dtype=np.float64)  # (cells, E, ops, 2)
        return cls(tuple(candidates), arr[..., 0], arr[..., 1])
