"""The networks the Stream cross-check compares and how their ONNX graphs are made ready for Stream:
cnn3 and hwnas's own 20-cell exports, BN folded, ReLUs removed, tensors retyped, fusion groups per schedule,
the peak live set. Split from ``stream_crosscheck.py`` (which runs Stream and prints the tables); no Stream
import here, only onnx and hwnas."""
from __future__ import annotations

import collections
import math
from pathlib import Path
from typing import Any

import onnx
from onnx import helper, numpy_helper
from onnx import TensorProto as TP

NETWORKS = ("cnn3", "pool", "sep", "darts")
LAYOUT_OPS = {"Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze"}  # Stream folds these: not layers
ELEM = {1: TP.INT8, 2: TP.INT16}
LAYERS, CHANNELS = 20, 36


# ------------------------------------------------------------------------------------------ networks
def _genotypes() -> dict[str, Any]:
    from searchspace.genotype import Genotype
    from searchspace.layout import reduction_cells

    def every(normal, reduce):
        red = set(reduction_cells(LAYERS))
        return Genotype.from_dict({"cells": [{"reduction": i in red, "edges": reduce if i in red else normal}
                                             for i in range(LAYERS)]})

    pools = [["max_pool_3x3", a, b] for b in range(2, 6) for a in (b - 2, b - 1)]
    seps = [["sep_conv_3x3", a, b] for b in range(2, 6) for a in (0, 1)]
    darts_normal = [["sep_conv_3x3", 0, 2], ["sep_conv_3x3", 1, 2], ["sep_conv_3x3", 0, 3], ["sep_conv_3x3", 1, 3],
                    ["sep_conv_3x3", 1, 4], ["skip_connect", 0, 4], ["skip_connect", 0, 5], ["dil_conv_3x3", 2, 5]]
    darts_reduce = [["max_pool_3x3", 0, 2], ["max_pool_3x3", 1, 2], ["skip_connect", 2, 3], ["max_pool_3x3", 1, 3],
                    ["max_pool_3x3", 0, 4], ["skip_connect", 2, 4], ["skip_connect", 2, 5], ["max_pool_3x3", 1, 5]]
    return {"pool": every(pools, pools), "sep": every(seps, seps), "darts": every(darts_normal, darts_reduce)}


def _cnn3():
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, c: int):
            super().__init__()
            self.pw1 = nn.Conv2d(c, c, 1, bias=False)
            self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
            self.pw2 = nn.Conv2d(c, c, 1, bias=False)
            self.pool = nn.MaxPool2d(3, 1, 1)

        def forward(self, x):  # x: (N, C, H, W)
            return self.pool(self.pw2(self.dw(self.pw1(x)))) + x

    return nn.Sequential(*(Block(36) for _ in range(3))).eval()


def export(name: str, path: Path) -> None:
    """The raw ONNX export of network ``name`` (hwnas's exporter, BN kept, dynamic batch)."""
    import torch

    from hwnas.cli.export import export_onnx

    torch.manual_seed(0)
    if name == "cnn3":
        net, x = _cnn3(), torch.zeros(1, 36, 32, 32)
    else:
        from searchspace.config import SearchConfig
        from searchspace.train_config import TrainConfig
        from trainables.full_train import build_network

        search = SearchConfig(dataset="fashion", layers=LAYERS, channels=CHANNELS)
        train = TrainConfig(dataset="fashion", layers=LAYERS, channels=CHANNELS)
        net, x = build_network(search, train, _genotypes()[name]).eval(), torch.zeros(1, 1, 32, 32)
    export_onnx(net, x, path)


