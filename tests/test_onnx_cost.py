"""hwnas cost --onnx: the DRAM model on ONNX graphs (cost_models.onnx_graph). hwnas's own export costs
exactly what network_cost says on every fused profile; unsupported ops name the op and the node."""
import json

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

from cost_models.onnx_graph import onnx_cost
from cost_models.profile import CostQueryError, list_profiles
from cost_models.traffic import primitive_cost
from hwnas.cli import main as hwnas
from hwnas.cli.export import export_onnx
from searchspace.config import SearchConfig
from searchspace.genotype import Genotype
from searchspace.layout import NetworkSpec
from searchspace.ops import Primitive
from trainables.cells import Network, derived_edge_spec

from cost_helpers import config_network_cost

# every cell input feeds two or more edges (see docs/how-to/deployment.md: a single reader fuses with the preprocessing)
EDGES = [["sep_conv_3x3", 0, 2], ["skip_connect", 1, 2], ["max_pool_3x3", 0, 3], ["dil_conv_3x3", 1, 3],
         ["avg_pool_3x3", 0, 4], ["sep_conv_5x5", 2, 4], ["skip_connect", 1, 5], ["dil_conv_5x5", 3, 5]]
GENOTYPE = Genotype.from_dict({"cells": [{"reduction": r, "edges": EDGES} for r in (False, True, True)]})
CONFIG = SearchConfig.from_dict({"dataset": "synthetic", "layers": 3, "channels": 4})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    net = Network(derived_edge_spec(GENOTYPE, 4), NetworkSpec(layers=3, channels=4, nodes=4, in_channels=1,
                                                               image_size=16, num_classes=10)).eval()
    path = tmp_path_factory.mktemp("onnx") / "net.onnx"
    export_onnx(net, torch.randn(2, 1, 16, 16), path)
    return path


@pytest.mark.parametrize("profile", [p.name for p in list_profiles() if p.fused])
@pytest.mark.parametrize("batch", [1, 4])
def test_own_export_equals_network_cost(exported, profile, batch):
    want = config_network_cost(GENOTYPE, CONFIG.replace(profile=profile, cost_batch=batch))
    got = onnx_cost(exported, profile, batch)
    for key in ("dram_read_bytes", "dram_write_bytes", "dram_bytes", "compulsory_bytes", "dram_latencies"):
        assert getattr(got, key) == getattr(want, key), key
    assert got.dram_time_us == pytest.approx(want.dram_time_us, rel=1e-12)
    assert got.dram_energy_uj == pytest.approx(want.dram_energy_uj, rel=1e-12)


def test_unfused_differs_only_by_the_relus_the_exporter_shares(exported):
    """The TorchScript exporter merges equal ReLU(x) of edges reading one tensor (CSE); eager PyTorch, which
    network_cost describes, runs each. The difference is exactly those ReLU kernels."""
    model = onnx.load(str(exported))
    readers = {}  # tensor -> the operators (module scopes: /cells.i/edges.e or /cells.i/preprocessK) reading it
    for n in model.graph.node:
        for t in n.input:
            readers.setdefault(t, set()).add("/".join(n.name.split("/")[:3]))
    readers = {t: len(scopes) for t, scopes in readers.items()}
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in
              onnx.shape_inference.infer_shapes(model).graph.value_info}
    saved_bytes = saved_latencies = 0
    for n in model.graph.node:
        if n.op_type == "Relu" and readers[n.output[0]] > 1:
            _, c, h, w = shapes[n.output[0]]
            relu = primitive_cost("h100-eager", Primitive("relu", c, c), h, w, 1)
            saved_bytes += (readers[n.output[0]] - 1) * relu.dram_bytes
            saved_latencies += (readers[n.output[0]] - 1) * relu.dram_latencies
    assert saved_latencies > 0
    want = config_network_cost(GENOTYPE, CONFIG.replace(profile="h100-eager"))
    got = onnx_cost(exported, "h100-eager", 1)
    assert got.dram_bytes + saved_bytes == want.dram_bytes
    assert got.dram_latencies + saved_latencies == want.dram_latencies


