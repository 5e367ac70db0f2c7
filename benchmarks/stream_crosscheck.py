"""Cross-check (issue 22, item 4): hwnas's whole-network DRAM traffic against Stream's layer-fused scheduler.

  .venv/bin/python benchmarks/stream_crosscheck.py [--stream-python /work/stream-venv/bin/python]
      [--json FILE] [--networks cnn3,pool,sep,darts] [--accelerators mobile-npu,eyeriss] [--slow]
      [--zigzag] [--breakdown] [--keep DIR]

Stream (PyPI ``stream-dse`` 2.1.1, KU Leuven's layer-fused scheduler on ZigZag) needs Python >= 3.12, so it
is not a dependency of hwnas: it lives in its own venv (docs/benchmarks.md, "Stream cross-check") and this script,
under hwnas's 3.11 venv, runs ``benchmarks/stream/stream_driver.py`` in it, one subprocess per schedule,
exchanging ONNX files and JSON. Without it the script says so in one line and exits 2. Not a test.

**Networks** (batch 1, int8 or int16 as the profile says, untrained weights):
``cnn3``: the issue's 3-block CNN, 1x36x32x32, each block 1x1 conv, depthwise 3x3, 1x1 conv, 3x3 max pool
(stride 1), add of the block input (built in torch here, no bias, no BN, no ReLU); and three genotypes at
DARTS's evaluation geometry, 20 cells x 36 channels, 32x32x1 (Fashion-MNIST), built and exported by hwnas's
own code path (``trainables.full_train.build_network`` + ``hwnas.cli.export.export_onnx``, as
``hwnas train`` / ``hwnas export`` do): ``pool`` (every node two 3x3 max pools: n2 = mp(0) + mp(1), n3 =
mp(1) + mp(2), ...; a reduction cell's pools from its inputs have stride 2), ``sep`` (every edge of every
cell sep_conv_3x3 from inputs 0 and 1) and ``darts`` (DARTS-V2's cells: sep_conv_3x3, skip, dil_conv_3x3;
reduction max pools and skips). Avg pools are left out: stream-dse 2.1.1 parses no AveragePool.

**Accelerators** (single core, derived from the hwnas profile; ``hardware_files``): Stream's own bundled
core, ``tpu_like`` (32 x 32 systolic int8 MACs; the Exynos 9820 NPU has 1024 MACs) for ``mobile-npu`` and
``eyeriss_like`` (14 x 12 = 168 PEs, as Eyeriss) for ``eyeriss``, read from the Stream install (register files
and array kept, so ZigZag finds mappings) with its top memory, the one holding inputs, weights and outputs
(Stream's fusion capacity), resized to ``onchip_buffer_bytes`` (1 MiB / 108 KB) and operand precision
``bytes_per_element`` x 8 bits; plus an off-chip DRAM core whose port is ``dram_burst_bytes`` x 8 bits wide,
so a Stream word is a hwnas burst (32 B LPDDR5 / 8 B Eyeriss bus), at ``dram_read/write_pj_per_byte`` x burst
pJ per word. The clock that makes that port carry ``dram_bandwidth_gbps`` (51.2 GB/s / 32 B = 1.6 GHz; 0.48
GB/s / 8 B = 60 MHz, Eyeriss's link clock) is in the YAML's comment; only bytes are compared here.

**Schedules** (Stream's fusion groups, always given explicitly, never Stream's automatic cuts, which fail on
some graphs with "only support single destination for constant output transfer"):
``per-layer``: every layer (ONNX compute node) a group; ``kernel``: hwnas's shipped kernels as groups (an
operator's layers, a node's operators with their Add, the factorized reduce; ``kernel_groups``);
``fused``: one group per block (cnn3) or per stem / cell / classifier (every node of ``/cells.i/...``);
``whole``: the network in one group. The script cuts the network into its groups itself, each group a model
of its own (inputs from DRAM, weights, its one output to DRAM, as Stream's ``split_fusion_groups`` makes
them; same bytes as Stream's own split on cnn3), and solves every distinct group once (a 20-cell export has
~30 distinct layers among ~800). Left out unless ``--slow`` (``slow``): per-cell fusion of sep/darts (Stream's
capacity tiler takes 5-15 min per distinct cell here; one darts cell measured: 971 s, 471,872 B = the cell's
inputs + weights + output), of pool on eyeriss (~5 min), whole-network fusion of the 20-cell exports (over 10
min of mapping generation for one 127-layer group), cnn3 whole on eyeriss and sep/darts kernels on eyeriss
(both fail after minutes, see the notes).

**Reading Stream's DRAM traffic**: ``group_memory_accesses`` of each group, the off-chip core's rows:
per tensor, read/write counts in port-width words, each ceil(tile bits / port bits) x firings. Bytes on the
bus = words x port bits / 8 (a tile's last word padded, as hwnas rounds each stream to whole bursts); the
payload (firings x tile bits / 8) is in the JSON too. Tensors a group reads from DRAM are its InEdges
(network input, weights, earlier groups' outputs), those it writes its OutEdges.

**hwnas side**: ``cost_models.onnx_graph.onnx_cost(path, profile, 1)`` on the same prepared graph, with the
profile's rule set by ``dataclasses.replace``: ``round-trip`` = every layer a kernel that reads its inputs
from DRAM and writes its output (``fused=False``: the kernels are then Stream's per-layer layers);
``shipped`` = the profile as shipped (``fused=True``: an operator region (a sep_conv's dw+pw chain, a node's
operators summed into its Add, the factorized reduce) is one kernel, with its intermediates on chip), still
a round trip between kernels; ``residency`` = the rule issue 22 adds (a tensor stays on chip for its readers
while the live set fits). ``RULE_FIELD`` below names the profile field that selects it; until it exists the
residency column prints n/a.

**Making both see the same kernels** (``prepare``): the export's BatchNormalization nodes are folded into
their Conv as a bias (the factorized reduce's BN after its concat into both convs, half the channels each),
as hwnas folds BN on every profile here (``fold_bn = true``) and a deployed int8/int16 network has it
folded; ReLU nodes are removed: hwnas's fused profiles run a ReLU as its consumer's prologue (no traffic),
while both Stream per-layer and hwnas ``fused=False`` would charge it a DRAM round trip; Identity and
Dropout nodes are dropped, Constants become initializers. hwnas's shipped cost of the prepared graph equals
that of the raw export (checked on every run). For Stream only (``stream_model``): the factorized reduce's
``x[:, :, 1:, 1:]`` (two ONNX Slices) becomes its Conv's leading pad -1 (same pixels read): Stream 2.1.1
loses the Slice's data dependency (a Slice group reads nothing from DRAM and runs first), while hwnas reads
a Slice as its Conv's offset; tensors are retyped int8/int16 (Stream sizes a tensor by its ONNX type).

**Known differences between the two models** (``--breakdown`` lists them per kernel kind):
1. Concat: stream-dse 2.1.1 has no Concat; the driver registers one as a copy layer (reads each distinct
   input once, writes the output). hwnas ``fused=False`` copies too but reads every input occurrence: where
   the export's CSE makes two nodes of a cell one tensor (DARTS-V2's reduction cell: n5 = n3), hwnas reads it
   twice. hwnas's shipped profiles write a concat in place (no traffic); Stream ``kernel`` copies it, the
   main part of "shipped vs kernel".
2. Granularity: Stream per-layer = hwnas ``fused=False``. hwnas's shipped profiles keep an operator's
   intermediates (sep_conv: 3 of its 4 layer outputs) and a node's operator outputs on chip, so their
   round trip lies between Stream per-layer and Stream fused; Stream ``kernel`` is its like-for-like.
3. Tiling (eyeriss, 108 KB): where a layer's working set exceeds the buffer, ``cost_models.traffic.
   _tiled_reads`` gives the stationary operand exactly half the buffer (``half = budget // 2``) in both loop
   orders. A 1x1 conv 576 -> 144 at 8x8, 16-bit (input 73,728 B, weights 165,888 B) then re-reads its
   weights or input 2-3 times (hwnas 424,512 B per layer), while Stream's tiler keeps the whole input
   resident beside double-buffered weight chunks and reads everything once (258,336 B).
4. Stream 2.1.1 undercounts two things: (a) the DRAM write of a depthwise conv that its tiler splits along
   the group axis (eyeriss: 36x32x32 16-bit dw layers): one tile's worth instead of every tile's (its output
   channel g*K/groups + k is an expression of g, and the steady-state space counts the g loop as reuse);
   (b) the classifier Gemm's weights (576 x 10): one 10 x 10 tile. ``*`` in the table marks such totals;
   ``floor_bytes`` (JSON, notes) completes them: every group output written, every weight read once in full.
5. Burst rounding: both round a stream to whole bursts/words; Stream per tile per firing, hwnas per stream.
6. A node sum whose skip input is also its operator's input (cnn3's residual): hwnas's fused node kernel
   reads that tensor twice (``onnx_graph.onnx_cost``: an Add region reads every leaf not summed on chip),
   Stream's group once: cnn3 shipped vs kernel on mobile-npu, +110,592 B = 3 x 36,864.
7. Fusion depth: hwnas's fused operator keeps an intermediate on chip only if the whole tensor fits (its
   keep/spill plan); Stream fuses a chain depth-first in row tiles, so only tiles must fit: a cnn3 block on
   eyeriss, hwnas 374,472 B (intermediates spilled) vs Stream 153,288 B.
8. Stream's allocation chooses tile reuse for latency, so where layers must be tiled (eyeriss) its bytes follow
   the core cycle costs: ``--zigzag`` (ZigZag-costed layers) moves 2-51 % more than the default ideal-cycle
   costs on eyeriss, the same on mobile-npu (docs/benchmarks.md, "Stream cross-check").

Targets: the round-trip rule within 2 % of Stream per-layer (also shown against the completed per-layer
figure); the residency rule between Stream fused and Stream per-layer, and within 25 % of Stream fused where
the whole live set fits the buffer (peak live set: ``live_peak``). Stream fused is its best fused schedule
run; where the live set fits and Stream's whole-network fusion was not run, the network input + weights +
output as Stream moves them (what its whole-network cnn3 paid, to the byte). Each target is printed met /
not met (residency n/a until ``RULE_FIELD`` is set).
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import onnx  # noqa: E402
import yaml  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from onnx import TensorProto as TP  # noqa: E402

from cost_models.onnx_graph import onnx_cost  # noqa: E402
from cost_models.profile import Profile, load_profile  # noqa: E402
from stream.graphs import NETWORKS, export, group_model, kernel_groups, live_peak, prepare, schedules, \
    stream_model  # noqa: E402

log = logging.getLogger("stream_crosscheck")

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "stream" / "stream_driver.py"

# the profile field that selects the rule between kernels (cost_models.residency): the hwnas columns force it
RULE_FIELD: str | None = "between_kernels"
ROUND_TRIP, RESIDENT = "round-trip", "resident"

ACCELERATORS = {  # hwnas profile -> the Stream core (bundled in stream/inputs/examples/hardware/cores) it resizes
    "mobile-npu": {"core": "tpu_like.yaml", "why": "32 x 32 int8 systolic MACs (the Exynos 9820 NPU has 1024 MACs)"},
    "eyeriss": {"core": "eyeriss_like.yaml", "why": "14 x 12 = 168 PEs, 16-bit, as Eyeriss (JSSC 2017)"},
}
def slow(name: str, accel: str, sched: str) -> bool:
    """Solves left out unless --slow (times on the 2-core sandbox): Stream's capacity tiler takes ~5-15 min per
    distinct sep/darts cell; pool cells on eyeriss ~5 min; one group of a whole 20-cell export > 10 min of
    mapping generation; cnn3 whole on eyeriss fails ("tile range must be non-empty") after ~4 min; sep/darts node
    kernels on eyeriss fail (InfeasibleAllocationError: pinned tensors 371-658 KB > 108 KB) after 2-4 min."""
    if sched == "whole":
        return name != "cnn3" or accel == "eyeriss"
    if sched == "fused":
        return name in ("sep", "darts") or (name == "pool" and accel == "eyeriss")
    if sched == "kernel":  # sep/darts node kernels on 108 KB: Stream's mapper finds no placement (after ~2-4 min)
        return name in ("sep", "darts") and accel == "eyeriss"
    return False


def hardware_files(profile: Profile, template: Path, folder: Path) -> Path:
    """A single-core Stream accelerator matching ``profile`` (module doc): Stream's bundled core ``template``
    with its top memory (the one holding inputs, weights and outputs) resized to the profile's buffer and its
    operand precision set to the profile's width, plus a DRAM core whose port is one burst wide. Returns the
    system YAML."""
    bits = profile.bytes_per_element * 8
    word = profile.dram_burst_bytes * 8
    clock_mhz = profile.dram_bandwidth_gbps * 1e3 / profile.dram_burst_bytes
    core = yaml.safe_load(template.read_text())
    tops = [k for k, m in core["memories"].items() if set(m["operands"]) == {"I1", "I2", "O"}]
    if len(tops) != 1:
        raise ValueError(f"{template}: no single memory holds I1, I2 and O")
    core["name"] = f"{profile.name}_core"
    core["memories"][tops[0]]["size"] = profile.onchip_buffer_bytes * 8
    core["operand_precision"] = {"input": f"int{bits}", "accumulator": core["operand_precision"]["accumulator"]}
    port = {"name": "rw_port_1", "type": "read_write", "bandwidth_min": word, "bandwidth_max": word,
            "allocation": ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"]}
    dram = {"name": "dram", "type": "zigzag.offchip",
            "memories": {"dram": {"size": 8 * 10 ** 10, "area": 0, "latency": 1, "operands": ["I1", "I2", "O"],
                                  "r_cost": profile.dram_read_pj_per_byte * profile.dram_burst_bytes,  # pJ / word
                                  "w_cost": profile.dram_write_pj_per_byte * profile.dram_burst_bytes,
                                  "ports": [port], "served_dimensions": ["D1", "D2"]}},
            "operational_array": {"unit_energy": 0, "unit_area": 0, "dimensions": ["D1", "D2"], "sizes": [0, 0]}}
    system = {"name": f"{profile.name}_single_core", "cores": {0: "core.yaml", 1: "dram.yaml"},
              "offchip_core_id": 1, "unit_energy_cost": 0,
              "core_connectivity": [{"type": "bus", "cores": [0, 1], "bandwidth": word}]}
    folder.mkdir(parents=True, exist_ok=True)
    head = (f"# generated by benchmarks/stream_crosscheck.py from hwnas profile {profile.name} ({profile.source}) and "
            f"Stream's {template.name}:\n# buffer {profile.onchip_buffer_bytes} B, int{bits}, DRAM port {word} bit = "
            f"one {profile.dram_burst_bytes} B burst per cycle at {clock_mhz:g} MHz = {profile.dram_bandwidth_gbps:g} GB/s\n")
    for name, data in (("core.yaml", core), ("dram.yaml", dram), ("system.yaml", system)):
        (folder / name).write_text(head + yaml.safe_dump(data, sort_keys=False))
    return folder / "system.yaml"


def stream_cores(python: str) -> Path:
    """The folder of Stream's bundled core YAMLs in ``python``'s stream-dse (read as data, never copied)."""
    r = subprocess.run([python, "-c", "import os, stream; print(os.path.dirname(stream.__file__))"],
                       capture_output=True, text=True, check=True)
    return Path(r.stdout.strip()) / "inputs" / "examples" / "hardware" / "cores"


def stream_available(python: str) -> str | None:
    """None if ``python`` imports stream-dse, else why not (one line)."""
    if not Path(python).exists():
        return f"no Stream interpreter at {python}"
    try:
        r = subprocess.run([python, str(DRIVER), "--check"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} does not run: {exc}"
    if r.returncode != 0:
        return f"{python} cannot import stream-dse: {(r.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


def run_stream(python: str, system: Path, smodel: onnx.ModelProto, groups: list[list[int]], folder: Path,
               label: str, timeout: float, zigzag: bool) -> dict:
    """Stream's DRAM traffic of ``smodel`` cut into ``groups``: every distinct group solved once (in one
    subprocess), its bytes counted for each of its instances. {"error": ...} when a group fails or time runs out."""
    start = time.perf_counter()
    paths: dict[bytes, Path] = {}
    instance: list[bytes] = []
    out_bits: dict[bytes, dict[str, int]] = {}
    for k, members in enumerate(groups):
        sub = group_model(smodel, members)
        blob = sub.SerializeToString()
        if blob not in paths:
            paths[blob] = folder / f"{label}_g{len(paths)}.onnx"
            paths[blob].write_bytes(blob)
            g = sub.graph
            out_bits[blob] = ({v.name: math.prod(d.dim_value for d in v.type.tensor_type.shape.dim)
                               * _BITS[v.type.tensor_type.elem_type] for v in list(g.output) + list(g.value_info)},
                              {w.name: math.prod(w.dims) * _BITS[w.data_type] for w in g.initializer})
        instance.append(blob)
    unique = list(paths)
    job = {"hardware": str(system), "models": [str(paths[b]) for b in unique], "time_limit_s": 60, "zigzag": zigzag}
    jpath = folder / f"job_{label}.json"
    jpath.write_text(json.dumps(job))
    log.info("Stream %s: %d groups, %d distinct ...", label, len(groups), len(unique))
    try:
        r = subprocess.run([python, str(DRIVER), str(jpath)], capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, OMP_NUM_THREADS="1"))
    except subprocess.TimeoutExpired:
        return {"error": f"no result in {timeout:g} s", "seconds": round(time.perf_counter() - start, 1)}
    seconds = round(time.perf_counter() - start, 1)
    if r.returncode != 0 or not r.stdout.strip():
        return {"error": (r.stderr.strip().splitlines() or ["driver failed"])[-1][:300], "seconds": seconds}
    results = json.loads(r.stdout)["results"]
    if len(results) < len(unique) or "error" in results[-1]:
        return {"error": results[-1].get("error", "?") if results else "no result", "seconds": seconds,
                "groups_solved": sum("error" not in x for x in results), "distinct_groups": len(unique)}
    per = {b: stream_traffic(res, *out_bits[b]) for b, res in zip(unique, results)}
    total = collections.Counter()
    short = 0
    rows = []
    for members, blob in zip(groups, instance):
        t = per[blob]
        total.update({k: t[k] for k in ("bytes", "read_bytes", "write_bytes", "payload_bytes", "floor_bytes",
                                        "weight_bytes")})
        short += t["short"]
        rows.append({"layers": [smodel.graph.node[j].name for j in members], "bytes": t["bytes"],
                     "floor_bytes": t["floor_bytes"]})
    word = _port_bits(system)
    io = sum(math.ceil(math.prod(d.dim_value for d in v.type.tensor_type.shape.dim)
                       * _BITS[v.type.tensor_type.elem_type] / word) * word // 8
             for v in list(smodel.graph.input) + list(smodel.graph.output))
    return {**dict(total), "all_fits_bytes": total["weight_bytes"] + io, "short": short, "groups": len(groups),
            "distinct_groups": len(unique),
            "group_bytes": rows, "seconds": seconds}


def _port_bits(system: Path) -> int:
    """The DRAM port width (bits) of a system YAML written by ``hardware_files``."""
    dram = yaml.safe_load((system.parent / "dram.yaml").read_text())
    return int(dram["memories"]["dram"]["ports"][0]["bandwidth_max"])


_BITS = {TP.INT8: 8, TP.INT16: 16, TP.FLOAT: 32, TP.INT64: 64}


def stream_traffic(result: dict, out_bits: dict[str, int], weight_bits: dict[str, int]) -> dict:
    """One solved group's off-chip bytes from ``group_memory_accesses`` (module doc): on the bus, payload, and
    ``floor_bytes``: the same with every output written and every weight read at least once in full, where
    Stream counts less (its undercounts, doc item 4); ``short``: how many tensors that lifted; ``weight_bytes``:
    every weight the group reads, once."""
    read = write = payload = extra = short = weights = 0
    for grp in result["groups"]:
        for core in grp["offchip"]:
            rbw, wbw = core["read_bandwidth"], core["write_bandwidth"]
            for t in core["tensors"]:
                bits = max(1, t["size_bits"])
                read += t["read"] * rbw // 8
                write += t["write"] * wbw // 8
                if t["tensor"] in weight_bits:  # each weight once, as a whole-network fusion that fits reads it
                    weights += math.ceil(weight_bits[t["tensor"]] / rbw) * rbw // 8
                for count, width in ((t["read"], rbw), (t["write"], wbw)):
                    payload += count // math.ceil(bits / width) * bits // 8 if count else 0
                for count, width, full in ((t["write"], wbw, out_bits.get(t["tensor"])),
                                           (t["read"], rbw, weight_bits.get(t["tensor"]))):
                    if count and full and count * width < full:
                        extra += math.ceil(full / width) * width // 8 - count * width // 8
                        short += 1
    return {"bytes": read + write, "read_bytes": read, "write_bytes": write, "payload_bytes": payload,
            "floor_bytes": read + write + extra, "short": short, "weight_bytes": weights}


# ------------------------------------------------------------------------------------------ hwnas side
def hwnas_costs(path: Path, profile: Profile) -> dict[str, Any]:
    """hwnas's bytes on the prepared graph under each rule (module doc, "hwnas side")."""
    rule = {RULE_FIELD: ROUND_TRIP} if RULE_FIELD else {}
    out: dict[str, Any] = {
        "round_trip": onnx_cost(path, dataclasses.replace(profile, fused=False, **rule), 1),
        "shipped": onnx_cost(path, dataclasses.replace(profile, **rule), 1),
        "residency": (onnx_cost(path, dataclasses.replace(profile, fused=True, **{RULE_FIELD: RESIDENT}), 1)
                      if RULE_FIELD else None),
    }
    return out


