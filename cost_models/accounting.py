"""The kernels around the operators (node sums, cell concat) and the one accounting the loss and the
network cost share.

A cell runs, besides its edge operators: per intermediate node the sum of its inputs, and the concat of
its nodes (its output). What they cost depends on whether the profile fuses:

* **Fused** (a compiler): a node is one kernel. Its incoming operators run inside it band by band into
  one on-chip accumulator (the add is the epilogue of the producing kernel, which reads the node's other
  inputs: an identity input, i.e. a stride-1 skip, is read straight from its source tensor), and the
  node is written once, in place into the cell's concat buffer; the concat moves nothing. An operator's
  own output write and its last kernel's latency thus belong to the node's kernel.
  Why one kernel per node rather than chaining the partial sum through DRAM (op1 writes its output,
  op2's epilogue reads it back): a per-edge table is exact only for an accounting linear in the edges.
  Chaining makes a node of two operators cost one more write + read of a node tensor than its edges'
  shares, while an all-skip node needs its own kernel either way; and a compiler that fuses a
  sep_conv's four stages (this model's fused profile) fuses a node's two branches just as well.
* **Unfused** (PyTorch eager, ``trainables.cells.Cell``): every operator writes its output; a node of
  k inputs runs k - 1 ``add`` kernels (each reads two tensors, writes one); ``torch.cat`` is a copy
  kernel reading the nodes and writing the cell output.

Per-edge shares (what ``EdgeCostTable`` holds for each candidate), with R / W the read / write of one
node-sized tensor (c x h_out x w_out, whole bursts) and L one kernel's latency:

  fused:    operator edge  op - W - L     identity edge  R (its source)   per node  W + L (node kernel)
  unfused:  operator edge  op + R (add)   identity edge  R                per node  W + L (its add kernel)

plus fixed per cell (preprocess0/1, the concat copy when unfused) and per network (stem, classifier).
Summing a derived genotype's shares and the fixed terms gives exactly ``network_cost`` for every node
with two inputs (every DARTS genotype); unfused nodes with k != 2 inputs run k - 1 adds, which
``network_cost`` charges as they run. Everything here is a :class:`Term` of integer bytes and latency
counts; time and energy follow from the profile with the formulas of ``cost_models.traffic``.
"""
from __future__ import annotations

from dataclasses import dataclass

from searchspace.layout import OpInstance
from searchspace.ops import is_identity

from .profile import Profile
from .traffic import OpCost


@dataclass(frozen=True)
class Term:
    """DRAM bytes and latencies of an accounting item (a kernel, or an edge's share of one)."""

    dram_read_bytes: int = 0
    dram_write_bytes: int = 0
    dram_latencies: int = 0
    compulsory_bytes: int = 0

    def __add__(self, other: "Term") -> "Term":
        return Term(*(a + b for a, b in zip(self._tuple(), other._tuple())))

    def __sub__(self, other: "Term") -> "Term":
        return Term(*(a - b for a, b in zip(self._tuple(), other._tuple())))

    def times(self, n: int) -> "Term":
        return Term(*(n * a for a in self._tuple()))

    def _tuple(self) -> tuple[int, int, int, int]:
        return self.dram_read_bytes, self.dram_write_bytes, self.dram_latencies, self.compulsory_bytes

    @property
    def dram_bytes(self) -> int:
        return self.dram_read_bytes + self.dram_write_bytes

    def dram_time_us(self, profile: Profile) -> float:
        return self.dram_bytes / profile.dram_bytes_per_us + self.dram_latencies * profile.dram_latency_ns * 1e-3

    def dram_energy_uj(self, profile: Profile) -> float:
        return (self.dram_read_bytes * profile.dram_read_pj_per_byte
                + self.dram_write_bytes * profile.dram_write_pj_per_byte) * 1e-6 \
            + profile.static_power_w * self.dram_time_us(profile)

    def to_dict(self, profile: Profile) -> dict[str, float | int]:
        return {"dram_read_bytes": self.dram_read_bytes, "dram_write_bytes": self.dram_write_bytes,
                "dram_bytes": self.dram_bytes, "compulsory_bytes": self.compulsory_bytes,
                "dram_latencies": self.dram_latencies, "dram_time_us": self.dram_time_us(profile),
                "dram_energy_uj": self.dram_energy_uj(profile)}