def _conv_graph(path, pad_node: bool):
    """x (N, 8, 32, 32) -> [Pad 1] -> Conv 3x3/2 (pads 0 after a Pad, else 1) -> Relu -> depthwise 3x3."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.zeros((16, 8, 3, 3), np.float32), "w1"),
             numpy_helper.from_array(np.zeros((16, 1, 3, 3), np.float32), "w2"),
             numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")]
    nodes = [helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad")] if pad_node else []
    nodes += [helper.make_node("Conv", ["xp" if pad_node else "x", "w1"], ["a"], name="conv", strides=[2, 2],
                               pads=[0] * 4 if pad_node else [1] * 4, kernel_shape=[3, 3]),
              helper.make_node("Relu", ["a"], ["b"], name="relu"),
              helper.make_node("Conv", ["b", "w2"], ["y"], name="dw", group=16, pads=[1] * 4, kernel_shape=[3, 3])]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_pad_node_costs_as_conv_padding(tmp_path):
    costs = {}
    for pad in (True, False):
        _conv_graph(tmp_path / f"{pad}.onnx", pad)
        costs[pad] = {p: onnx_cost(tmp_path / f"{pad}.onnx", p, 2) for p in ("mobile-npu", "h100-eager")}
    fused, plain = costs[True]["mobile-npu"], costs[False]["mobile-npu"]
    assert fused.dram_bytes == plain.dram_bytes and fused.macs == plain.macs == 2 * (16 * 72 * 256 + 16 * 9 * 256)
    assert fused.dram_latencies == 1  # Pad, conv, ReLU, depthwise conv: one fused kernel
    assert costs[True]["h100-eager"].dram_latencies == costs[False]["h100-eager"].dram_latencies + 1  # the copy


def _graph(op_type, name, path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])
    node = helper.make_node(op_type, ["x"], ["y"], name=name)
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]),
              str(path))


def test_unsupported_op_names_op_and_node(tmp_path, capsys):
    _graph("Softmax", "head/softmax_7", tmp_path / "s.onnx")
    with pytest.raises(CostQueryError, match=r"unsupported ONNX op 'Softmax' at node 'head/softmax_7'"):
        onnx_cost(tmp_path / "s.onnx", "mobile-npu")
    assert hwnas(["cost", "--onnx", str(tmp_path / "s.onnx"), "--profile", "mobile-npu"]) == 2
    assert "unsupported ONNX op 'Softmax' at node 'head/softmax_7'" in capsys.readouterr().err


def test_cli_bad_input(tmp_path, capsys, exported):
    (tmp_path / "junk.onnx").write_text("not a model")
    assert hwnas(["cost", "--onnx", str(tmp_path / "junk.onnx"), "--profile", "mobile-npu"]) == 2
    assert "not an ONNX model" in capsys.readouterr().err
    assert hwnas(["cost", "--onnx", str(exported)]) == 2
    assert "--onnx needs --profile" in capsys.readouterr().err
    assert hwnas(["cost", "--onnx", str(exported), "--profile", "mobile-npu", "--op", "skip_connect"]) == 2
    assert hwnas(["cost", "--onnx", str(exported), "--profile", "edge-gpu", "--batch", "3", "--rows"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["batch"] == 3 and out["kernel_groups"] == len(out["rows"]) and out["macs"] > 0


class _Block(nn.Module):
    """Issue 22's block: 1x1 conv, depthwise 3x3, 1x1 conv, 3x3 max pool, and the residual add."""

    def __init__(self, c: int):
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.c, self.p = nn.Conv2d(c, c, 1), nn.MaxPool2d(3, 1, 1)

    def forward(self, x):
        return x + self.p(self.c(self.b(self.a(x))))


def test_resident_three_block_cnn_moves_input_weights_and_output_once(tmp_path):
    """1 x 36 x 32 x 32 int8 on mobile-npu (1 MiB): every activation fits, so the graph pays its input, its
    weights and its output once (Stream's whole-network fused schedule: 82,488 B); each block's add reads
    the block's input beside its branch from chip."""
    from cost_helpers import profile_variant

    path = tmp_path / "blocks.onnx"
    export_onnx(nn.Sequential(*(_Block(36) for _ in range(3))).eval(), torch.randn(1, 36, 32, 32), path)
    got = onnx_cost(path, "mobile-npu", 1)
    act = 36 * 32 * 32
    weights = 3 * sum(-(-n // 32) * 32 for n in (36 * 36 + 36, 36 * 9 + 36, 36 * 36 + 36))  # whole 32 B bursts
    assert got.dram_bytes == got.compulsory_bytes == 2 * act + weights
    assert got.dram_read_bytes == act + weights and got.dram_write_bytes == act
    assert all(r["spilled_bytes"] == 0 for r in got.rows) and sum(r["onchip_bytes"] for r in got.rows) > 0
    rt = onnx_cost(path, profile_variant(tmp_path, "mobile-npu", "npu-rt", between_kernels="round-trip"), 1)
    assert rt.dram_bytes > got.dram_bytes and rt.dram_latencies == got.dram_latencies
    assert all(r["onchip_bytes"] == 0 for r in rt.rows)


# DARTS-V2's cells: in the reduction cell nodes 3 and 5 are the same sum (skip of node 2 + max_pool of input
# 1), which the exporter's CSE makes one tensor, so the cell's concat holds a part twice and copies it
DARTS_NORMAL = [["sep_conv_3x3", 0, 2], ["sep_conv_3x3", 1, 2], ["sep_conv_3x3", 0, 3], ["sep_conv_3x3", 1, 3],
                ["sep_conv_3x3", 1, 4], ["skip_connect", 0, 4], ["skip_connect", 0, 5], ["dil_conv_3x3", 2, 5]]
DARTS_REDUCE = [["max_pool_3x3", 0, 2], ["max_pool_3x3", 1, 2], ["skip_connect", 2, 3], ["max_pool_3x3", 1, 3],
                ["max_pool_3x3", 0, 4], ["skip_connect", 2, 4], ["skip_connect", 2, 5], ["max_pool_3x3", 1, 5]]
DARTS = Genotype.from_dict({"cells": [{"reduction": r, "edges": DARTS_REDUCE if r else DARTS_NORMAL}
                                      for r in (False, True, True)]})


@pytest.mark.parametrize("profile", [p.name for p in list_profiles() if p.between_kernels == "resident"])
def test_a_concat_that_copies_a_shared_part_costs_as_the_network_when_resident(tmp_path, profile):
    """The copied parts are a tensor of the schedule's own (``#copies``) that the next cell reads: costing it
    used to look that name up in the graph's shapes (KeyError on every resident profile)."""
    net = Network(derived_edge_spec(DARTS, 4), NetworkSpec(layers=3, channels=4, nodes=4, in_channels=1,
                                                           image_size=16, num_classes=10)).eval()
    path = tmp_path / "darts.onnx"
    export_onnx(net, torch.randn(2, 1, 16, 16), path)
    got = onnx_cost(path, profile, 1)
    want = config_network_cost(DARTS, CONFIG.replace(profile=profile, cost_batch=1))
    assert got.dram_bytes == want.dram_bytes == got.compulsory_bytes  # everything fits: input, weights, output
