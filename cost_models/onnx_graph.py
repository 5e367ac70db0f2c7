"""The DRAM model on any ONNX CNN graph: nodes -> kernels -> bytes, time, energy on a processor profile.

``onnx_cost(path, profile, batch)`` reads an ONNX file (the batch axis set to ``batch``, every other
shape static), maps its nodes onto the cost model's primitives and groups them into the kernels the
profile runs, with the same accounting as a searched network (``cost_models.accounting``):

* **Operator regions** (costed by ``cost_models.traffic``, keep/spill plan and tiling included): a chain
  of Conv (any kernel, stride, dilation, groups: depthwise too), BatchNormalization, Relu/Clip, MaxPool,
  AveragePool, GlobalAveragePool and Gemm/MatMul whose inner tensors each have one consumer, at most
  ``MAX_STAGES`` compute stages; a Concat of sibling branches that read one tensor (DARTS's factorized
  reduce) joins its branches. Fused profiles: a ReLU is its consumer's prologue (shared ReLUs included),
  BN folds into its producer, intermediates stay on chip when they fit. Unfused: every node a kernel.
* **Add** (with its chained Adds: a node sum): fused, one kernel that sums its producers' outputs on chip
  (an operator region whose only consumer is the Add loses its output write and its last latency, as a
  cell node's operators) and reads its other inputs; unfused, every Add reads two tensors, writes one.
* **Concat** of other tensors: fused, in place (producers write into it); unfused, a copy kernel.
* Flatten, Identity, Dropout, Reshape: views. A Slice that starts at the same pixel on H and W is the
  reading Conv/pool's ``offset`` (the factorized reduce's ``x[:, :, 1:, 1:]``). An Add of a constant
  right after a Conv/Gemm/MatMul is its bias. Pad: fused, the reading Conv/pool's padding; unfused a copy.

Spatial sizes follow the model's "same" rule (output = ceil(H / stride)); a Conv or pool whose ONNX output
is smaller (less padding) reads only the window it uses (``offset``); a larger one is an error.
An unsupported op is a ``CostQueryError`` naming the op and its node. Imports onnx, never torch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from searchspace.ops import Primitive

from .accounting import KERNEL, Term, op_term, tensor_bytes
from .onnx_nodes import OPERATOR_KINDS, NodeReader, NodeRecord, OnnxGraph, numel
from .profile import CostQueryError, Profile, load_profile
from .onnx_residency import Region, resident_terms
from .traffic import primitives_cost

log = logging.getLogger(__name__)

MAX_STAGES = 8  # compute stages per operator region: bounds the 2^intermediates keep/spill plans
_STAGE_KINDS = ("conv", "max_pool", "avg_pool", "global_avg_pool", "linear", "concat")


@dataclass(frozen=True)
class GraphPrimitive(Primitive):
    """A primitive with extra weight elements: a conv's bias, a Gemm without one (-c_out), a leading BN."""

    extra_weight_elements: int = 0

    @property
    def weight_elements(self) -> int:
        return super().weight_elements + self.extra_weight_elements


@dataclass(frozen=True)
class GraphCost:
    """Whole-graph DRAM cost at ``batch`` on ``profile``, one row per kernel group, in execution order."""

    profile: str
    batch: int
    dram_read_bytes: int
    dram_write_bytes: int
    dram_bytes: int
    compulsory_bytes: int
    dram_latencies: int
    dram_time_us: float
    dram_energy_uj: float
    params: int  # weight elements of Conv / Gemm / MatMul / BN
    macs: int  # multiply-accumulates per batch of ``batch`` images (Conv, Gemm/MatMul)
    rows: tuple[dict[str, Any], ...]

    def to_dict(self, rows: bool = False) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("profile", "batch", "dram_read_bytes", "dram_write_bytes", "dram_bytes",
                                           "compulsory_bytes", "dram_latencies", "dram_time_us", "dram_energy_uj",
                                           "params", "macs")}
        d["kernel_groups"] = len(self.rows)
        if rows:
            d["rows"] = [dict(r) for r in self.rows]
        return d




def _bytes(profile: Profile, shape: tuple[int, ...]) -> int:
    return tensor_bytes(profile, 1, numel(shape), 1, 1)


def _read(n: int) -> Term:
    return Term(dram_read_bytes=n, compulsory_bytes=n)


def _write(n: int) -> Term:
    return Term(dram_write_bytes=n, compulsory_bytes=n)


def _consumers(recs: list[NodeRecord], outputs: list[str]) -> dict[str, list[int]]:
    """tensor -> indices of the records reading it; -1 for a graph output (it must be written)."""
    cons: dict[str, list[int]] = {t: [-1] for t in outputs}
    for i, r in enumerate(recs):
        for t in r.inputs:
            cons.setdefault(t, []).append(i)
    return cons