def op_term(cost: OpCost) -> Term:
    return Term(cost.dram_read_bytes, cost.dram_write_bytes, cost.dram_latencies, cost.compulsory_bytes)


def tensor_bytes(profile: Profile, batch: int, c: int, h: int, w: int) -> int:
    """One stream of a (batch, c, h, w) tensor, rounded up to whole bursts."""
    b = batch * c * h * w * profile.bytes_per_element
    return -(-b // profile.dram_burst_bytes) * profile.dram_burst_bytes


def _node_bytes(profile: Profile, batch: int, inst: OpInstance) -> int:
    """A node-sized tensor: the output of an edge, or one summand / concat part (c x h x w)."""
    if inst.role == "edge":
        return tensor_bytes(profile, batch, inst.c_out, -(-inst.h // inst.stride), -(-inst.w // inst.stride))
    return tensor_bytes(profile, batch, inst.c_in, inst.h, inst.w)


def _read(n: int) -> Term:
    return Term(dram_read_bytes=n, compulsory_bytes=n)


def _write(n: int) -> Term:
    return Term(dram_write_bytes=n, compulsory_bytes=n)


KERNEL = Term(dram_latencies=1)


# ---------------------------------------------------------------- the kernels as they run (network_cost rows)
def edge_row(profile: Profile, batch: int, inst: OpInstance, cost: OpCost) -> Term:
    """An edge operator as it runs. Identity: nothing (its source is read by the node's kernel).
    Fused: the operator inside its node's kernel (its output write and last latency are the node's)."""
    if is_identity(inst.op, inst.c_in, inst.c_out, inst.stride):
        return Term()
    if profile.fused:
        return op_term(cost) - _write(_node_bytes(profile, batch, inst)) - KERNEL
    return op_term(cost)


def node_sum_row(profile: Profile, batch: int, inst: OpInstance, identity_inputs: int) -> Term:
    """Node ``inst.node``'s sum. Fused: the node kernel reads its identity inputs, writes the node once.
    Unfused: fan_in - 1 add kernels, each reading two tensors and writing one."""
    n = _node_bytes(profile, batch, inst)
    if profile.fused:
        return _read(n).times(identity_inputs) + _write(n) + KERNEL
    return (_read(n).times(2) + _write(n) + KERNEL).times(max(0, inst.fan_in - 1))


def concat_row(profile: Profile, batch: int, inst: OpInstance) -> Term:
    """Fused: in place (the nodes were written into it). Unfused: a copy kernel (``torch.cat``)."""
    if profile.fused:
        return Term()
    part = _node_bytes(profile, batch, inst)
    return _read(part).times(inst.fan_in) + _write(tensor_bytes(profile, batch, inst.c_out, inst.h, inst.w)) + KERNEL


# ---------------------------------------------------------------- the loss's per-edge shares (EdgeCostTable)
def edge_share(profile: Profile, batch: int, inst: OpInstance, cost: OpCost) -> Term:
    """What one edge running ``inst.op`` adds to the network: its operator and its share of the node sum."""
    n = _node_bytes(profile, batch, inst)
    if is_identity(inst.op, inst.c_in, inst.c_out, inst.stride):
        return _read(n)  # fused: the node kernel reads the source; unfused: the add does
    if profile.fused:
        return op_term(cost) - _write(n) - KERNEL
    return op_term(cost) + _read(n)  # the add kernel reads this edge's output


def node_fixed(profile: Profile, batch: int, inst: OpInstance) -> Term:
    """Per node, whatever its edges: the node's write and one kernel (fused: the node's; unfused: its add)."""
    return _write(_node_bytes(profile, batch, inst)) + KERNEL
