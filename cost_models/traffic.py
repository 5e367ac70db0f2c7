"""The analytic DRAM traffic model: bytes, time and energy of one operator on one processor profile.

For an operator of ``searchspace.ops.OPS`` on an input (batch, C, H, W) at a stride, at inference:

1. **Stages.** The operator's primitive list becomes the kernels the processor runs. On a fused
   profile a ReLU is the prologue of its consumer, a BN is folded into its producer (a conv's bias:
   ``c`` elements; a pool's affine epilogue: ``2c``), and sibling convs that read the same tensor into a
   concat (the factorized reduce) are one kernel writing the concatenation in place. On an unfused
   profile every primitive is its own kernel (ReLU, conv, pool, concat); BN is folded into its producer
   when ``fold_bn`` and is its own kernel (reading its 4 per-channel vectors) when not (eager PyTorch).
   Stride-1 skip_connect has no primitives: as an operator it costs nothing (an eager identity is a
   no-op too); the read of its input by its node's sum is charged by ``cost_models.network``.
2. **Intermediates.** A tensor produced and consumed inside the operator either stays on chip or
   spills (written once, read by each consumer). On a fused profile every subset of intermediates is a
   plan; a plan is feasible when the on-chip intermediates live at each stage fit in the buffer, and
   the cheapest feasible plan is taken (the choice a fusing compiler makes). Unfused: all spill.
3. **Tiling.** A stage whose DRAM working set (DRAM input + weights + DRAM output) exceeds the buffer
   left over by the live on-chip intermediates is tiled, with 1/2, 3/4 or 7/8 of that budget for the
   stationary operand (the cheapest; Stream keeps a 74 KB input resident in a 108 KB buffer and streams the
   weights once, where a fixed half re-read them). Loop order A keeps a weight chunk resident and streams the input once per chunk (per
   group: a depthwise conv or a pool never re-reads); loop order B keeps an input band resident and
   re-reads all weights per band, plus the halo rows ``dilation * (kernel - 1)`` at each band boundary.
   The cheaper order is taken. Outputs are written once (no partial-sum spills).
4. **Kernels and latency.** On an unfused profile every stage is a kernel. On a fused profile the
   stages run as one kernel, split where a stage reads an intermediate that was spilled (it waits for
   that DRAM round trip). A kernel's streams (tensors, weights, tiles) are in flight together, so the
   DRAM access latency is paid **once per kernel**, plus once per further tile wave of a tiled stage:
   tiling splits the leftover buffer in halves (stationary + streamed operand), which leaves no room to
   double-buffer the stationary chunk or band, so each wave waits for its load (no prefetch).
   ``dram_latencies`` counts these payments; ``dram_transfers`` counts the streams (every tensor, chunk
   or band, rounded up to whole bursts), for information.
5. **Bytes -> time, energy.** ``dram_time_us = bytes / bandwidth + latencies * latency``;
   ``dram_energy_uj = read * read_pJ/B + write * write_pJ/B (+ static power * time)``.
6. **Working set.** ``scratch_bytes`` is what the kernel holds on chip besides its input and output, at
   its largest stage: the on-chip intermediates live there plus the stage's weights, or, for a tiled
   stage, the whole leftover buffer (its stationary and streamed halves). Input and output streams use
   line buffers too small to count. Between kernels (``cost_models.residency``) the buffer left beside
   this is what can keep other tensors on chip.

Compulsory traffic is the operator's input read once, its (folded) weights read once and its output
written once. Every plan pays at least that, every step above only adds bytes, and every quantity is
non-decreasing in batch, C, H, W and kernel size, so the model is monotone and never below compulsory.
"""
from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import asdict, dataclass, field

from searchspace.ops import OPS, Primitive

from .profile import CostQueryError, Profile, load_profile

INPUT = -1  # tensor id of the operator's input
# a tiled stage's stationary operand (weight chunk or input band) takes one of these shares of the buffer it
# has, the streamed operand the rest (at least 1/8: a double-buffered stream); the cheapest is taken
STATIONARY_SHARES = (0.5, 0.75, 0.875)