def _mark_sibling_concats(recs: list[NodeRecord], cons: dict[str, list[int]], producer: dict[str, int]) -> None:
    """A Concat of single-consumer Conv/pool branches that all read one tensor is operator-internal."""
    for i, r in enumerate(recs):
        if r.kind != "join" or len(r.inputs) < 2:
            continue
        sources = set()
        for t in r.inputs:
            p = producer.get(t)
            if p is None or recs[p].kind not in ("conv", "max_pool", "avg_pool") or cons.get(t) != [i]:
                break
            sources.add(recs[p].inputs[0])
        else:
            if len(sources) == 1:
                r.kind = "concat"


def _regions(recs: list[NodeRecord], cons: dict[str, list[int]], fused: bool) -> tuple[list[Region], list[int]]:
    """Kernel groups, built from the graph's end: a record joins its only consumer's operator region
    (at most MAX_STAGES stages); fused, an Add whose only consumer is an Add joins that node sum."""
    region_of = [-1] * len(recs)
    regions: list[Region] = []
    stages: list[int] = []
    for i in reversed(range(len(recs))):
        r = recs[i]
        c = cons.get(r.out, [])
        target = region_of[c[0]] if len(c) == 1 and c[0] >= 0 else -1
        if r.kind in OPERATOR_KINDS:
            grow = int(r.kind in _STAGE_KINDS)
            joins = target >= 0 and recs[c[0]].kind in OPERATOR_KINDS and stages[target] + grow <= MAX_STAGES
            kind = "op"
        else:
            grow, kind = 0, {"add": "add"}.get(r.kind, r.kind)
            joins = target >= 0 and fused and r.kind == "add" and recs[c[0]].kind == "add"
        if not joins:
            regions.append(Region(kind, out=r.out))
            stages.append(0)
            target = len(regions) - 1
        regions[target].recs.append(i)
        stages[target] += grow
        region_of[i] = target
    for reg in regions:
        reg.recs.sort()
    return regions, region_of


def _primitives(recs: list[NodeRecord], reg: Region, profile: Profile, source: str) -> tuple[list[GraphPrimitive], str]:
    """The region as a primitive list reading one external tensor (``inputs`` -1), and that tensor."""
    local: dict[str, int] = {}
    externals = {t for j in reg.recs for t in recs[j].inputs} - {recs[j].out for j in reg.recs}
    if len(externals) != 1:
        raise CostQueryError(f"{source}: kernel group at node {recs[reg.recs[0]].name!r} reads {len(externals)} "
                             f"tensors; the cost model's operators read one")
    prims: list[GraphPrimitive] = []
    pending = 0  # a BN on the region's input: scale + shift folded into the next primitive (its prologue)
    for j in reg.recs:
        r = recs[j]
        ins = tuple(local.get(t, -1) for t in r.inputs)
        if r.kind == "bn" and ins == (-1,) and (profile.fused or profile.fold_bn):
            pending += 2 * r.c_out
            local[r.out] = -1
            continue
        k = len(prims)
        inputs = () if ins in ((k - 1,),) or (k == 0 and ins == (-1,)) else ins
        prims.append(GraphPrimitive(r.kind, r.c_in, r.c_out, kernel=r.kernel, stride=r.stride, dilation=r.dilation,
                                    groups=r.groups, inputs=inputs, offset=r.slice_offset,
                                    extra_weight_elements=r.extra + pending))
        pending = 0
        local[r.out] = k
    if pending:  # nothing after it: an affine elementwise kernel
        prims.append(GraphPrimitive("relu", recs[reg.recs[0]].c_in, recs[reg.recs[0]].c_in,
                                    extra_weight_elements=pending))
    return prims, externals.pop()


def _op_term(g: OnnxGraph, recs: list[NodeRecord], reg: Region, profile: Profile) -> None:
    prims, reg.ext = _primitives(recs, reg, profile, g.source)
    shape = g.shapes[reg.ext]
    h, w = (shape[2], shape[3]) if len(shape) == 4 else (1, 1)
    label = "+".join(recs[j].op_type for j in reg.recs)
    cost = primitives_cost(profile, label, tuple(prims), shape[1], h, w, shape[0])
    reg.term, reg.scratch = op_term(cost), cost.scratch_bytes
    if profile.fused and all(p.kind == "relu" for p in prims):  # a lone leading BN: not aliased away
        n = _bytes(profile, shape)
        reg.term = _read(n) + _write(n) + Term(dram_read_bytes=sum(p.weight_elements for p in prims)
                                              * profile.bytes_per_element) + KERNEL