# ------------------------------------------------------------------------------------------ graph preparation
def prepare(model: onnx.ModelProto, batch: int = 1) -> onnx.ModelProto:
    """BN folded into its Conv(s) as a bias, ReLU / Identity / Dropout removed, Constants made initializers,
    the batch fixed (module doc, "Making both see the same kernels"). Returns a shape-inferred copy."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    alias: dict[str, str] = {}
    producer: dict[str, onnx.NodeProto] = {}
    kept: list[onnx.NodeProto] = []

    def resolve(t: str) -> str:
        while t in alias:
            t = alias[t]
        return t

    for n in g.node:
        for i, t in enumerate(n.input):
            n.input[i] = resolve(t) if t else t
        if n.op_type == "Constant":
            g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(n.attribute[0].t), n.output[0]))
            continue
        if n.op_type in ("Relu", "Identity", "Dropout"):
            alias[n.output[0]] = n.input[0]
            continue
        if n.op_type == "BatchNormalization":
            src = producer.get(n.input[0])
            convs = [src] if src is not None and src.op_type == "Conv" else \
                [producer.get(t) for t in src.input] if src is not None and src.op_type == "Concat" else [None]
            if any(c is None or c.op_type != "Conv" for c in convs):
                raise ValueError(f"BN {n.name!r} follows neither a Conv nor a Concat of Convs: cannot fold it")
            for c in convs:
                if len(c.input) < 3 or not c.input[2]:
                    bias = numpy_helper.from_array(numpy_helper.to_array(inits[c.input[1]])[:, 0, 0, 0] * 0,
                                                   c.name + ".folded_bn_bias")
                    g.initializer.append(bias)
                    del c.input[2:]
                    c.input.append(bias.name)
            alias[n.output[0]] = n.input[0]
            continue
        producer[n.output[0]] = n
        kept.append(n)
    for out in g.output:  # a removed node's output that is the graph output: its source takes the name
        src = resolve(out.name)
        if src != out.name:
            producer[src].output[0] = out.name
            for n in kept:
                n.input[:] = [out.name if t == src else t for t in n.input]
    del g.node[:]
    g.node.extend(kept)
    used = {t for n in kept for t in n.input}
    live = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    del g.value_info[:]
    for v in list(g.input) + list(g.output):
        dim = v.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = batch
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    onnx.checker.check_model(m)
    return m


def stream_model(model: onnx.ModelProto, bytes_per_element: int) -> onnx.ModelProto:
    """The prepared graph as Stream reads it: Slices folded into their reader's pads, tensors retyped."""
    m = onnx.ModelProto.FromString(model.SerializeToString())
    g = m.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    view: dict[str, tuple[str, int, int]] = {}  # Slice output -> (source, H offset, W offset)
    for n in list(g.node):
        if n.op_type == "Slice":
            base, oh, ow = view.get(n.input[0], (n.input[0], 0, 0))
            starts = consts[n.input[1]]
            ends = consts[n.input[2]]
            axes = consts[n.input[3]] if len(n.input) > 3 and n.input[3] else range(len(starts))
            steps = consts[n.input[4]] if len(n.input) > 4 and n.input[4] else [1] * len(starts)
            for a, st, en, sp in zip(axes, starts, ends, steps):
                if int(a) % 4 not in (2, 3) or int(sp) != 1 or int(en) < 2 ** 30:
                    raise ValueError(f"Slice {n.name!r}: only x[:, :, a:, b:] is folded for Stream")
                oh, ow = (oh + int(st), ow) if int(a) % 4 == 2 else (oh, ow + int(st))
            view[n.output[0]] = (base, oh, ow)
            g.node.remove(n)
            continue
        for i, t in enumerate(n.input):
            if t in view:
                if n.op_type not in ("Conv", "MaxPool") or i != 0:
                    raise ValueError(f"{n.name!r} ({n.op_type}) reads a Slice; only a Conv or MaxPool may")
                base, oh, ow = view[t]
                pads = next((a for a in n.attribute if a.name == "pads"), None)
                if pads is None:
                    n.attribute.append(helper.make_attribute("pads", [0, 0, 0, 0]))
                    pads = n.attribute[-1]
                pads.ints[0] -= oh  # leading pad -a: the window reads from pixel a (same output shape)
                pads.ints[1] -= ow
                n.input[0] = base
    vis = [v for v in g.value_info if v.name not in view]  # ONNX inference cannot redo a negative pad
    del g.value_info[:]
    g.value_info.extend(vis)
    elem = ELEM[bytes_per_element]
    for v in list(g.input) + list(g.output) + list(g.value_info):
        if v.type.tensor_type.elem_type == TP.FLOAT:
            v.type.tensor_type.elem_type = elem
    typed = [TP(name=t.name, data_type=elem, dims=list(t.dims)) if t.data_type == TP.FLOAT else t
             for t in g.initializer]  # shapes only: Stream reads no weight values
    del g.initializer[:]
    g.initializer.extend(typed)
    return m


def _unit(name: str) -> str:
    """A node's top-level module: "/cells.3/edges.0/.../Conv" -> "cells.3" (a block or cell of the export)."""
    parts = name.split("/")
    return parts[1] if len(parts) > 2 else name


def schedules(model: onnx.ModelProto) -> dict[str, list[list[int]]]:
    """Fusion groups per schedule, as lists of node indices (module doc, "Schedules"). ``per-layer``, ``fused``
    and ``whole`` are contiguous in graph order, as Stream's ``split_fusion_groups`` cuts them (its topological
    order is the graph's); ``kernel`` follows hwnas's shipped kernels (``kernel_groups``). A layout op
    (Flatten) goes with the layer after it, whose access map Stream folds it into."""
    nodes = model.graph.node

    def cut(ends: set[int]) -> list[list[int]]:
        groups, cur = [], []
        for j in range(len(nodes)):
            cur.append(j)
            if j in ends:
                groups.append(cur)
                cur = []
        return groups + ([cur] if cur else [])

    layers = [j for j, n in enumerate(nodes) if n.op_type not in LAYOUT_OPS]
    per_block = {a for a, b in zip(layers, layers[1:]) if _unit(nodes[a].name) != _unit(nodes[b].name)}
    return {"per-layer": cut(set(layers)), "kernel": kernel_groups(model), "fused": cut(per_block),
            "whole": cut(set())}


