"""Between kernels: which tensors stay on chip and which go through DRAM (a profile's ``between_kernels``).

A network runs as a sequence of kernels; each reads some tensors and writes one. Inside a kernel the
operator model (``cost_models.traffic``) already decides what its weights, intermediates and tiles cost.
This module decides what happens to the tensors *between* kernels, under one of two rules:

* **round-trip** (an eager framework, or an accelerator that runs layer by layer): every kernel reads
  each of its inputs from DRAM and writes its output to DRAM. This is the rule every figure of hwnas
  followed before issue 22. With one kernel per layer (``fused = false``) it is what Stream's per-layer
  schedule pays; with a fused profile's kernels, what Stream pays fusing those kernels' layers
  (``benchmarks/stream_crosscheck.py``).
* **resident** (an NPU compiler allocating activations in its scratchpad): a kernel's output stays on
  chip for the kernels that read it while the live set fits the buffer. At each kernel the live set is
  the tensors still to be read (those on chip) plus what the running kernel needs: its output and its
  ``scratch_bytes`` (weights, kept intermediates: ``OpCost.scratch_bytes``). While that exceeds the
  buffer, the tensor whose next read is farthest away spills (Belady's rule), others before the
  kernel's own inputs (an input spilled then is written and read back: the round trip it would have
  paid anyway): it is written to DRAM once and read back by its next reader, which keeps it on chip
  again for the readers after it when it fits (a clean copy: dropping it later costs nothing). The
  network input starts in DRAM; the network output is written to DRAM; weights are read from DRAM by
  their kernel (once per inference, in ``Kernel.internal``). Where everything fits, a network pays
  exactly input + weights + output.

Both rules pay the DRAM access latency once per kernel (DESIGN.md: "Latency is paid per kernel"), plus
the kernel's own further waits (``internal.dram_latencies``: tile waves, split kernels), so a network's
latency count does not depend on the rule. When no tensor fits beside another the resident rule spills
everything and pays exactly what round-trip pays (tested).

Compulsory bytes follow the rule: round-trip, every kernel's inputs and output (what that runtime cannot
avoid); resident, the network's input, weights and output once.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .accounting import Term


@dataclass(frozen=True)
class Kernel:
    """One kernel as the schedule sees it.

    ``reads``: the tensors it reads (each once), by name; ``write``: the tensor it produces (None: none);
    ``internal``: its DRAM traffic besides reading ``reads`` once and writing ``write`` once (weights,
    spilled intermediates, tiling re-reads; latencies beyond the kernel's first); ``scratch_bytes``: what
    it holds on chip while running, besides its inputs and output."""

    reads: tuple[str, ...]
    write: str | None
    internal: Term = Term()
    scratch_bytes: int = 0


@dataclass(frozen=True)
class KernelTraffic:
    """What one kernel pays under the rule. ``from_dram[i]``: whether ``reads[i]`` came from DRAM."""

    term: Term  # DRAM bytes (internal + reads from DRAM + writes) and latencies (1 + internal)
    from_dram: tuple[bool, ...]
    reads: tuple[Term, ...]  # per read: its DRAM read (empty when it came from on chip), compulsory as the rule says
    onchip_bytes: int  # bytes read from tensors on chip, plus the output when it stays on chip
    spilled_bytes: int  # bytes written to DRAM because they did not fit: the output, or evicted tensors
    evicted: tuple[str, ...] = ()  # tensors this kernel pushed out to make room (farthest next read first)


def schedule(kernels: Sequence[Kernel], sizes: Mapping[str, int], buffer_bytes: int, *, resident: bool,
             inputs: Iterable[str] = (), outputs: Iterable[str] = ()) -> list[KernelTraffic]:
    """Each kernel's traffic under the rule (module doc). ``sizes``: bytes of every tensor (whole bursts);
    ``inputs``: tensors in DRAM before the first kernel (the network input); ``outputs``: tensors that
    must end in DRAM (the network output)."""
    inputs, outputs = set(inputs), set(outputs)
    if not resident:
        return [_round_trip(k, sizes, inputs, outputs) for k in kernels]
    readers: dict[str, list[int]] = {}
    for j, k in enumerate(kernels):
        for t in k.reads:
            readers.setdefault(t, []).append(j)

    def next_read(t: str, j: int) -> float:
        """The first kernel after ``j`` that reads ``t`` (inf: none)."""
        r = readers.get(t, [])
        i = bisect.bisect_right(r, j)
        return r[i] if i < len(r) else float("inf")

    on_chip: dict[str, int] = {}  # tensor -> bytes, in the order they arrived
    in_dram = set(inputs)
    unread_inputs = set(inputs)  # the network input's first read is compulsory, a second one is not
    out = []
    for j, k in enumerate(kernels):
        missing = [t for t in k.reads if t not in on_chip and t not in in_dram]
        if missing:
            raise ValueError(f"kernel {j} reads {', '.join(missing)}, which no earlier kernel wrote")
        # the live set while k runs: what is on chip, its output (written into the buffer) and its scratch;
        # while it overflows, spill what is read farthest in the future: others first, then k's own inputs
        # (a spilled input is written now and read back by k: the round trip its producer would have paid)
        size = sizes[k.write] if k.write is not None else 0
        term, evicted = k.internal + Term(dram_latencies=1), []
        for pinned in (False, True):
            while sum(on_chip.values()) + size + k.scratch_bytes > buffer_bytes:
                victims = [t for t in on_chip if (t in k.reads) == pinned]
                if not victims:
                    break
                # farthest next read first; among equals a tensor DRAM already holds (dropped for free)
                victim = max(victims, key=lambda t: (next_read(t, j), t in in_dram, sizes[t]))
                n = on_chip.pop(victim)
                if victim not in in_dram:  # written once; a copy DRAM already holds is simply dropped
                    term += Term(dram_write_bytes=n)
                    in_dram.add(victim)
                    evicted.append(victim)
        # a tensor the kernel reads twice (a residual add beside the branch reading the same input) comes
        # from DRAM at most once
        from_dram = tuple(t not in on_chip and t not in k.reads[:i] for i, t in enumerate(k.reads))
        reads = []
        for t, d in zip(k.reads, from_dram):
            reads.append(Term(dram_read_bytes=sizes[t], compulsory_bytes=sizes[t] if t in unread_inputs else 0)
                         if d else Term())
            unread_inputs.discard(t)
        term = sum(reads, term)
        onchip = sum(sizes[t] for t, d in zip(k.reads, from_dram) if not d)
        spilled = sum(sizes[t] for t in evicted)
        if k.write is not None:
            read_later = next_read(k.write, j) < float("inf")
            fits = sum(on_chip.values()) + size + k.scratch_bytes <= buffer_bytes
            if k.write in outputs or (read_later and not fits):  # streamed out as it is produced
                term += Term(dram_write_bytes=size, compulsory_bytes=size if k.write in outputs else 0)
                in_dram.add(k.write)
                spilled += 0 if k.write in outputs else size
            elif read_later:  # stays on chip for its readers (until something evicts it)
                on_chip[k.write] = size
                onchip += size
        for t, d in zip(k.reads, from_dram):  # read from DRAM and read again later: kept if it fits
            if d and t not in on_chip and next_read(t, j) < float("inf") \
                    and sum(on_chip.values()) + sizes[t] <= buffer_bytes:
                on_chip[t] = sizes[t]
        for t in list(on_chip):  # tensors nobody reads any more leave the buffer
            if next_read(t, j) == float("inf"):
                del on_chip[t]
        out.append(KernelTraffic(term, from_dram, tuple(reads), onchip, spilled, tuple(evicted)))
    return out


def _round_trip(k: Kernel, sizes: Mapping[str, int], inputs: set[str], outputs: set[str]) -> KernelTraffic:
    """Every input read from DRAM, the output written to DRAM: all of it compulsory for such a runtime."""
    reads = tuple(Term(dram_read_bytes=sizes[t], compulsory_bytes=sizes[t]) for t in k.reads)
    write = sizes[k.write] if k.write is not None else 0
    term = sum(reads, k.internal + Term(dram_write_bytes=write, dram_latencies=1, compulsory_bytes=write))
    return KernelTraffic(term, (True,) * len(k.reads), reads, 0, 0)