def onnx_cost(model: str | Path | onnx.ModelProto, profile: Profile | str, batch: int = 1) -> GraphCost:
    """DRAM bytes, time and energy of every kernel of an ONNX CNN at ``batch`` on ``profile`` (module doc)."""
    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise CostQueryError(f"batch must be a positive integer, got {batch!r}")
    source = "model" if isinstance(model, onnx.ModelProto) else str(model)
    if not isinstance(model, onnx.ModelProto):
        path = Path(model)
        if path.is_dir():
            raise CostQueryError(f"--onnx {model}: is a folder, not an ONNX file (hwnas export writes "
                                 f"{path / 'model.onnx'})")
        if not path.is_file():
            raise CostQueryError(f"--onnx {model}: no such file")
        if path.stat().st_size == 0:
            raise CostQueryError(f"--onnx {model}: the file is empty (0 bytes), not an ONNX model")
        try:
            model = onnx.load(str(model))
        except Exception as exc:  # protobuf's DecodeError and friends
            raise CostQueryError(f"--onnx {model}: not an ONNX model ({' '.join(str(exc).split())})") from None
    else:
        model = onnx.ModelProto.FromString(model.SerializeToString())  # shapes are fixed on a copy
    if not model.graph.node:  # protobuf parses many non-ONNX bytes as an empty model: never cost 0 silently
        raise CostQueryError(f"--onnx {source}: the graph has no nodes (an empty model, or not an ONNX file); "
                             "nothing to cost")
    g = OnnxGraph(model, batch, source)
    b = NodeReader(g, profile)
    recs = b.build()
    outputs = [b.resolve(t) for t in g.outputs]
    cons = _consumers(recs, outputs)
    _mark_sibling_concats(recs, cons, b.producer)
    regions, region_of = _regions(recs, cons, profile.fused)
    for reg in regions:
        if reg.kind == "op":
            _op_term(g, recs, reg, profile)
    joins: dict[str, int] = {}
    for r in recs:
        if r.kind == "join":
            for t in r.inputs:
                joins[t] = joins.get(t, 0) + 1
    for reg in regions:
        if reg.kind == "op":
            continue
        out_bytes = _bytes(profile, g.shapes[reg.out])
        inside = {recs[j].out for j in reg.recs}
        leaves = [(j, t) for j in reg.recs for t in recs[j].inputs if t not in inside]
        term = Term()
        if reg.kind == "add" and profile.fused:
            summed_reads = set()  # what the operators summed into this kernel already read
            for j, t in leaves:
                p = b.producer.get(t)
                if p is not None and cons.get(t) == [j] and regions[region_of[p]].kind == "op":
                    src = regions[region_of[p]]
                    src.term = src.term - _write(_bytes(profile, g.shapes[t])) - KERNEL  # summed on chip
                    src.into = reg.out
                    summed_reads.add(src.ext)
            for j, t in leaves:
                p = b.producer.get(t)
                if p is not None and regions[region_of[p]].into == reg.out:
                    continue
                reg.leaves.append(t)
                if t not in summed_reads:  # a residual input its branch reads too: one stream in one kernel
                    term = term + _read(_bytes(profile, g.shapes[t]))
            term = term + _write(out_bytes) + KERNEL
        elif reg.kind == "join" and profile.fused:
            for _j, t in leaves:
                if t not in b.producer or joins.get(t, 0) > 1:
                    n = _bytes(profile, g.shapes[t])
                    term = term + _read(n) + _write(n)
                    reg.copies.append(t)
                else:
                    reg.leaves.append(t)
            term = term + (KERNEL if term.dram_bytes else Term())
        else:  # unfused add / concat, copies: read every input, write the output, one kernel
            for _j, t in leaves:
                term = term + _read(_bytes(profile, g.shapes[t]))
                reg.leaves.append(t)
            term = term + _write(out_bytes) + KERNEL
        reg.term = term
    order = sorted(regions, key=lambda reg: reg.recs[0])  # execution order
    split = {id(reg): (reg.term, 0, 0) for reg in order}
    if profile.resident:  # tensors between the kernels stay on chip while they fit (cost_models.residency)
        split = resident_terms(profile, order, lambda t: _bytes(profile, g.shapes[t]), g.inputs, outputs)
    rows = []
    for reg in order:
        first = recs[reg.recs[0]]
        term, onchip, spilled = split[id(reg)]
        rows.append({"node": first.name, "ops": "+".join(recs[j].op_type for j in reg.recs), "kind": reg.kind,
                     "output": list(g.shapes.get(reg.out, ())), **term.to_dict(profile), "onchip_bytes": onchip,
                     "spilled_bytes": spilled})
    total = sum((split[id(reg)][0] for reg in regions), Term())
    result = GraphCost(profile.name, batch, total.dram_read_bytes, total.dram_write_bytes, total.dram_bytes,
                       total.compulsory_bytes, total.dram_latencies,
                       float(sum(r["dram_time_us"] for r in rows)), float(sum(r["dram_energy_uj"] for r in rows)),
                       b.params, b.macs, tuple(rows))
    log.debug("onnx cost of %s on %s: %d B, %.2f us over %d kernel groups", source, profile.name,
              result.dram_bytes, result.dram_time_us, len(rows))
    return result
