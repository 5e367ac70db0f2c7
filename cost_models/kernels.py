"""A fused network as the kernels it runs, costed under its profile's rule between kernels
(``cost_models.residency``): the derived network's cost rows, and the supernet table's shares.

On a fused profile (``cost_models.accounting``) a network runs: the stem; per cell ``preprocess0`` (reads
the cell two back: its nodes, or the stem), ``preprocess1`` (the previous cell), and one kernel per
intermediate node that runs the node's incoming operators band by band into one accumulator and writes
the node in place into the cell's concat buffer; the classifier (reads the last cell's nodes). Tensors
between kernels: ``x`` (the network input), ``stem``, ``c{i}.s0`` / ``c{i}.s1`` (preprocessed inputs of
cell i), ``c{i}.n{k}`` (node k of cell i; a cell's output is its nodes, so the concat moves nothing) and
``logits``. An operator's own traffic beyond reading its source once and writing the node once (weights,
intermediates it spills, tiling re-reads, kernel splits) is the kernel's ``internal`` part.

**The table's shares** (what the loss weighs) come from one *reference schedule* of the deployed network
in the supernet's wiring: every node kernel reads all its predecessors, which therefore live to the
cell's last node, and holds the largest working set of any candidate on its edges. That schedule says,
for every edge, whether its source is read on chip or from DRAM, and which node outputs and evictions
spill; an edge's share is its operator's internal part plus its source read where the reference reads it
from DRAM; the node's write, evictions, kernel latency and everything outside the cells are fixed terms.
Where every tensor fits (or none fits beside another) a derived genotype's shares plus the fixed terms
are its ``network_cost`` exactly. In between, a derived cell frees its inputs earlier than the supernet
and its working sets differ by operator, so a choice can change what spills elsewhere: the table keeps
the reference's spills, which is conservative (the supernet keeps more alive); ``tests/
test_cost_accounting.py`` bounds the difference for random genotypes.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from searchspace.genotype import cell_edges
from searchspace.layout import CellPlan, OpInstance
from searchspace.ops import is_identity

from .accounting import KERNEL, Term, op_term, tensor_bytes
from .profile import Profile
from .residency import Kernel, KernelTraffic, schedule
from .traffic import OpCost

INPUT, STEM, LOGITS = "x", "stem", "logits"


def _node(cell: int, k: int) -> str:
    return f"c{cell}.n{k}"


def _cell_input(cell: int, src: int) -> str:
    return f"c{cell}.s{src}"


def source_tensor(cell: int, src: int) -> str:
    """The tensor an edge leaving node ``src`` of cell ``cell`` reads."""
    return _cell_input(cell, src) if src < 2 else _node(cell, src)


def cell_output(cell: int, nodes: int) -> tuple[str, ...]:
    """A cell's output tensor: its nodes (the concat buffer); before the first cell, the stem's output."""
    return tuple(_node(cell, k) for k in range(2, nodes + 2)) if cell >= 0 else (STEM,)


@dataclass
class Tensors:
    """Bytes of every named tensor (whole bursts) of a network on a profile at a batch."""

    profile: Profile
    batch: int

    def __post_init__(self) -> None:
        self.sizes: dict[str, int] = {}

    def add(self, name: str, c: int, h: int, w: int | None = None) -> str:
        self.sizes[name] = tensor_bytes(self.profile, self.batch, c, h, h if w is None else w)
        return name

    def read(self, names: tuple[str, ...]) -> Term:
        n = sum(self.sizes[t] for t in names)
        return Term(dram_read_bytes=n, compulsory_bytes=n)

    def write(self, name: str) -> Term:
        return Term(dram_write_bytes=self.sizes[name], compulsory_bytes=self.sizes[name])


def add_cell_tensors(tensors: Tensors, plan: CellPlan, nodes: int) -> None:
    c, h = plan.c, plan.h_in
    tensors.add(_cell_input(plan.index, 0), c, h)
    tensors.add(_cell_input(plan.index, 1), c, h)
    for k in range(2, nodes + 2):
        tensors.add(_node(plan.index, k), c, plan.h_out)


def operator_kernel(tensors: Tensors, cost: OpCost, reads: tuple[str, ...], write: str) -> Kernel:
    """A stem, preprocessing or classifier kernel: the operator less one read of ``reads``, one write."""
    internal = op_term(cost) - tensors.read(reads) - tensors.write(write) - KERNEL
    return Kernel(reads, write, internal, cost.scratch_bytes)


def edge_internal(tensors: Tensors, cost: OpCost, source: str, node: str) -> Term:
    """An edge operator inside its node's kernel, less the read of its source and the write of the node."""
    return op_term(cost) - tensors.read((source,)) - tensors.write(node) - KERNEL


