"""The operator registry: every operator's module and its primitive description agree."""
import pytest
import torch

from searchspace.ops import CANDIDATES, OPS, get_op, op_primitives
from trainables.modules import build_op

SHAPES = {"stem_conv_bn": (3, 12), "relu_conv_bn_1x1": (12, 8), "factorized_reduce": (8, 8), "classifier": (16, 10)}


@pytest.mark.parametrize("name", CANDIDATES)
@pytest.mark.parametrize("stride", [1, 2])
def test_candidate_shapes(name, stride):
    x = torch.randn(2, 8, 16, 16)
    y = build_op(name, 8, 8, stride, affine=False)(x)
    assert y.shape == (2, 8, 16 // stride, 16 // stride)


VALID = [(n, s) for n in OPS for s in (1, 2) if (n, s) not in {("factorized_reduce", 1), ("classifier", 2)}]


@pytest.mark.parametrize("supernet", [False, True])
@pytest.mark.parametrize("name, stride", VALID)
def test_module_matches_primitives(name, stride, supernet):
    """Conv/linear weights and BNs of the built module == what the registry says, in both forms."""
    c_in, c_out = SHAPES.get(name, (8, 8))
    module = build_op(name, c_in, c_out, stride, supernet=supernet)
    prims = op_primitives(name, c_in, c_out, stride, supernet=supernet)
    want = sum(p.weight_elements for p in prims if p.kind in ("conv", "linear"))
    got = sum(m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
              for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert got == want
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())
    assert n_bn == sum(p.kind == "bn" for p in prims)


@pytest.mark.parametrize("name", ["max_pool_3x3", "avg_pool_3x3"])
def test_pools_carry_a_bn_in_the_supernet_only(name):
    """DARTS: the search cell's pools carry a non-affine BN, the evaluation network's do not; the cost
    model costs the deployed form (the registry's default)."""
    kind = name[:8]
    assert [p.kind for p in op_primitives(name, 8, 8, 1)] == [kind]
    assert [p.kind for p in op_primitives(name, 8, 8, 1, supernet=True)] == [kind, "bn"]
    bns = lambda m: [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)]  # noqa: E731
    assert bns(build_op(name, 8, 8, 1, affine=True)) == []  # derived network: affine, deployed form
    (bn,) = bns(build_op(name, 8, 8, 1, affine=False))  # supernet: non-affine, supernet form
    assert bn.affine is False


def test_derived_and_supernet_networks_build_their_forms():
    from searchspace.layout import NetworkSpec
    from trainables.cells import Network

    spec = [[("max_pool_3x3", "sep_conv_3x3")] * 14, [("avg_pool_3x3",)] * 14]
    net_spec = NetworkSpec(layers=2, channels=4, nodes=4, in_channels=1, image_size=8, num_classes=10)
    supernet, derived = Network(spec, net_spec, affine=False), Network(spec, net_spec, affine=True)
    pool_bns = lambda net: [n for n, _ in net.named_modules() if "pool" in n and n.endswith(".1")]  # noqa: E731
    assert len(pool_bns(supernet)) == 28 and pool_bns(derived) == []
    assert derived(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_unknown_operator_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown operator 'conv_7x7'.*sep_conv_3x3"):
        get_op("conv_7x7")


def test_skip_connect_is_free_at_stride_1_and_factorized_at_stride_2():
    assert op_primitives("skip_connect", 8, 8, 1) == ()
    assert [p.kind for p in op_primitives("skip_connect", 8, 8, 2)] == ["relu", "conv", "conv", "concat", "bn"]


@pytest.mark.parametrize("cands, stride", [(("max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"), 1),
                                           (("max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"), 2),
                                           (("sep_conv_3x3", "sep_conv_5x5"), 1)])
def test_shared_relu_mixed_op_is_exact(cands, stride):
    """One ReLU per edge input gives the same output and gradients as DARTS's ReLU per candidate."""
    from trainables.cells import MixedOp

    torch.manual_seed(0)
    plain = MixedOp(cands, 8, stride, affine=False, shared_relu=False)
    fast = MixedOp(cands, 8, stride, affine=False, shared_relu=True)
    fast.load_state_dict(plain.state_dict())
    assert fast._tails is not None
    x = torch.randn(4, 8, 16, 16, requires_grad=True)
    w = torch.softmax(torch.randn(len(cands)), 0)
    y1, y2 = plain(x, w), fast(x, w)
    torch.testing.assert_close(y1, y2)
    g1, = torch.autograd.grad(y1.square().sum(), x)
    g2, = torch.autograd.grad(y2.square().sum(), x)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("pool_bn", [False, True])
def test_the_supernet_runs_pools_as_the_derived_network_unless_asked(pool_bn):
    """supernet_pool_bn false (default): the search weighs the pool the derived network runs (no BN);
    true: DARTS's search cell (a non-affine BN after each pool)."""
    from cost_models import search_cost_table
    from search_helpers import tiny
    from trainables.supernet import build_supernet

    cfg = tiny(supernet_pool_bn=pool_bn)
    sn = build_supernet(cfg, search_cost_table(cfg), 1, device="cpu")
    pools = [op for m in sn.net.modules() if hasattr(m, "ops") for name, op in m.ops.items() if "pool" in name]
    assert pools
    has_bn = [any(isinstance(x, torch.nn.BatchNorm2d) for x in op.modules()) for op in pools]
    assert all(b == pool_bn for b in has_bn)
