"""The operator registry: one entry per operator name (as DARTS's ``OPS``), torch-free.

Each entry says what the operator *is*: ``primitives(c_in, c_out, stride)``, the primitive layers
(kind, kernel, dilation, groups, channels, stride) it runs in the deployed (derived) network, and where
the supernet runs something else, ``supernet_primitives`` (the pools' extra non-affine BN). Everything
else reads this one list (``op_primitives(name, ..., supernet=...)``):

* ``trainables.modules`` generates the ``nn.Module`` of an operator from its primitives (supernet
  mixed operators and the derived network alike), so module and description cannot drift;
* ``cost_models`` counts the DRAM traffic of the same primitives on a processor profile, always in the
  deployed form: the costs the loss weighs are those of the network the user deploys.

The searchable candidates are the seven of the design brief; the structural operators (stem, cell
preprocessing, factorized reduce, classifier) live here too so that whole-network costs use the same
descriptions. To add an operator: one ``_entry`` below (and, if its forward is not a plain sequence of
primitives, a hand-written module in ``trainables.modules.CUSTOM_MODULES``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


PrimitiveFn = Callable[[int, int, int], tuple[Primitive, ...]]  # (c_in, c_out, stride) -> primitives


@dataclass(frozen=True)
class OpDef:
    """A registry entry. ``searchable`` operators are edge candidates and keep c_in == c_out.

    ``primitives``: the deployed (derived-network) form, the one every cost is computed for.
    ``supernet_primitives``: the supernet's form where it differs (None: the same)."""

    name: str
    primitives: PrimitiveFn
    searchable: bool = True
    supernet_primitives: PrimitiveFn | None = None

    def primitives_for(self, c_in: int, c_out: int, stride: int, supernet: bool = False) -> tuple[Primitive, ...]:
        fn = self.supernet_primitives if supernet and self.supernet_primitives is not None else self.primitives
        return fn(c_in, c_out, stride)


# ---------------------------------------------------------------- primitive lists (cost-model view)
def _relu(c: int) -> Primitive:
    return Primitive("relu", c, c)


def _conv(c_in: int, c_out: int, k: int = 1, stride: int = 1, dilation: int = 1, groups: int = 1, **kw) -> Primitive:
    return Primitive("conv", c_in, c_out, kernel=k, stride=stride, dilation=dilation, groups=groups, **kw)


def _bn(c: int) -> Primitive:
    return Primitive("bn", c, c)


def _pool(kind: str):
    # Deployed form: the pool alone, as in DARTS's evaluation network.
    def prims(c_in: int, c_out: int, stride: int) -> tuple[Primitive, ...]:
        return (Primitive(kind, c_in, c_in, kernel=3, stride=stride),)

    return prims


def _pool_supernet(kind: str):
    # Supernet form: + a non-affine BN, as DARTS's search cells: a pool's output otherwise lives on
    # another scale than the convolutions' and the softmax mix favours it for the wrong reason.
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


def _entry(name: str, prims, searchable: bool = True, supernet=None) -> tuple[str, OpDef]:
    return name, OpDef(name, prims, searchable, supernet)


OPS: dict[str, OpDef] = dict([
    _entry("max_pool_3x3", _pool("max_pool"), supernet=_pool_supernet("max_pool")),
    _entry("avg_pool_3x3", _pool("avg_pool"), supernet=_pool_supernet("avg_pool")),
    _entry("skip_connect", _skip),
    _entry("sep_conv_3x3", _sep_conv(3)),
    _entry("sep_conv_5x5", _sep_conv(5)),
    _entry("dil_conv_3x3", _dil_conv(3)),
    _entry("dil_conv_5x5", _dil_conv(5)),
    # structural operators: not edge candidates, but part of every network and its DRAM cost
    _entry("stem_conv_bn", _stem, searchable=False),
    _entry("relu_conv_bn_1x1", _relu_conv_bn, searchable=False),
    _entry("factorized_reduce", _factorized_reduce, searchable=False),
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


def op_primitives(name: str, c_in: int, c_out: int, stride: int, supernet: bool = False) -> tuple[Primitive, ...]:
    """The primitives of ``name``: the deployed form, or with ``supernet=True`` the supernet's."""
    return get_op(name).primitives_for(c_in, c_out, stride, supernet)


def is_identity(name: str, c_in: int, c_out: int, stride: int) -> bool:
    """True for an operator that runs no primitive (stride-1 skip_connect): its output is its input."""
    return not get_op(name).primitives(c_in, c_out, stride)
