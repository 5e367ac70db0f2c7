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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from onnx import numpy_helper

from searchspace.ops import Primitive

from .accounting import KERNEL, Term, op_term, tensor_bytes
from .profile import CostQueryError, Profile, load_profile
from .traffic import primitives_cost

log = logging.getLogger(__name__)

MAX_STAGES = 8  # compute stages per operator region: bounds the 2^intermediates keep/spill plans
ACTIVATIONS = ("Relu", "Clip")
VIEWS = ("Flatten", "Identity", "Dropout", "Reshape")
SUPPORTED = ("Conv", "BatchNormalization", *ACTIVATIONS, "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm",
             "MatMul", "Add", "Concat", "Pad", "Slice", *VIEWS, "Constant")
_OPERATOR_KINDS = ("conv", "bn", "relu", "max_pool", "avg_pool", "global_avg_pool", "linear", "concat")
_STAGE_KINDS = ("conv", "max_pool", "avg_pool", "global_avg_pool", "linear", "concat")


@dataclass(frozen=True)
class GraphPrimitive(Primitive):
    """A primitive with extra weight elements: a conv's bias, a Gemm without one (-c_out), a leading BN."""

    extra_weight_elements: int = 0

    @property
    def weight_elements(self) -> int:
        return super().weight_elements + self.extra_weight_elements


@dataclass
class _Rec:
    """One ONNX node as the cost model sees it (views, slices, biases and constants already folded)."""

    name: str
    op_type: str
    kind: str  # one of _OPERATOR_KINDS, or "add" / "join" (a junction concat) / "copy"
    inputs: list[str]  # activation tensors read
    out: str
    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    c_in: int = 0
    c_out: int = 0
    extra: int = 0
    slice_offset: int = 0


@dataclass
class _Region:
    kind: str  # "op", "add", "join", "copy"
    recs: list[int] = field(default_factory=list)
    term: Term = field(default_factory=Term)
    out: str = ""


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


class _Graph:
    """Shapes and constants of a model whose batch axis is fixed; every node checked against SUPPORTED."""

    def __init__(self, model: onnx.ModelProto, batch: int, source: str):
        self.source = source
        graph = model.graph
        self.consts: dict[str, Any] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in self.consts]
        for inp in inputs:
            dims = inp.type.tensor_type.shape.dim
            for k, d in enumerate(dims):
                if k == 0 and not d.HasField("dim_value") or k == 0 and d.dim_value in (0, batch):
                    d.Clear()
                    d.dim_value = batch
                elif not d.HasField("dim_value"):
                    raise CostQueryError(f"{source}: input {inp.name!r} has a dynamic axis {k} ({d.dim_param!r}) "
                                         f"besides the batch; export it with a fixed image size")
                elif k == 0:
                    raise CostQueryError(f"{source}: input {inp.name!r} has a fixed batch of {d.dim_value}; "
                                         f"cost it with --batch {d.dim_value} or export a dynamic batch axis")
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        except Exception as exc:  # onnx raises its own InferenceError types
            raise CostQueryError(f"{source}: ONNX shape inference failed: {exc}") from None
        self.shapes: dict[str, tuple[int, ...]] = {}
        for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
            dims = vi.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                self.shapes[vi.name] = tuple(int(d.dim_value) for d in dims)
        for name, arr in self.consts.items():
            self.shapes[name] = tuple(arr.shape)
        self.inputs = [i.name for i in inputs]
        self.outputs = [o.name for o in graph.output]
        self.nodes = list(graph.node)

    def shape(self, tensor: str, node: onnx.NodeProto) -> tuple[int, ...]:
        if tensor not in self.shapes:
            raise CostQueryError(f"{self.source}: no static shape for tensor {tensor!r} read by node "
                                 f"{node.name!r} ({node.op_type})")
        return self.shapes[tensor]


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _square(values, what: str, node: onnx.NodeProto, source: str) -> int:
    values = list(values)
    if len(set(values)) > 1:
        raise CostQueryError(f"{source}: node {node.name!r} ({node.op_type}) has a non-square {what} {values}; "
                             f"the cost model takes square kernels, strides and dilations")
    return int(values[0]) if values else 1


