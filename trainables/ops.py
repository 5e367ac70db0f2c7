"""The operator registry: one entry per operator name (as DARTS's ``OPS``).

Every entry gives two views of the same operator, side by side so they cannot drift:

* ``primitives(c_in, c_out, stride)``: the primitive layers (kind, kernel, dilation, groups, channels,
  stride) the cost model counts DRAM traffic for; torch-free data.
* ``build(c_in, c_out, stride, affine)``: the ``nn.Module``. Sequential operators are *generated* from
  their primitive list, so the module and the cost description are the same thing by construction;
  only the factorized reduce (two shifted branches) has a hand-written forward.

The supernet's mixed operators, the derived (target) network and the cost model all look operators up
here. The searchable candidates are the seven of the design brief; the structural operators (stem,
cell preprocessing, classifier) live here too so that whole-network costs use the same descriptions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

PRIMITIVE_KINDS = ("relu", "conv", "bn", "max_pool", "avg_pool", "concat", "global_avg_pool", "linear")


@dataclass(frozen=True)
class Primitive:
    """One primitive layer of an operator, as the cost model sees it.

    ``inputs`` are indices into the operator's primitive list whose outputs feed this primitive; ``()``
    means "the previous primitive", or the operator's input for the first one; ``-1`` is the operator's
    input explicitly. Spatial padding is always "same" (``dilation * (kernel - 1) // 2``), so the output
    of a stride-s primitive on an H x W map is ceil(H/s) x ceil(W/s). ``offset`` shifts the input window
    by that many pixels (the factorized reduce's second branch reads ``x[:, :, 1:, 1:]``).
    """

    kind: str
    c_in: int
    c_out: int
    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    inputs: tuple[int, ...] = ()
    offset: int = 0

    @property
    def padding(self) -> int:
        return self.dilation * (self.kernel - 1) // 2

    @property
    def weight_elements(self) -> int:
        """Learned parameters read at inference (conv/linear weights + bias, BN's 4 per-channel vectors)."""
        if self.kind == "conv":
            return self.c_out * (self.c_in // self.groups) * self.kernel * self.kernel
        if self.kind == "linear":
            return self.c_out * self.c_in + self.c_out
        if self.kind == "bn":
            return 4 * self.c_out
        return 0


@dataclass(frozen=True)
class OpDef:
    """A registry entry. ``searchable`` operators are edge candidates and keep c_in == c_out."""

    name: str
    primitives: Callable[[int, int, int], tuple[Primitive, ...]]
    build: Callable[[int, int, int, bool], nn.Module]
    searchable: bool = True


# ---------------------------------------------------------------- primitive lists (cost-model view)
def _relu(c: int) -> Primitive:
    return Primitive("relu", c, c)


def _conv(c_in: int, c_out: int, k: int = 1, stride: int = 1, dilation: int = 1, groups: int = 1, **kw) -> Primitive:
    return Primitive("conv", c_in, c_out, kernel=k, stride=stride, dilation=dilation, groups=groups, **kw)


def _bn(c: int) -> Primitive:
    return Primitive("bn", c, c)


def _pool(kind: str):
    # Pools carry a non-affine BN, as in DARTS's search cells: their outputs otherwise live on another
    # scale than the convolutions' and the softmax mix favours them for the wrong reason.
    def prims(c_in: int, c_out: int, stride: int) -> tuple[Primitive, ...]:
        return (Primitive(kind, c_in, c_in, kernel=3, stride=stride), _bn(c_in))

    return prims


def _sep_conv(k: int):
    def prims(c_in: int, c_out: int, stride: int) -> tuple[Primitive, ...]:
        return (
            _relu(c_in), _conv(c_in, c_in, k, stride, groups=c_in), _conv(c_in, c_in), _bn(c_in),
            _relu(c_in), _conv(c_in, c_in, k, 1, groups=c_in), _conv(c_in, c_out), _bn(c_out),
        )

    return prims


def _dil_conv(k: int):
    def prims(c_in: int, c_out: int, stride: int) -> tuple[Primitive, ...]:
        return (_relu(c_in), _conv(c_in, c_in, k, stride, dilation=2, groups=c_in), _conv(c_in, c_out), _bn(c_out))

    return prims


def _factorized_reduce(c_in: int, c_out: int, stride: int) -> tuple[Primitive, ...]:
    # x -> relu -> [conv1x1/2 (x), conv1x1/2 (x[:, :, 1:, 1:])] -> concat -> BN; halves H and W.
    half = c_out // 2
    return (
        _relu(c_in),
        _conv(c_in, half, 1, 2, inputs=(0,)),
        _conv(c_in, c_out - half, 1, 2, inputs=(0,), offset=1),
        Primitive("concat", c_out, c_out, inputs=(1, 2)),
        _bn(c_out),
    )


def _skip(c_in: int, c_out: int, stride: int) -> tuple[Primitive, ...]:
    return () if stride == 1 else _factorized_reduce(c_in, c_out, stride)


def _relu_conv_bn(c_in: int, c_out: int, stride: int) -> tuple[Primitive, ...]:
    return (_relu(c_in), _conv(c_in, c_out, 1, stride), _bn(c_out))


def _stem(c_in: int, c_out: int, stride: int) -> tuple[Primitive, ...]:
    return (_conv(c_in, c_out, 3, stride), _bn(c_out))


def _classifier(c_in: int, c_out: int, stride: int) -> tuple[Primitive, ...]:
    return (Primitive("global_avg_pool", c_in, c_in), Primitive("linear", c_in, c_out))


# ---------------------------------------------------------------- modules (torch view)
class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, 1, 1) -> (N, C)
        return x.flatten(1)


def _layer(p: Primitive, affine: bool) -> nn.Module:
    if p.kind == "relu":
        return nn.ReLU(inplace=False)
    if p.kind == "conv":
        return nn.Conv2d(p.c_in, p.c_out, p.kernel, p.stride, p.padding, p.dilation, p.groups, bias=False)
    if p.kind == "bn":
        return nn.BatchNorm2d(p.c_out, affine=affine)
    if p.kind == "max_pool":
        return nn.MaxPool2d(p.kernel, p.stride, p.padding)
    if p.kind == "avg_pool":
        return nn.AvgPool2d(p.kernel, p.stride, p.padding, count_include_pad=False)
    if p.kind == "global_avg_pool":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), Flatten())
    if p.kind == "linear":
        return nn.Linear(p.c_in, p.c_out)
    raise ValueError(f"primitive kind {p.kind!r} has no sequential module")


def _sequential(prims_fn):
    def build(c_in: int, c_out: int, stride: int, affine: bool = True) -> nn.Module:
        prims = prims_fn(c_in, c_out, stride)
        if not prims:
            return nn.Identity()
        layers = [_layer(p, affine) for p in prims]
        if prims[-1].kind == "bn" and not any(p.kind == "conv" for p in prims):
            layers[-1] = nn.BatchNorm2d(prims[-1].c_out, affine=False)  # pool's BN: never affine
        return nn.Sequential(*layers)

    return build


class FactorizedReduce(nn.Module):
    """Stride-2 skip: two 1x1 stride-2 convs on pixel grids offset by one, concatenated (DARTS)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2, affine: bool = True):
        super().__init__()
        if stride != 2:
            raise ValueError("factorized_reduce only exists at stride 2")
        relu, conv1, conv2, _cat, bn = _factorized_reduce(c_in, c_out, stride)
        self.relu = _layer(relu, affine)
        self.conv1, self.conv2 = _layer(conv1, affine), _layer(conv2, affine)
        self.bn = _layer(bn, affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C_in, H, W) -> (N, C_out, H/2, W/2)
        return self.forward_after_relu(self.relu(x))

    def forward_after_relu(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(torch.cat([self.conv1(x), self.conv2(x[:, :, 1:, 1:])], dim=1))


def _build_skip(c_in: int, c_out: int, stride: int, affine: bool = True) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c_in, c_out, stride, affine)


def _build_fr(c_in: int, c_out: int, stride: int, affine: bool = True) -> nn.Module:
    return FactorizedReduce(c_in, c_out, stride, affine)


def _entry(name: str, prims, build=None, searchable: bool = True) -> tuple[str, OpDef]:
    return name, OpDef(name, prims, build or _sequential(prims), searchable)


OPS: dict[str, OpDef] = dict([
    _entry("max_pool_3x3", _pool("max_pool")),
    _entry("avg_pool_3x3", _pool("avg_pool")),
    _entry("skip_connect", _skip, _build_skip),
    _entry("sep_conv_3x3", _sep_conv(3)),
    _entry("sep_conv_5x5", _sep_conv(5)),
    _entry("dil_conv_3x3", _dil_conv(3)),
    _entry("dil_conv_5x5", _dil_conv(5)),
    # structural operators: not edge candidates, but part of every network and its DRAM cost
    _entry("stem_conv_bn", _stem, searchable=False),
    _entry("relu_conv_bn_1x1", _relu_conv_bn, searchable=False),
    _entry("factorized_reduce", _factorized_reduce, _build_fr, searchable=False),
    _entry("classifier", _classifier, searchable=False),
])

#: The edge candidates, in registry order (the order of every per-candidate axis in cost tables).
CANDIDATES: tuple[str, ...] = tuple(name for name, op in OPS.items() if op.searchable)


def get_op(name: str) -> OpDef:
    """Look an operator up by name, with an error that lists the known ones."""
    try:
        return OPS[name]
    except KeyError:
        raise ValueError(f"unknown operator {name!r}; known operators: {', '.join(OPS)}") from None


def op_primitives(name: str, c_in: int, c_out: int, stride: int) -> tuple[Primitive, ...]:
    return get_op(name).primitives(c_in, c_out, stride)


def build_op(name: str, c_in: int, c_out: int, stride: int, affine: bool = True) -> nn.Module:
    return get_op(name).build(c_in, c_out, stride, affine)
