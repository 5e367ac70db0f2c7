"""Operator modules (the torch view of ``searchspace.ops``): ``build_op(name, c_in, c_out, stride)``.

Two forms, as the registry: the supernet's (``supernet=True``: pools carry a non-affine BN, as DARTS's
search cells) and the deployed derived network's (pools alone, as DARTS's evaluation network; the form
``cost_models`` costs). ``supernet`` defaults to ``not affine``: the search builds its supernet
non-affine and its derived network affine, so each gets its form without saying so.

Sequential operators are *generated* from their registry primitive list, so the module and the cost
model's description are the same thing by construction; only the factorized reduce (two shifted
branches) has a hand-written forward (``CUSTOM_MODULES``). The supernet's mixed operators and the
derived (target) network both build their operators here.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from searchspace.ops import Primitive, get_op, op_primitives


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


def _sequential(prims: tuple[Primitive, ...], affine: bool) -> nn.Module:
    if not prims:
        return nn.Identity()
    layers = [_layer(p, affine) for p in prims]
    if prims[-1].kind == "bn" and not any(p.kind == "conv" for p in prims):
        layers[-1] = nn.BatchNorm2d(prims[-1].c_out, affine=False)  # pool's BN: never affine
    return nn.Sequential(*layers)


class FactorizedReduce(nn.Module):
    """Stride-2 skip: two 1x1 stride-2 convs on pixel grids offset by one, concatenated (DARTS)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2, affine: bool = True):
        super().__init__()
        if stride != 2:
            raise ValueError("factorized_reduce only exists at stride 2")
        relu, conv1, conv2, _cat, bn = op_primitives("factorized_reduce", c_in, c_out, stride)
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


#: Operators whose forward is not their primitive list run in sequence.
CUSTOM_MODULES = {"skip_connect": _build_skip, "factorized_reduce": _build_fr}


def build_op(name: str, c_in: int, c_out: int, stride: int, affine: bool = True,
             supernet: bool | None = None) -> nn.Module:
    """The module of registry operator ``name`` (unknown names: ValueError listing the known ones).

    ``supernet``: build the supernet's form (None: ``not affine``, see the module doc)."""
    op = get_op(name)
    if name in CUSTOM_MODULES:
        return CUSTOM_MODULES[name](c_in, c_out, stride, affine)
    supernet = (not affine) if supernet is None else supernet
    return _sequential(op.primitives_for(c_in, c_out, stride, supernet), affine)