def _numel(shape: tuple[int, ...]) -> int:
    return int(math.prod(shape))


def _bytes(profile: Profile, shape: tuple[int, ...]) -> int:
    return tensor_bytes(profile, 1, _numel(shape), 1, 1)


def _read(n: int) -> Term:
    return Term(dram_read_bytes=n, compulsory_bytes=n)


def _write(n: int) -> Term:
    return Term(dram_write_bytes=n, compulsory_bytes=n)


class _Builder:
    """ONNX nodes -> records (views, slices, biases, fused pads and fused ReLUs folded away)."""

    def __init__(self, g: _Graph, profile: Profile):
        self.g, self.profile = g, profile
        self.alias: dict[str, str] = {}
        self.offset: dict[str, tuple[str, int, int]] = {}  # slice output -> (source, H offset, W offset)
        self.recs: list[_Rec] = []
        self.producer: dict[str, int] = {}
        self.params = 0
        self.macs = 0

    def resolve(self, t: str) -> str:
        while t in self.alias:
            t = self.alias[t]
        return t

    def is_const(self, t: str) -> bool:
        return self.resolve(t) in self.g.consts

    def act_inputs(self, node: onnx.NodeProto) -> list[str]:
        ins = [self.resolve(t) for t in node.input if t and not self.is_const(t)]
        for t in ins:
            if t in self.offset:
                raise CostQueryError(f"{self.g.source}: node {node.name!r} ({node.op_type}) reads the output of a "
                                     f"Slice; only a Conv or a pool may read a spatial-offset Slice")
        return ins

    def add(self, rec: _Rec) -> None:
        self.producer[rec.out] = len(self.recs)
        self.recs.append(rec)

    def build(self) -> list[_Rec]:
        for node in self.g.nodes:
            op = node.op_type
            if op not in SUPPORTED or node.domain not in ("", "ai.onnx"):
                raise CostQueryError(f"{self.g.source}: unsupported ONNX op {op!r} at node {node.name!r}; the DRAM "
                                     f"model covers {', '.join(SUPPORTED)}")
            getattr(self, f"_on_{op}", self._on_other)(node)
        return self.recs

    # ------------------------------------------------------------------ constants and views
    def _on_Constant(self, node: onnx.NodeProto) -> None:
        a = node.attribute[0]
        value = onnx.helper.get_attribute_value(a)
        self.g.consts[node.output[0]] = numpy_helper.to_array(value) if a.name == "value" else value

    def _on_other(self, node: onnx.NodeProto) -> None:  # the views
        ins = [t for t in node.input if t]
        if ins and self.is_const(ins[0]):
            self.g.consts[node.output[0]] = self.g.consts[self.resolve(ins[0])]
            return
        self.alias[node.output[0]] = self.act_inputs(node)[0]

    def _on_Slice(self, node: onnx.NodeProto) -> None:
        src = self.resolve(node.input[0])
        base, oh, ow = self.offset.get(src, (src, 0, 0))
        starts, ends, axes, steps = (self.g.consts.get(self.resolve(t)) if t else None
                                     for t in [*node.input[1:5], "", "", "", ""][:4])
        shape = self.g.shape(base, node)
        axes = [int(a) % len(shape) for a in (axes if axes is not None else range(len(starts)))]
        ok = starts is not None and ends is not None and len(shape) == 4 and set(axes) <= {2, 3} \
            and (steps is None or all(int(x) == 1 for x in steps)) \
            and all(int(e) >= shape[a] for a, e in zip(axes, ends))
        if not ok:
            raise CostQueryError(f"{self.g.source}: Slice node {node.name!r}: only a start offset on H and W (to the "
                                 f"end, step 1) read by a Conv or pool is supported")
        for a, st in zip(axes, starts):
            oh, ow = (oh + int(st), ow) if a == 2 else (oh, ow + int(st))
        self.offset[node.output[0]] = (base, oh, ow)

    def _on_Pad(self, node: onnx.NodeProto) -> None:
        (src,) = self.act_inputs(node)[:1]
        if self.profile.fused:
            self.alias[node.output[0]] = src  # the reading Conv/pool pads on chip
            return
        self.add(_Rec(node.name, node.op_type, "copy", [src], node.output[0]))

    # ------------------------------------------------------------------ compute nodes
    def _reads(self, node: onnx.NodeProto) -> tuple[str, int]:
        t = self.resolve(node.input[0])
        base, oh, ow = self.offset.get(t, (t, 0, 0))
        if oh != ow:
            raise CostQueryError(f"{self.g.source}: node {node.name!r} reads a Slice with unequal H and W offsets")
        return base, oh

    def _spatial(self, node: onnx.NodeProto, src: str, off: int, k: int, s: int, d: int) -> int:
        """The offset that makes ceil((H - offset) / s) the ONNX output height (module doc)."""
        h = self.g.shape(src, node)[2:]
        out = self.g.shape(node.output[0], node)[2:]
        offs = set()
        for hi, ho in zip(h, out):
            o = off if -(-(hi - off) // s) == ho else hi - ho * s
            if o < off or -(-(hi - o) // s) != ho:
                raise CostQueryError(f"{self.g.source}: node {node.name!r} ({node.op_type}) outputs {list(out)} from "
                                     f"{list(h)} at stride {s}: more padding than 'same', not in the cost model")
            offs.add(o)
        if len(offs) > 1:
            raise CostQueryError(f"{self.g.source}: node {node.name!r} ({node.op_type}): unequal H and W padding")
        return offs.pop()

    def _on_Conv(self, node: onnx.NodeProto) -> None:
        a, src_off = _attrs(node), self._reads(node)
        src, off = src_off
        w = self.g.shape(node.input[1], node)
        k = _square(a.get("kernel_shape", w[2:]), "kernel", node, self.g.source)
        s = _square(a.get("strides", [1]), "stride", node, self.g.source)
        d = _square(a.get("dilations", [1]), "dilation", node, self.g.source)
        groups = int(a.get("group", 1))
        c_in, c_out = self.g.shape(src, node)[1], int(w[0])
        bias = c_out if len(node.input) > 2 and node.input[2] else 0
        out = self.g.shape(node.output[0], node)
        self.params += _numel(w) + bias
        self.macs += _numel(out) * (c_in // groups) * k * k
        self.add(_Rec(node.name, "Conv", "conv", [src], node.output[0], k, s, d, groups, c_in, c_out, bias,
                      self._spatial(node, src, off, k, s, d)))

    def _on_pool(self, node: onnx.NodeProto, kind: str) -> None:
        a = _attrs(node)
        src, off = self._reads(node)
        k = _square(a["kernel_shape"], "kernel", node, self.g.source)
        s = _square(a.get("strides", [1]), "stride", node, self.g.source)
        c = self.g.shape(src, node)[1]
        self.add(_Rec(node.name, node.op_type, kind, [src], node.output[0], k, s, 1, 1, c, c, 0,
                      self._spatial(node, src, off, k, s, 1)))

    def _on_MaxPool(self, node: onnx.NodeProto) -> None:
        self._on_pool(node, "max_pool")

    def _on_AveragePool(self, node: onnx.NodeProto) -> None:
        self._on_pool(node, "avg_pool")

    def _unary(self, node: onnx.NodeProto, kind: str) -> None:
        (src,) = self.act_inputs(node)[:1]
        c = self.g.shape(src, node)[1]
        self.add(_Rec(node.name, node.op_type, kind, [src], node.output[0], c_in=c, c_out=c))

    def _on_Relu(self, node: onnx.NodeProto) -> None:
        if self.profile.fused:  # the prologue of every consumer (module doc)
            self.alias[node.output[0]] = self.act_inputs(node)[0]
        else:
            self._unary(node, "relu")

    _on_Clip = _on_Relu

    def _on_BatchNormalization(self, node: onnx.NodeProto) -> None:
        self._unary(node, "bn")
        self.params += 4 * self.recs[-1].c_out

    def _on_GlobalAveragePool(self, node: onnx.NodeProto) -> None:
        self._unary(node, "global_avg_pool")

    def _on_Gemm(self, node: onnx.NodeProto) -> None:
        (src,) = self.act_inputs(node)[:1]
        x, w = self.g.shape(src, node), self.g.shape(node.input[1], node)
        transposed = node.op_type == "Gemm" and _attrs(node).get("transB", 0)
        c_in, c_out = (int(w[1]), int(w[0])) if len(w) == 2 and transposed else (int(w[0]), int(w[-1]))
        if len(w) != 2 or _numel(x[1:]) != c_in or len(x) == 4 and x[2:] != (1, 1):
            raise CostQueryError(f"{self.g.source}: node {node.name!r} ({node.op_type}) on a {list(x)} input; the "
                                 f"cost model takes a (batch, features) linear layer")
        has_bias = node.op_type == "Gemm" and len(node.input) > 2 and bool(node.input[2])
        self.params += c_in * c_out + (c_out if has_bias else 0)
        self.macs += x[0] * c_in * c_out
        self.add(_Rec(node.name, node.op_type, "linear", [src], node.output[0], c_in=c_in, c_out=c_out,
                      extra=0 if has_bias else -c_out))

    _on_MatMul = _on_Gemm

    def _on_Add(self, node: onnx.NodeProto) -> None:
        consts = [t for t in node.input if self.is_const(t)]
        ins = self.act_inputs(node)
        if consts:  # a bias: the epilogue of a Conv / Gemm / MatMul
            p = self.producer.get(ins[0]) if len(ins) == 1 else None
            if p is None or self.recs[p].kind not in ("conv", "linear"):
                raise CostQueryError(f"{self.g.source}: node {node.name!r} adds a constant to something other than a "
                                     f"Conv/Gemm/MatMul output; not in the cost model")
            self.recs[p].extra += _numel(self.g.shape(consts[0], node)) - (self.recs[p].c_out
                                                                            if self.recs[p].extra < 0 else 0)
            self.alias[node.output[0]] = ins[0]
            return
        self.add(_Rec(node.name, "Add", "add", ins, node.output[0]))

    def _on_Concat(self, node: onnx.NodeProto) -> None:
        ins = self.act_inputs(node)
        if int(_attrs(node).get("axis", 1)) not in (1, -3):
            raise CostQueryError(f"{self.g.source}: Concat node {node.name!r} is not on the channel axis")
        shape = self.g.shape(node.output[0], node)
        self.add(_Rec(node.name, "Concat", "join", ins, node.output[0], c_in=shape[1], c_out=shape[1]))


# ---------------------------------------------------------------------------------------- kernel groups
def _consumers(recs: list[_Rec], outputs: list[str]) -> dict[str, list[int]]:
    """tensor -> indices of the records reading it; -1 for a graph output (it must be written)."""
    cons: dict[str, list[int]] = {t: [-1] for t in outputs}
    for i, r in enumerate(recs):
        for t in r.inputs:
            cons.setdefault(t, []).append(i)
    return cons


def _mark_sibling_concats(recs: list[_Rec], cons: dict[str, list[int]], producer: dict[str, int]) -> None:
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


def _regions(recs: list[_Rec], cons: dict[str, list[int]], fused: bool) -> tuple[list[_Region], list[int]]:
    """Kernel groups, built from the graph's end: a record joins its only consumer's operator region
    (at most MAX_STAGES stages); fused, an Add whose only consumer is an Add joins that node sum."""
    region_of = [-1] * len(recs)
    regions: list[_Region] = []
    stages: list[int] = []
    for i in reversed(range(len(recs))):
        r = recs[i]
        c = cons.get(r.out, [])
        target = region_of[c[0]] if len(c) == 1 and c[0] >= 0 else -1
        if r.kind in _OPERATOR_KINDS:
            grow = int(r.kind in _STAGE_KINDS)
            joins = target >= 0 and recs[c[0]].kind in _OPERATOR_KINDS and stages[target] + grow <= MAX_STAGES
            kind = "op"
        else:
            grow, kind = 0, {"add": "add"}.get(r.kind, r.kind)
            joins = target >= 0 and fused and r.kind == "add" and recs[c[0]].kind == "add"
        if not joins:
            regions.append(_Region(kind, out=r.out))
            stages.append(0)
            target = len(regions) - 1
        regions[target].recs.append(i)
        stages[target] += grow
        region_of[i] = target
    for reg in regions:
        reg.recs.sort()
    return regions, region_of


def _primitives(recs: list[_Rec], reg: _Region, profile: Profile, source: str) -> tuple[list[GraphPrimitive], str]:
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


def _op_term(g: _Graph, recs: list[_Rec], reg: _Region, profile: Profile) -> Term:
    prims, ext = _primitives(recs, reg, profile, g.source)
    shape = g.shapes[ext]
    h, w = (shape[2], shape[3]) if len(shape) == 4 else (1, 1)
    label = "+".join(recs[j].op_type for j in reg.recs)
    cost = primitives_cost(profile, label, tuple(prims), shape[1], h, w, shape[0])
    term = op_term(cost)
    if profile.fused and all(p.kind == "relu" for p in prims):  # a lone leading BN: not aliased away
        n = _bytes(profile, shape)
        term = _read(n) + _write(n) + Term(dram_read_bytes=sum(p.weight_elements for p in prims)
                                          * profile.bytes_per_element) + KERNEL
    return term


def onnx_cost(model: str | Path | onnx.ModelProto, profile: Profile | str, batch: int = 1) -> GraphCost:
    """DRAM bytes, time and energy of every kernel of an ONNX CNN at ``batch`` on ``profile`` (module doc)."""
    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise CostQueryError(f"batch must be a positive integer, got {batch!r}")
    source = "model" if isinstance(model, onnx.ModelProto) else str(model)
    if not isinstance(model, onnx.ModelProto):
        if not Path(model).is_file():
            raise CostQueryError(f"--onnx {model}: no such file")
        try:
            model = onnx.load(str(model))
        except Exception as exc:  # protobuf's DecodeError and friends
            raise CostQueryError(f"--onnx {model}: not an ONNX model ({exc})") from None
    else:
        model = onnx.ModelProto.FromString(model.SerializeToString())  # shapes are fixed on a copy
    g = _Graph(model, batch, source)
    b = _Builder(g, profile)
    recs = b.build()
    outputs = [b.resolve(t) for t in g.outputs]
    cons = _consumers(recs, outputs)
    _mark_sibling_concats(recs, cons, b.producer)
    regions, region_of = _regions(recs, cons, profile.fused)
    for reg in regions:
        if reg.kind == "op":
            reg.term = _op_term(g, recs, reg, profile)
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
            for j, t in leaves:
                p = b.producer.get(t)
                if p is not None and cons.get(t) == [j] and regions[region_of[p]].kind == "op":
                    src = regions[region_of[p]]
                    src.term = src.term - _write(_bytes(profile, g.shapes[t])) - KERNEL  # summed on chip
                else:
                    term = term + _read(_bytes(profile, g.shapes[t]))
            term = term + _write(out_bytes) + KERNEL
        elif reg.kind == "join" and profile.fused:
            for _j, t in leaves:
                if t not in b.producer or joins.get(t, 0) > 1:
                    n = _bytes(profile, g.shapes[t])
                    term = term + _read(n) + _write(n)
            term = term + (KERNEL if term.dram_bytes else Term())
        else:  # unfused add / concat, copies: read every input, write the output, one kernel
            for _j, t in leaves:
                term = term + _read(_bytes(profile, g.shapes[t]))
            term = term + _write(out_bytes) + KERNEL
        reg.term = term
    rows = []
    for reg in sorted(regions, key=lambda reg: reg.recs[0]):  # execution order
        first = recs[reg.recs[0]]
        rows.append({"node": first.name, "ops": "+".join(recs[j].op_type for j in reg.recs), "kind": reg.kind,
                     "output": list(g.shapes.get(reg.out, ())), **reg.term.to_dict(profile)})
    total = sum((reg.term for reg in regions), Term())
    result = GraphCost(profile.name, batch, total.dram_read_bytes, total.dram_write_bytes, total.dram_bytes,
                       total.compulsory_bytes, total.dram_latencies,
                       float(sum(r["dram_time_us"] for r in rows)), float(sum(r["dram_energy_uj"] for r in rows)),
                       b.params, b.macs, tuple(rows))
    log.debug("onnx cost of %s on %s: %d B, %.2f us over %d kernel groups", source, profile.name,
              result.dram_bytes, result.dram_time_us, len(rows))
    return result