# ------------------------------------------------------------------------------------------ report
def _pct(a: float, b: float) -> float:
    return 100.0 * (a - b) / b


def breakdown(cost, stream: dict, model: onnx.ModelProto, top: int = 8) -> list[str]:
    """Where hwnas round-trip and Stream per-layer differ: hwnas's kernel rows, each matched with the Stream
    groups of the layers it covers, summed by (ops, output shape); the largest differences first."""
    order = {n.name: j for j, n in enumerate(model.graph.node)}
    starts = sorted((order[r["node"]], k) for k, r in enumerate(cost.rows) if r["node"] in order)
    stream_of = collections.Counter()
    for grp in stream["group_bytes"]:
        first = min((order[n] for n in grp["layers"] if n in order), default=None)
        if first is None:
            continue
        k = max((k for j, k in starts if j <= first), default=starts[0][1])
        stream_of[k] += grp["floor_bytes"]
    agg: dict[tuple, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    for k, r in enumerate(cost.rows):
        key = (r["ops"], tuple(r["output"]))
        agg[key][0] += r["dram_bytes"]
        agg[key][1] += stream_of.get(k, 0)
        agg[key][2] += 1
    rows = sorted(agg.items(), key=lambda kv: -abs(kv[1][0] - kv[1][1]))[:top]
    return [f"    {n:4d} x {ops[:40]:40s} -> {list(shape)}: hwnas {h:>11,d} B, Stream {s:>11,d} B ({h - s:+,d})"
            for (ops, shape), (h, s, n) in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream-python", default=os.environ.get("STREAM_PYTHON", "/work/stream-venv/bin/python"),
                        help="Python >= 3.12 with stream-dse 2.1.1 (default $STREAM_PYTHON or "
                             "/work/stream-venv/bin/python)")
    parser.add_argument("--json", metavar="FILE", help="write the raw numbers here")
    parser.add_argument("--networks", default=",".join(NETWORKS), help=f"subset of {','.join(NETWORKS)}")
    parser.add_argument("--accelerators", default=",".join(ACCELERATORS), help=f"subset of {','.join(ACCELERATORS)}")
    parser.add_argument("--slow", action="store_true",
                        help="also run the Stream solves that take many minutes (SLOW: per-cell fusion of sep/darts, "
                             "of pool on eyeriss, whole-network fusion of the 20-cell exports and of cnn3 on eyeriss)")
    parser.add_argument("--zigzag", action="store_true",
                        help="let Stream cost each layer with ZigZag's mapping search (~13 min instead of ~5; same "
                             "bytes on mobile-npu, 2-51 %% more on eyeriss, where Stream picks tile reuse by latency)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per Stream solve (default 600)")
    parser.add_argument("--breakdown", action="store_true",
                        help="per kernel kind, where hwnas round-trip and Stream per-layer differ by more than 2 %%")
    parser.add_argument("--keep", metavar="DIR", help="keep the ONNX, YAML and job files here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    nets = [n for n in args.networks.split(",") if n]
    accels = [a for a in args.accelerators.split(",") if a]
    bad = [n for n in nets if n not in NETWORKS] + [a for a in accels if a not in ACCELERATORS]
    if bad:
        parser.error(f"unknown network/accelerator {', '.join(bad)}")
    why = stream_available(args.stream_python)
    if why:
        print(f"Stream is not available ({why}); set it up as docs/benchmarks.md 'Stream cross-check' says "
              f"(python3.12 -m venv /work/stream-venv && /work/stream-venv/bin/pip install stream-dse==2.1.1 six)")
        return 2
    if RULE_FIELD is None:
        log.info("hwnas residency rule: Profile has no rule field yet (RULE_FIELD = None): column n/a")

    cores = stream_cores(args.stream_python)
    tmp = tempfile.TemporaryDirectory()
    folder = Path(args.keep) if args.keep else Path(tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for name in nets:
        raw = folder / f"{name}_export.onnx"
        log.info("exporting %s", name)
        export(name, raw)
        prepared = prepare(onnx.load(str(raw)))
        onnx.save(prepared, str(folder / f"{name}.onnx"))
        for accel in accels:
            profile = load_profile(accel)
            shipped_raw = onnx_cost(raw, profile, 1).dram_bytes
            hw = hwnas_costs(folder / f"{name}.onnx", profile)
            if hw["residency"] is not None and hw["residency"].dram_bytes == hw["shipped"].dram_bytes:
                log.warning("%s on %s: residency = shipped round trip to the byte; does onnx_cost read Profile.%s?",
                            name, accel, RULE_FIELD)
            if hw["shipped"].dram_bytes != shipped_raw:
                log.warning("%s on %s: preparing the graph changed hwnas's shipped cost (%d -> %d B)", name, accel,
                            shipped_raw, hw["shipped"].dram_bytes)
            smodel = stream_model(prepared, profile.bytes_per_element)
            onnx.save(smodel, str(folder / f"{name}_{accel}_stream.onnx"))
            system = hardware_files(profile, cores / ACCELERATORS[accel]["core"], folder / f"hw_{accel}")
            stream: dict[str, Any] = {}
            for sched, groups in schedules(smodel).items():
                if slow(name, accel, sched) and not args.slow:
                    stream[sched] = {"skipped": "slow (--slow runs it)"}
                    continue
                res = run_stream(args.stream_python, system, smodel, groups, folder, f"{name}_{accel}_{sched}",
                                 args.timeout, args.zigzag)
                stream[sched] = res
                if "error" in res:
                    log.info("Stream %s %s %s failed after %.0f s: %s", name, accel, sched, res["seconds"], res["error"])
                else:
                    log.info("Stream %s %s %s: %d B in %.0f s", name, accel, sched, res["bytes"], res["seconds"])
            results.setdefault(name, {})[accel] = {
                "stream": stream,
                "hwnas": {k: (None if v is None else {**v.to_dict(), "rows": list(v.rows) if k == "round_trip"
                                                      else None}) for k, v in hw.items()},
                "live_peak_bytes": live_peak(prepared, profile.bytes_per_element),
                "buffer_bytes": profile.onchip_buffer_bytes,
                "_cost": hw, "_model": prepared,
            }
    report(results, nets, accels, args.breakdown)
    if args.json:
        clean = {n: {a: {k: v for k, v in r.items() if not k.startswith("_")} for a, r in d.items()}
                 for n, d in results.items()}
        meta = {"stream_dse": "2.1.1", "rule_field": RULE_FIELD, "zigzag": args.zigzag,
                "accelerators": {a: ACCELERATORS[a] for a in accels}}
        Path(args.json).write_text(json.dumps({"meta": meta, "results": clean}, indent=1, default=str))
        log.info("wrote %s", args.json)
    tmp.cleanup()
    return 0


def _cell(res: dict | None) -> str:
    if not res:
        return "-"
    if "skipped" in res:
        return "not run"
    if "error" in res:
        return "failed"
    return f"{res['bytes']:,d}" + ("*" if res.get("short") else "")


def report(results: dict, nets: list[str], accels: list[str], show_breakdown: bool) -> None:
    """One Markdown table per accelerator, notes under it (module doc)."""
    for accel in accels:
        profile = load_profile(accel)
        print(f"\n{accel}: Stream single core, {profile.onchip_buffer_bytes:,d} B buffer, "
              f"int{8 * profile.bytes_per_element}, {profile.dram_burst_bytes * 8}-bit DRAM port; DRAM bytes per inference")
        print("| network | Stream per-layer | Stream kernel | Stream fused | Stream whole | hwnas round-trip | hwnas shipped "
              "| hwnas residency | round-trip vs per-layer | shipped vs kernel | residency position | targets |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        notes: list[str] = []
        for name in nets:
            r = results[name][accel]
            s, h = r["stream"], r["hwnas"]
            ok = {k: v for k, v in s.items() if "bytes" in v}
            for k, v in s.items():
                if v.get("short"):
                    notes.append(f"{name} {k}: Stream moves {v['short']} group output(s)/weight(s) only in part (doc "
                                 f"item 4); with each written/read once in full: {v['floor_bytes']:,d} B")
                if "error" in v:
                    notes.append(f"{name} {k}: Stream failed after {v['seconds']:.0f} s: {v['error']}")
            rt, shipped = h["round_trip"]["dram_bytes"], h["shipped"]["dram_bytes"]
            res = h["residency"]["dram_bytes"] if h["residency"] else None
            pl = ok.get("per-layer", {}).get("bytes")
            kern = ok.get("kernel", {}).get("bytes")
            fits = r["live_peak_bytes"] <= r["buffer_bytes"]
            bound = ok.get("per-layer", {}).get("all_fits_bytes")
            whole_cell = _cell(s.get("whole")) if "whole" in ok or bound is None else f"({bound:,d})"
            # Stream's best fused schedule; where it could not fuse the whole network and the live set fits, what
            # that fusion pays then: the network input, weights and output (its whole cnn3 paid exactly that)
            fused = min([ok[k]["bytes"] for k in ("fused", "whole") if k in ok]
                        + ([bound] if bound and fits and "whole" not in ok else []), default=None)
            rt_pct = _pct(rt, pl) if pl else None
            targets = [] if rt_pct is None else [f"round-trip {'met' if abs(rt_pct) <= 2 else 'NOT met'}"]
            floor = ok.get("per-layer", {}).get("floor_bytes")
            if floor and floor != pl:
                targets[-1] += f" ({'met' if abs(_pct(rt, floor)) <= 2 else 'NOT met'} vs completed*)"
            pos = None
            if res is None:
                targets.append("residency n/a")
            elif pl is None or fused is None or pl == fused:
                targets.append("residency: no Stream fused number")
            else:
                pos = (res - fused) / (pl - fused)
                met = 0 <= pos <= 1 and (not fits or abs(_pct(res, fused)) <= 25)
                targets.append(f"residency {'met' if met else 'NOT met'}" + ("" if fits else " (live set > buffer)"))
            print(f"| {name} | {_cell(s.get('per-layer'))} | {_cell(s.get('kernel'))} | {_cell(s.get('fused'))} | "
                  f"{whole_cell} | {rt:,d} | {shipped:,d} | {'n/a' if res is None else f'{res:,d}'} | "
                  f"{'-' if rt_pct is None else f'{rt_pct:+.2f} %'} | {'-' if not kern else f'{_pct(shipped, kern):+.2f} %'}"
                  f" | {'n/a' if pos is None else f'{pos:.2f}'} | {', '.join(targets)} |")
            if floor and floor != pl:
                notes.append(f"{name}: round-trip vs Stream per-layer so completed: "
                             f"{_pct(rt, floor):+.2f} %")
            if show_breakdown and rt_pct is not None and abs(_pct(rt, floor or pl)) > 2:
                notes.append(f"{name}: where round-trip and per-layer differ (kernels summed by ops and output shape):")
                notes.extend(breakdown(r["_cost"]["round_trip"], s["per-layer"], r["_model"]))
        for n in notes:
            print(f"  {n}")
    print("\nround-trip: hwnas onnx_cost with every layer a kernel (fused = false); shipped: the profile's own kernels "
          "(fused operators, a node's operators summed on chip), a round trip between kernels; Stream kernel: Stream "
          "with those kernels as its fusion groups; residency position = (residency - Stream fused) / (per-layer - "
          "fused), 0 at Stream's best fused schedule, 1 at per-layer; (X) in Stream whole: not run, X = the network "
          "input + weights + output as Stream's per-layer run moves them, what Stream's whole-network fusion paid on "
          "cnn3 (taken as Stream fused where the live set fits). Peak live set (all tensors kept): "
          + ", ".join(f"{n} {results[n][a]['live_peak_bytes']:,d} B ({a})" for n in nets for a in accels) + ".")


if __name__ == "__main__":
    sys.exit(main())