@dataclass(frozen=True)
class OpCost:
    """DRAM cost of one operator application. Bytes are integers; time in microseconds, energy in uJ."""

    profile: str
    op: str
    c_in: int
    c_out: int
    h: int
    w: int
    stride: int
    batch: int
    dram_read_bytes: int
    dram_write_bytes: int
    compulsory_bytes: int
    dram_transfers: int  # DRAM streams (tensors, weight chunks, tiles); informational
    dram_latencies: int  # DRAM latencies paid: one per kernel + one per further tile wave (module doc, 4)
    onchip_intermediates: int  # intermediates the cheapest plan keeps on chip
    spilled_intermediates: int  # intermediates written to and read back from DRAM
    dram_time_us: float
    dram_energy_uj: float
    # on-chip bytes the kernel holds while it runs besides its input and output: its weights (a stationary
    # chunk when tiled: the whole leftover buffer) and the intermediates it keeps (module doc, 6); what the
    # network-level residency schedule (cost_models.residency) must leave free for it
    scratch_bytes: int = 0
    dram_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dram_bytes", self.dram_read_bytes + self.dram_write_bytes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "OpCost":
        return cls(**{k: v for k, v in d.items() if k != "dram_bytes"})


@dataclass
class _Stage:
    """One kernel: reads ``inputs`` (tensor id, pixel offset), its weights, writes tensor ``out``."""

    kind: str
    inputs: list[tuple[int, int]]
    out: int
    weight_elements: int = 0
    kernel: int = 1
    dilation: int = 1
    groups: int = 1