def cell_inputs(cell: int, nodes: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What preprocess0 and preprocess1 of ``cell`` read: the cells two back and one back (or the stem)."""
    return cell_output(cell - 2, nodes), cell_output(cell - 1, nodes)


def run(profile: Profile, tensors: Tensors, kernels: list[Kernel]) -> list[KernelTraffic]:
    return schedule(kernels, tensors.sizes, profile.onchip_buffer_bytes, resident=profile.resident,
                    inputs=(INPUT,), outputs=(LOGITS,))


# ---------------------------------------------------------------- the derived network (network_cost rows)
def network_rows(profile: Profile, batch: int, instances: list[OpInstance], plans: tuple[CellPlan, ...],
                 nodes: int, costs: dict[int, OpCost]) -> list[tuple[Term, int, int]]:
    """(term, on-chip bytes, spilled bytes) per instance of ``layout.network_instances`` on a fused profile.

    Rows: an edge operator's row is its internal part plus its source read when that came from DRAM; a
    node's ``node_sum`` row is the node kernel's rest (its identity inputs' reads, the node's write,
    evictions, the kernel's latency); a concat moves nothing."""
    tensors = Tensors(profile, batch)
    tensors.add(INPUT, instances[0].c_in, instances[0].h, instances[0].w)
    tensors.add(STEM, instances[0].c_out, instances[0].h, instances[0].w)
    tensors.add(LOGITS, instances[-1].c_out, 1)
    for plan in plans:
        add_cell_tensors(tensors, plan, nodes)
    kernels: list[Kernel] = []
    owner: list[list[tuple[int, int]]] = []  # per kernel: (instance index, read index or -1) for its rows
    pending: list[tuple[int, OpInstance]] = []  # a node's edges, until its node_sum closes the kernel
    for i, inst in enumerate(instances):
        if inst.role == "stem":
            kernels.append(operator_kernel(tensors, costs[i], (INPUT,), STEM))
            owner.append([(i, 0)])
        elif inst.role in ("preprocess0", "preprocess1"):
            reads = cell_inputs(inst.cell, nodes)[inst.role == "preprocess1"]
            kernels.append(operator_kernel(tensors, costs[i], reads, _cell_input(inst.cell, int(inst.role[-1]))))
            owner.append([(i, r) for r in range(len(reads))])
        elif inst.role == "edge":
            pending.append((i, inst))
        elif inst.role == "node_sum":
            node = _node(inst.cell, inst.node)
            reads, internal, scratch, rows = [], Term(), 0, []
            for j, edge in pending:
                src = source_tensor(inst.cell, cell_edges(nodes)[edge.edge][0])
                reads.append(src)
                rows.append((j, len(reads) - 1) if not is_identity(edge.op, edge.c_in, edge.c_out, edge.stride)
                            else (i, len(reads) - 1))
                if not is_identity(edge.op, edge.c_in, edge.c_out, edge.stride):
                    internal += edge_internal(tensors, costs[j], src, node)
                    scratch = max(scratch, costs[j].scratch_bytes)
            kernels.append(Kernel(tuple(reads), node, internal, scratch))
            owner.append(rows + [(i, -1)])
            pending = []
        elif inst.role == "classifier":
            reads = cell_output(plans[-1].index, nodes)
            kernels.append(operator_kernel(tensors, costs[i], reads, LOGITS))
            owner.append([(i, r) for r in range(len(reads))])
    traffic = run(profile, tensors, kernels)
    rows = [(Term(), 0, 0)] * len(instances)
    for k, t, own in zip(kernels, traffic, owner):
        _split(rows, k, t, own, tensors, costs, instances)
    return rows


def _split(rows: list, kernel: Kernel, traffic: KernelTraffic, own: list[tuple[int, int]], tensors: Tensors,
           costs: dict[int, OpCost], instances: list[OpInstance]) -> None:
    """Spread one kernel's traffic over its instances' rows: an edge operator takes its internal part and its
    source read; the kernel's main row (read index -1, or the only instance) takes everything else."""
    main = next((i for i, r in own if r == -1), own[0][0])
    rest, onchip = traffic.term, traffic.onchip_bytes
    for i, r in own:
        if r < 0 or i == main:
            continue
        inst = instances[i]
        part = edge_internal(tensors, costs[i], kernel.reads[r], _node(inst.cell, inst.node)) + traffic.reads[r]
        on = 0 if traffic.from_dram[r] else tensors.sizes[kernel.reads[r]]
        rows[i] = (part, on, 0)
        rest, onchip = rest - part, onchip - on
    rows[main] = (rest, onchip, traffic.spilled_bytes)


# ---------------------------------------------------------------- the loss's table
SAMPLES = 48  # random derived wirings averaged where the supernet's reference schedule spills (module doc)


@dataclass(frozen=True)
class _TableNetwork:
    """What every schedule of the table shares: tensors, the fixed kernels, the candidates' costs."""

    profile: Profile
    tensors: Tensors
    plans: tuple[CellPlan, ...]
    nodes: int
    candidates: tuple[str, ...]
    before: tuple[Kernel, ...]  # the stem
    preprocess: tuple[tuple[Kernel, Kernel], ...]  # per cell
    after: tuple[Kernel, ...]  # the classifier
    edge_costs: list[list[list[OpCost]]]  # [cell][edge][candidate]

    def schedule(self, node_kernels: list[list[Kernel]]) -> list[KernelTraffic]:
        """Traffic of stem, per cell (preprocess0, preprocess1, its node kernels), classifier, in that order."""
        kernels = list(self.before)
        for pre, cell in zip(self.preprocess, node_kernels):
            kernels += [*pre, *cell]
        return run(self.profile, self.tensors, kernels + list(self.after))

    def internal(self, cell: int, edge: int, k: int) -> Term:
        """Candidate k on the edge, inside its node's kernel: its internal part (identity: nothing)."""
        c = self.edge_costs[cell][edge][k]
        if is_identity(self.candidates[k], c.c_in, c.c_out, c.stride):
            return Term()
        src, dst = cell_edges(self.nodes)[edge]
        return edge_internal(self.tensors, c, source_tensor(cell, src), _node(cell, dst))


def table_terms(profile: Profile, batch: int, plans: tuple[CellPlan, ...], nodes: int, candidates: tuple[str, ...],
                stem: tuple[OpInstance, OpCost], preprocess: list[tuple[OpInstance, OpCost]],
                classifier: tuple[OpInstance, OpCost], edge_costs: list[list[list[OpCost]]],
                ) -> tuple[list[list[list[Term]]], Term]:
    """Per deployed cell, edge and candidate the share of the deployed network's cost, and the fixed terms
    (module doc). ``edge_costs[cell][edge][k]``: candidate k's OpCost there; ``preprocess``: (preprocess0,
    preprocess1) of every cell in order."""
    stem_inst, stem_cost = stem
    tensors = Tensors(profile, batch)
    tensors.add(INPUT, stem_inst.c_in, stem_inst.h, stem_inst.w)
    tensors.add(STEM, stem_inst.c_out, stem_inst.h, stem_inst.w)
    tensors.add(LOGITS, classifier[0].c_out, 1)
    pre = []
    for plan in plans:
        add_cell_tensors(tensors, plan, nodes)
        pre.append(tuple(operator_kernel(tensors, cost, cell_inputs(plan.index, nodes)[role],
                                         _cell_input(plan.index, role))
                         for role, (_inst, cost) in enumerate(preprocess[2 * plan.index: 2 * plan.index + 2])))
    net = _TableNetwork(profile, tensors, plans, nodes, candidates,
                        (operator_kernel(tensors, stem_cost, (INPUT,), STEM),), tuple(pre),
                        (operator_kernel(tensors, classifier[1], cell_output(plans[-1].index, nodes), LOGITS),),
                        edge_costs)
    reads, fixed = _supernet_reads(net)
    if reads is None:
        reads, fixed = _sampled_reads(net)
    shares = [[[net.internal(plan.index, e, k) + reads[plan.index][e] for k in range(len(candidates))]
               for e in range(len(cell_edges(nodes)))] for plan in plans]
    return shares, fixed


def _supernet_reads(net: _TableNetwork) -> tuple[list[list[Term]] | None, Term]:
    """The supernet's wiring (every node reads all its predecessors, holding the largest working set of its
    candidates): if nothing spills there, nothing spills in any derived network either, and each edge's
    source read and the fixed terms are exact. (None, _) when something spills."""
    edges = cell_edges(net.nodes)
    cells = []
    for plan in net.plans:
        cells.append([Kernel(tuple(source_tensor(plan.index, s) for s in range(dst)), _node(plan.index, dst),
                             Term(), max(c.scratch_bytes for e, (_s, d) in enumerate(edges) if d == dst
                                         for c in net.edge_costs[plan.index][e]))
                      for dst in range(2, net.nodes + 2)])
    traffic = net.schedule(cells)
    if any(t.spilled_bytes for t in traffic):
        return None, Term()
    nodes = _node_traffic(net, traffic)
    reads = [[nodes[plan.index][dst - 2].reads[src] for src, dst in edges] for plan in net.plans]
    return reads, _fixed(net, traffic)


def _sampled_reads(net: _TableNetwork, samples: int = SAMPLES) -> tuple[list[list[Term]], Term]:
    """Where tensors spill, what spills depends on the wiring and the working sets of the whole network,
    which no per-edge table can follow (a least-squares table misses by up to 25 %: docs/benchmarks.md
    "Table fidelity"). The table then takes expectations over ``samples`` random derived wirings (two distinct
    inputs per node, uniform candidates; fixed seed): an edge's source read is its mean over the samples
    holding that edge, the fixed terms their mean, so the table is unbiased for a random genotype."""
    rng = random.Random(0)
    edges = cell_edges(net.nodes)
    index = {e: i for i, e in enumerate(edges)}
    total = [[Term() for _ in edges] for _ in net.plans]
    count = [[0] * len(edges) for _ in net.plans]
    fixed = Term()
    for _ in range(samples):
        wiring, cells = [], []
        for plan in net.plans:
            chosen = [(rng.randrange(len(net.candidates)), src, dst) for dst in range(2, net.nodes + 2)
                      for src in sorted(rng.sample(range(dst), 2))]
            wiring.append(chosen)
            kernels = []
            for dst in range(2, net.nodes + 2):
                mine = [(k, index[(s, d)]) for k, s, d in chosen if d == dst]
                kernels.append(Kernel(tuple(source_tensor(plan.index, edges[e][0]) for _k, e in mine),
                                      _node(plan.index, dst),
                                      sum((net.internal(plan.index, e, k) for k, e in mine), Term()),
                                      max(net.edge_costs[plan.index][e][k].scratch_bytes for k, e in mine)))
            cells.append(kernels)
        traffic = net.schedule(cells)
        nodes = _node_traffic(net, traffic)
        for plan, chosen in zip(net.plans, wiring):
            for dst in range(2, net.nodes + 2):
                mine = [index[(s, d)] for _k, s, d in chosen if d == dst]
                for r, e in enumerate(mine):
                    total[plan.index][e] += nodes[plan.index][dst - 2].reads[r]
                    count[plan.index][e] += 1
        fixed += _fixed(net, traffic) - sum((net.internal(plan.index, index[(s, d)], k) for plan, chosen in zip(net.plans, wiring)
                      for k, s, d in chosen), Term())  # the edges' internal parts are their shares
    reads = [[_mean(total[c][e], count[c][e]) for e in range(len(edges))] for c in range(len(net.plans))]
    return reads, _mean(fixed, samples)


def _node_traffic(net: _TableNetwork, traffic: list[KernelTraffic]) -> list[list[KernelTraffic]]:
    """The node kernels' traffic, per cell, out of a schedule of ``_TableNetwork.schedule``."""
    per_cell = 2 + net.nodes
    return [traffic[len(net.before) + c * per_cell + 2: len(net.before) + (c + 1) * per_cell]
            for c in range(len(net.plans))]


def _fixed(net: _TableNetwork, traffic: list[KernelTraffic]) -> Term:
    """Everything but the edges' source reads: the stem, preprocessing and classifier kernels as they ran,
    and per node kernel its write or spill, evictions, latency and its operators' internal parts."""
    return sum((t.term for t in traffic), Term()) - sum((r for cell in _node_traffic(net, traffic) for n in cell
                                                         for r in n.reads), Term())


def _mean(t: Term, n: int) -> Term:
    if n == 0:
        return Term()
    return Term(*(round(v / n) for v in t._tuple()))
