"""An ONNX graph's kernel groups under the resident rule (``cost_models.residency``).

``cost_models.onnx_graph`` groups a graph into regions and charges each its round-trip traffic: an
operator region reads its one input and writes its output; an ``add`` (a node sum) reads the tensors it
does not sum on chip and writes its output, the operator regions summed into it having given it their
write and latency; a fused ``join`` (concat) is written in place by its producers and copies only parts
it cannot own (graph inputs, parts joined twice). Here each region becomes a kernel of the schedule (an
add together with the operator regions summed into it), reading through in-place concats to their
parts, so a tensor can stay on chip between the kernel that writes it and those that read it.

``Region`` (a kernel group) is defined here and built by ``onnx_graph``. Each region's ``internal`` part
is its round-trip term less the reads and the write the schedule now decides, so when nothing stays on
chip every region pays exactly its round-trip term again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from .accounting import KERNEL, Term
from .profile import Profile
from .residency import Kernel, schedule


@dataclass
class Region:
    """A kernel group: its records, its round-trip traffic, and what the residency schedule needs."""

    kind: str  # "op", "add", "join", "copy"
    recs: list[int] = field(default_factory=list)
    term: Term = field(default_factory=Term)
    out: str = ""
    ext: str = ""  # op: the one tensor it reads
    scratch: int = 0  # op: OpCost.scratch_bytes
    into: str = ""  # op: the output of the add it is summed into on chip (its write and latency are the add's)
    leaves: list[str] = field(default_factory=list)  # add / join / copy: the tensors it reads (add: not summed)
    copies: list[str] = field(default_factory=list)  # fused join: parts it copies (graph inputs, shared parts)


def resident_terms(profile: Profile, order: list[Region], size_of: Callable[[str], int], inputs: Iterable[str],
                   outputs: Iterable[str]) -> dict[int, tuple[Term, int, int]]:
    """id(region) -> (term, on-chip bytes, spilled bytes) under the resident rule, regions in execution order."""
    sizes: dict[str, int] = {}
    parts: dict[str, tuple[str, ...]] = {}  # an in-place concat's output -> the tensors it is made of

    def expand(tensors: Iterable[str]) -> tuple[str, ...]:
        out: list[str] = []
        for t in tensors:
            if t in parts:
                out.extend(expand(parts[t]))
            else:
                if t not in sizes:  # (setdefault would call size_of for the pseudo-tensors too)
                    sizes[t] = size_of(t)
                out.append(t)
        return tuple(out)

    def reads_term(tensors: tuple[str, ...]) -> Term:
        n = sum(sizes[t] for t in tensors)
        return Term(dram_read_bytes=n, compulsory_bytes=n)

    def write_term(t: str) -> Term:
        return Term(dram_write_bytes=sizes[t], compulsory_bytes=sizes[t])

    summed: dict[str, list[Region]] = {}  # an add's output -> the operator regions summed into it
    for reg in order:
        if reg.kind == "op" and reg.into:
            summed.setdefault(reg.into, []).append(reg)
    kernels: list[Kernel] = []
    owners: list[list[Region]] = []  # per kernel: its regions, the main one (add, or the only one) last
    for reg in order:
        if reg.kind == "op" and reg.into:
            continue  # inside its add's kernel
        if reg.kind == "join" and not reg.copies:
            parts[reg.out] = tuple(reg.leaves)
            continue
        if reg.kind == "join":  # the parts it copies become one tensor beside the in-place ones
            copies = reg.out + "#copies"
            reads = expand(reg.copies)
            sizes[copies] = sum(sizes[t] for t in reads)
            parts[reg.out] = (*reg.leaves, copies)
            kernels.append(Kernel(reads, copies, reg.term - reads_term(reads) - write_term(copies) - KERNEL))
            owners.append([reg])
            continue
        sizes.setdefault(reg.out, size_of(reg.out))
        if reg.kind == "op":
            reads = expand((reg.ext,))
            kernels.append(Kernel(reads, reg.out, reg.term - reads_term(reads) - write_term(reg.out) - KERNEL,
                                  reg.scratch))
            owners.append([reg])
            continue
        inner = summed.get(reg.out, [])
        reads, internal = expand(reg.leaves), Term()
        for op in inner:
            op_reads = expand((op.ext,))
            reads += op_reads
            internal += op.term - reads_term(op_reads)
        charged = [t for t in reg.leaves if t not in {op.ext for op in inner}]  # as the round trip read them
        internal += reg.term - reads_term(expand(charged)) - write_term(reg.out) - KERNEL
        kernels.append(Kernel(reads, reg.out, internal, max((op.scratch for op in inner), default=0)))
        owners.append([*inner, reg])
    traffic = schedule(kernels, sizes, profile.onchip_buffer_bytes, resident=True, inputs=expand(inputs),
                       outputs=expand(outputs))
    result: dict[int, tuple[Term, int, int]] = {id(reg): (Term(), 0, 0) for reg in order}
    for kernel, t, regs in zip(kernels, traffic, owners):
        rest, onchip, pos = t.term, t.onchip_bytes, len(expand(regs[-1].leaves)) if regs[-1].kind == "add" else 0
        for op in regs[:-1]:  # operator regions summed into this add: their internal part and their reads
            n = len(expand((op.ext,)))
            mine = range(pos, pos + n)
            term = op.term - reads_term(kernel.reads[pos:pos + n]) + sum((t.reads[i] for i in mine), Term())
            on = sum(sizes[kernel.reads[i]] for i in mine if not t.from_dram[i])
            result[id(op)] = (term, on, 0)
            rest, onchip, pos = rest - term, onchip - on, pos + n
        result[id(regs[-1])] = (rest, onchip, t.spilled_bytes)
    return result