def _check_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise CostQueryError(f"{name} must be a positive integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise CostQueryError(f"{name} must be a positive integer, got {value}")
    return int(value)


def validate_query(op: str, c_in, c_out, h, w, stride, batch) -> tuple[int, int, int, int, int, int]:
    """Check one query's operator, shape and stride; returns the normalised integers."""
    if op not in OPS:
        raise CostQueryError(f"unknown operator {op!r}; known operators: {', '.join(OPS)}")
    c_in, h, w, batch = (_check_int(n, v) for n, v in (("c_in", c_in), ("h", h), ("w", w), ("batch", batch)))
    c_out = c_in if c_out is None else _check_int("c_out", c_out)
    if isinstance(stride, bool) or not isinstance(stride, numbers.Integral) or stride not in (1, 2):
        raise CostQueryError(f"unsupported stride {stride!r} for {op}: expected 1 or 2")
    stride = int(stride)
    if op == "factorized_reduce" and stride != 2:
        raise CostQueryError("factorized_reduce only exists at stride 2")
    if op == "classifier" and stride != 1:
        raise CostQueryError("classifier only exists at stride 1")
    if op in ("factorized_reduce", "skip_connect") and stride == 2 and (h % 2 or w % 2):
        raise CostQueryError(f"{op} at stride 2 needs an even H and W (two offset 1x1 grids), got {h}x{w}")
    if op == "skip_connect" and stride == 1 and c_out != c_in:
        raise CostQueryError(f"skip_connect at stride 1 is an identity: c_out ({c_out}) must equal c_in ({c_in})")
    return c_in, c_out, h, w, stride, batch


def _shapes(prims: tuple[Primitive, ...], c: int, h: int, w: int) -> tuple[dict, list[list[tuple[int, int]]]]:
    """Per-tensor (C, H, W) and per-primitive input lists [(tensor id, offset)]."""
    shapes = {INPUT: (c, h, w)}
    inputs = []
    for i, p in enumerate(prims):
        srcs = p.inputs or ((i - 1) if i else INPUT,)
        ins = [(s, p.offset) for s in srcs]
        sc, sh, sw = shapes[srcs[0]]
        sh, sw = sh - p.offset, sw - p.offset
        if p.kind in ("conv", "max_pool", "avg_pool"):
            shapes[i] = (p.c_out, -(-sh // p.stride), -(-sw // p.stride))
        elif p.kind in ("global_avg_pool", "linear"):
            shapes[i] = (p.c_out, 1, 1)
        else:  # relu, bn, concat keep the spatial size
            shapes[i] = (p.c_out, sh, sw)
        inputs.append(ins)
    return shapes, inputs


def _stages(prims: tuple[Primitive, ...], inputs: list, profile: Profile) -> tuple[list[_Stage], int]:
    """The kernels the profile runs, and the id of the operator's output tensor (see module doc, 1)."""
    alias: dict[int, int] = {INPUT: INPUT}
    stages: list[_Stage] = []
    producer: dict[int, int] = {}  # tensor id -> stage index

    def new(stage: _Stage) -> None:
        producer[stage.out] = len(stages)
        stages.append(stage)

    for i, p in enumerate(prims):
        ins = [(alias[t], off) for t, off in inputs[i]]
        if p.kind == "relu" and profile.fused:
            alias[i] = ins[0][0]  # prologue of the consumer
        elif p.kind == "bn" and (profile.fused or profile.fold_bn):
            src = ins[0][0]
            st = stages[producer[src]]
            feeders = [stages[producer[t]] for t, _ in st.inputs] if st.kind == "concat" else [st]
            per_channel = 4 if not profile.fold_bn else (1 if feeders[0].kind == "conv" else 2)
            for f in feeders:  # bias (conv) / scale+shift (pool) / eager-style vectors, per output channel
                f.weight_elements += per_channel * p.c_out // len(feeders)
            alias[i] = src
        elif p.kind == "concat" and profile.fused:
            parts = [stages[producer[t]] for t, _ in ins]
            sources = {s.inputs[0][0] for s in parts}
            if len(sources) == 1 and all(s.kind == "conv" and s.kernel == 1 for s in parts):
                # sibling 1x1 convs on one tensor: one kernel reading it once, writing the concat in place
                for s in parts:
                    stages.remove(s)
                new(_Stage("conv", [(sources.pop(), 0)], i, sum(s.weight_elements for s in parts)))
                producer.clear()
                producer.update({st.out: j for j, st in enumerate(stages)})
                alias[i] = i
            else:
                new(_Stage("concat", ins, i))
                alias[i] = i
        else:
            kind = {"max_pool": "pool", "avg_pool": "pool"}.get(p.kind, p.kind)
            new(_Stage(kind, ins, i, p.weight_elements, p.kernel, p.dilation, p.groups))
            alias[i] = i
    return stages, alias[len(prims) - 1] if prims else INPUT


def op_cost(profile: Profile | str, op: str, c_in: int, h: int, w: int, stride: int = 1, batch: int = 1,
            c_out: int | None = None) -> OpCost:
    """DRAM read/write bytes, time and energy of ``op`` on a (batch, c_in, h, w) input on ``profile``."""
    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    c_in, c_out, h, w, stride, batch = validate_query(op, c_in, c_out, h, w, stride, batch)
    return _evaluate(profile, op, OPS[op].primitives(c_in, c_out, stride), c_in, c_out, h, w, stride, batch)


def primitive_cost(profile: Profile | str, prim: Primitive, h: int, w: int, batch: int = 1) -> OpCost:
    """The same model on a single primitive (one conv, pool, linear...), e.g. to compare layer by layer
    with another cost model. BN folding does not apply (there is no BN)."""
    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    h, w, batch = (_check_int(n, v) for n, v in (("h", h), ("w", w), ("batch", batch)))
    return _evaluate(profile, f"{prim.kind}", (prim,), prim.c_in, prim.c_out, h, w, prim.stride, batch)


def primitives_cost(profile: Profile | str, name: str, prims: tuple[Primitive, ...], c_in: int, h: int, w: int,
                    batch: int = 1) -> OpCost:
    """The same model on any primitive list reading one (batch, c_in, h, w) input (``inputs`` -1): an
    operator region of an imported graph (``cost_models.onnx_graph``). ``name`` labels the result."""
    if not isinstance(profile, Profile):
        profile = load_profile(profile)
    c_in, h, w, batch = (_check_int(n, v) for n, v in (("c_in", c_in), ("h", h), ("w", w), ("batch", batch)))
    return _evaluate(profile, name, prims, c_in, prims[-1].c_out if prims else c_in, h, w, 1, batch)


def _evaluate(profile: Profile, op: str, prims: tuple[Primitive, ...], c_in: int, c_out: int, h: int, w: int,
              stride: int, batch: int) -> OpCost:
    shapes, inputs = _shapes(prims, c_in, h, w)
    stages, out_id = _stages(prims, inputs, profile)
    ctx = _Ctx(shapes, batch, profile.bytes_per_element, profile.dram_burst_bytes, profile.onchip_buffer_bytes)

    inter = [s.out for s in stages if s.out != out_id]
    reads_input = any(t == INPUT for s in stages for t, _ in s.inputs)
    compulsory = (ctx.rnd(ctx.nbytes(INPUT)) if reads_input else 0) \
        + sum(ctx.rnd(s.weight_elements * ctx.bpe) for s in stages) + (ctx.rnd(ctx.nbytes(out_id)) if stages else 0)
    best = None
    subsets = itertools.product((False, True), repeat=len(inter)) if profile.fused else [(False,) * len(inter)]
    for keep_flags in subsets:
        onchip = {t for t, k in zip(inter, keep_flags) if k}
        plan = _plan_cost(stages, onchip, ctx, profile.fused)
        # cheapest in bytes, then in latencies paid, then in streams
        if plan is not None and (best is None or (plan[0] + plan[1], plan[3], plan[2]) < (best[0] + best[1], best[3], best[2])):
            best = (*plan, len(onchip), len(inter) - len(onchip))
    read, write, streams, latencies, scratch, n_on, n_spill = best
    time_us = (read + write) / profile.dram_bytes_per_us + latencies * profile.dram_latency_ns * 1e-3
    energy_uj = (read * profile.dram_read_pj_per_byte + write * profile.dram_write_pj_per_byte) * 1e-6 \
        + profile.static_power_w * time_us
    return OpCost(profile.name, op, c_in, c_out, h, w, stride, batch, int(read), int(write), int(compulsory),
                  int(streams), int(latencies), n_on, n_spill, float(time_us), float(energy_uj), int(scratch))


@dataclass(frozen=True)
class _Ctx:
    shapes: dict
    batch: int
    bpe: int
    burst: int
    buf: int

    def nbytes(self, t: int, off: int = 0) -> int:
        c, h, w = self.shapes[t]
        return self.batch * c * (h - off) * (w - off) * self.bpe

    def row_bytes(self, t: int, off: int = 0) -> int:
        c, _h, w = self.shapes[t]
        return self.batch * c * (w - off) * self.bpe

    def rnd(self, b: float) -> int:  # whole bursts
        return int(-(-b // self.burst) * self.burst) if b > 0 else 0


def _plan_cost(stages: list[_Stage], onchip: set[int], ctx: _Ctx, fused: bool) -> tuple[int, int, int, int, int] | None:
    """(read bytes, write bytes, streams, latencies, scratch bytes) of one keep/spill plan, or None if its
    intermediates don't fit. Latencies: one per kernel (module doc, 4) + one per tile wave after a tiled
    stage's first. Scratch: the largest stage's on-chip intermediates + weights (tiled: + its whole budget)."""
    first = {s.out: j for j, s in enumerate(stages)}
    last_use = {t: max(j for j, s in enumerate(stages) if any(x == t for x, _ in s.inputs)) for t in onchip}
    read = write = streams = latencies = scratch = 0
    for j, st in enumerate(stages):
        live = sum(ctx.nbytes(t) for t in onchip if first[t] <= j <= last_use[t])
        budget = ctx.buf - live
        if budget <= 0:
            return None
        dram_in = [(t, off) for t, off in st.inputs if t not in onchip]
        o = 0 if st.out in onchip else ctx.nbytes(st.out)
        r, n, waves = _tiled_reads(st, dram_in, o, budget, ctx)
        scratch = max(scratch, live + (budget if waves > 1 else st.weight_elements * ctx.bpe))
        read += r
        write += ctx.rnd(o)
        streams += n + (1 if o else 0)
        # a new kernel: always unfused; fused, the first stage and any stage reading a spilled intermediate
        new_kernel = not fused or j == 0 or any(t != INPUT for t, _ in dram_in)
        latencies += (1 if new_kernel else 0) + waves - 1
    return read, write, streams, latencies, scratch


def _tiled_reads(st: _Stage, dram_in: list[tuple[int, int]], o: int, budget: int, ctx: _Ctx) -> tuple[int, int, int]:
    """DRAM read bytes, read streams and tile waves of one stage, tiled if its working set exceeds ``budget``."""
    a = sum(ctx.nbytes(t, off) for t, off in dram_in)
    a_r = sum(ctx.rnd(ctx.nbytes(t, off)) for t, off in dram_in)
    wb = st.weight_elements * ctx.bpe
    n_in, w_streams = len(dram_in), (1 if wb else 0)
    if a + wb + o <= budget:
        return a_r + ctx.rnd(wb), n_in + w_streams, 1
    halo_rows = st.dilation * (st.kernel - 1)
    row_bytes = sum(ctx.row_bytes(t, off) for t, off in dram_in)
    plans = []
    for share in STATIONARY_SHARES:  # the stationary operand's share of the budget; the streamed one the rest
        stationary = max(int(budget * share), ctx.burst)
        # order A: weight chunks resident, the group's input streamed once per chunk (one wave per chunk)
        n_w = max(1, math.ceil(wb / st.groups / stationary))
        plans.append((ctx.rnd(wb) + n_w * a_r, n_w * (n_in + w_streams), n_w))
        # order B: input row bands resident, all weights re-read per band, halo rows re-read at band boundaries
        n_a = max(1, math.ceil(a / stationary))
        halo = min((n_a - 1) * halo_rows * row_bytes, halo_rows * a)
        plans.append((a_r + ctx.rnd(halo) + n_a * ctx.rnd(wb), n_a * (n_in + w_streams), n_a))
    return min(plans, key=lambda x: (x[0], x[2], x[1]))