def kernel_groups(model: onnx.ModelProto) -> list[list[int]]:
    """hwnas's kernels on a fused profile (``cost_models.onnx_graph``) as groups: a layer joins the group of its
    only reader when that reader is a Conv, pool, Add, Gemm or layout op (an operator's chain, its output summed
    into its node's Add on chip), or a Concat of Convs that all read one tensor (the factorized reduce). A cell's
    output Concat stays a group of its own (hwnas writes it in place; Stream copies: doc item 1)."""
    nodes = model.graph.node
    outputs = {o.name for o in model.graph.output}
    producer = {t: j for j, n in enumerate(nodes) for t in n.output}
    readers: dict[str, list[int]] = collections.defaultdict(list)
    for j, n in enumerate(nodes):
        for t in n.input:
            readers[t].append(j)

    def sibling_concat(c: onnx.NodeProto) -> bool:
        srcs = [nodes[producer[t]] for t in c.input if t in producer]
        return len(srcs) == len(c.input) and all(s.op_type == "Conv" for s in srcs) \
            and len({s.input[0] for s in srcs}) == 1

    group = list(range(len(nodes)))
    for j in reversed(range(len(nodes))):
        out = nodes[j].output[0]
        r = readers.get(out, [])
        if out in outputs or len(r) != 1:
            continue
        c = nodes[r[0]]
        if c.op_type in ("Conv", "MaxPool", "Add", "GlobalAveragePool", "Gemm", *LAYOUT_OPS) or \
                (c.op_type == "Concat" and sibling_concat(c)):
            group[j] = group[r[0]]
    members: dict[int, list[int]] = collections.defaultdict(list)
    for j, g in enumerate(group):
        members[g].append(j)
    return sorted(members.values())


def group_model(model: onnx.ModelProto, members: list[int]) -> onnx.ModelProto:
    """The layers ``members`` as a model of their own: its inputs the tensors it reads from outside (DRAM), its
    weights, its one output (what later layers or the network output read), the layers' names and tensor names
    canonical (n0, t0, ...) so that equal groups serialize equal."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    info = {v.name: v for v in list(g.input) + list(g.output) + list(g.value_info)}
    chosen = [g.node[j] for j in members]
    inside = {t for n in chosen for t in n.output}
    outside_reads = {t for j, n in enumerate(g.node) if j not in set(members) for t in n.input}
    outputs = [t for n in chosen for t in n.output if t in outside_reads or t in {o.name for o in g.output}]
    if len(outputs) != 1:
        raise ValueError(f"group at {chosen[0].name!r} has {len(outputs)} outputs; Stream's ONNX parser takes one")
    inputs = list(dict.fromkeys(t for n in chosen for t in n.input if t and t not in inside and t not in inits))
    names: dict[str, str] = {}

    def rename(t: str) -> str:
        return names.setdefault(t, f"t{len(names)}") if t else t

    for t in inputs:
        rename(t)
    nodes = []
    for k, n in enumerate(chosen):
        c = onnx.NodeProto()
        c.CopyFrom(n)
        c.name = f"n{k}"
        c.input[:] = [rename(t) for t in n.input]
        c.output[:] = [rename(t) for t in n.output]
        nodes.append(c)

    def renamed_info(t: str) -> onnx.ValueInfoProto:
        v = onnx.ValueInfoProto()
        v.CopyFrom(info[t])
        v.name = names[t]
        return v

    weights = []
    for t in dict.fromkeys(t for n in chosen for t in n.input if t in inits):
        w = TP()
        w.CopyFrom(inits[t])
        w.name = rename(t)
        weights.append(w)
    graph = helper.make_graph(nodes, "group", [renamed_info(t) for t in inputs], [renamed_info(outputs[0])], weights,
                              value_info=[renamed_info(t) for n in chosen for t in n.output
                                          if t != outputs[0] and t in info])
    return helper.make_model(graph, opset_imports=model.opset_import, producer_name="stream_crosscheck")


def live_peak(model: onnx.ModelProto, bytes_per_element: int) -> int:
    """Peak bytes on chip if every tensor stayed there from its write to its last read, layer by layer in
    graph order: at each layer, the tensors written earlier and read at or after it, its output, its weights."""
    g = model.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(g.input) + list(g.output) + list(g.value_info)}
    weights = {t.name: math.prod(t.dims) for t in g.initializer}
    size = {t: math.prod(s) * bytes_per_element for t, s in shapes.items()}
    last: dict[str, int] = {}
    for j, n in enumerate(g.node):
        for t in n.input:
            last[t] = j
    live = {t.name for t in g.input}
    peak = 0
    for j, n in enumerate(g.node):
        w = sum(weights.get(t, 0) for t in n.input) * bytes_per_element
        outs = [t for t in n.output if t in size]
        peak = max(peak, sum(size[t] for t in live) + sum(size[t] for t in outs) + w)
        live |= {t for t in outs if last.get(t, -1) > j}
        live = {t for t in live if last.get(t, -1) > j}
    return peak


# ------------------------------------------------------------------------------------------ Stream side
