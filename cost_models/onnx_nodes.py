"""ONNX nodes as the DRAM cost model sees them: ``OnnxGraph`` (static shapes with the batch axis fixed,
constants, every node checked against ``SUPPORTED``) and ``NodeReader`` (nodes -> ``NodeRecord``s, with
views, slices, biases, fused pads and fused ReLUs folded away). ``cost_models.onnx_graph`` groups the
records into kernels and costs them. Imports onnx, never torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import onnx
from onnx import numpy_helper

from .profile import CostQueryError, Profile

ACTIVATIONS = ("Relu", "Clip")
VIEWS = ("Flatten", "Identity", "Dropout", "Reshape")
SUPPORTED = ("Conv", "BatchNormalization", *ACTIVATIONS, "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm",
             "MatMul", "Add", "Concat", "Pad", "Slice", *VIEWS, "Constant")
OPERATOR_KINDS = ("conv", "bn", "relu", "max_pool", "avg_pool", "global_avg_pool", "linear", "concat")


@dataclass
class NodeRecord:
    """One ONNX node as the cost model sees it (views, slices, biases and constants already folded)."""

    name: str
    op_type: str
    kind: str  # one of OPERATOR_KINDS, or "add" / "join" (a junction concat) / "copy"
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



class OnnxGraph:
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


def node_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def square_attr(values, what: str, node: onnx.NodeProto, source: str) -> int:
    values = list(values)
    if len(set(values)) > 1:
        raise CostQueryError(f"{source}: node {node.name!r} ({node.op_type}) has a non-square {what} {values}; "
                             f"the cost model takes square kernels, strides and dilations")
    return int(values[0]) if values else 1


def numel(shape: tuple[int, ...]) -> int:
    return int(math.prod(shape))


class NodeReader:
    """ONNX nodes -> records (views, slices, biases, fused pads and fused ReLUs folded away)."""

    def __init__(self, g: OnnxGraph, profile: Profile):
        self.g, self.profile = g, profile
        self.alias: dict[str, str] = {}
        self.offset: dict[str, tuple[str, int, int]] = {}  # slice output -> (source, H offset, W offset)
        self.recs: list[NodeRecord] = []
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

    def add(self, rec: NodeRecord) -> None:
        self.producer[rec.out] = len(self.recs)
        self.recs.append(rec)

    def build(self) -> list[NodeRecord]:
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
        self.add(NodeRecord(node.name, node.op_type, "copy", [src], node.output[0]))

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
        a, src_off = node_attrs(node), self._reads(node)
        src, off = src_off
        w = self.g.shape(node.input[1], node)
        k = square_attr(a.get("kernel_shape", w[2:]), "kernel", node, self.g.source)
        s = square_attr(a.get("strides", [1]), "stride", node, self.g.source)
        d = square_attr(a.get("dilations", [1]), "dilation", node, self.g.source)
        groups = int(a.get("group", 1))
        c_in, c_out = self.g.shape(src, node)[1], int(w[0])
        bias = c_out if len(node.input) > 2 and node.input[2] else 0
        out = self.g.shape(node.output[0], node)
        self.params += numel(w) + bias
        self.macs += numel(out) * (c_in // groups) * k * k
        self.add(NodeRecord(node.name, "Conv", "conv", [src], node.output[0], k, s, d, groups, c_in, c_out, bias,
                      self._spatial(node, src, off, k, s, d)))

    def _on_pool(self, node: onnx.NodeProto, kind: str) -> None:
        a = node_attrs(node)
        src, off = self._reads(node)
        k = square_attr(a["kernel_shape"], "kernel", node, self.g.source)
        s = square_attr(a.get("strides", [1]), "stride", node, self.g.source)
        c = self.g.shape(src, node)[1]
        self.add(NodeRecord(node.name, node.op_type, kind, [src], node.output[0], k, s, 1, 1, c, c, 0,
                      self._spatial(node, src, off, k, s, 1)))

    def _on_MaxPool(self, node: onnx.NodeProto) -> None:
        self._on_pool(node, "max_pool")

    def _on_AveragePool(self, node: onnx.NodeProto) -> None:
        self._on_pool(node, "avg_pool")

    def _unary(self, node: onnx.NodeProto, kind: str) -> None:
        (src,) = self.act_inputs(node)[:1]
        c = self.g.shape(src, node)[1]
        self.add(NodeRecord(node.name, node.op_type, kind, [src], node.output[0], c_in=c, c_out=c))

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
        transposed = node.op_type == "Gemm" and node_attrs(node).get("transB", 0)
        c_in, c_out = (int(w[1]), int(w[0])) if len(w) == 2 and transposed else (int(w[0]), int(w[-1]))
        if len(w) != 2 or numel(x[1:]) != c_in or len(x) == 4 and x[2:] != (1, 1):
            raise CostQueryError(f"{self.g.source}: node {node.name!r} ({node.op_type}) on a {list(x)} input; the "
                                 f"cost model takes a (batch, features) linear layer")
        has_bias = node.op_type == "Gemm" and len(node.input) > 2 and bool(node.input[2])
        self.params += c_in * c_out + (c_out if has_bias else 0)
        self.macs += x[0] * c_in * c_out
        self.add(NodeRecord(node.name, node.op_type, "linear", [src], node.output[0], c_in=c_in, c_out=c_out,
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
            self.recs[p].extra += numel(self.g.shape(consts[0], node)) - (self.recs[p].c_out
                                                                            if self.recs[p].extra < 0 else 0)
            self.alias[node.output[0]] = ins[0]
            return
        self.add(NodeRecord(node.name, "Add", "add", ins, node.output[0]))

    def _on_Concat(self, node: onnx.NodeProto) -> None:
        ins = self.act_inputs(node)
        if int(node_attrs(node).get("axis", 1)) not in (1, -3):
            raise CostQueryError(f"{self.g.source}: Concat node {node.name!r} is not on the channel axis")
        shape = self.g.shape(node.output[0], node)
        self.add(NodeRecord(node.name, "Concat", "join", ins, node.output[0], c_in=shape[1], c_out=shape[1]))


# ---------------------------------------------------------------------------------------- kernel groups
