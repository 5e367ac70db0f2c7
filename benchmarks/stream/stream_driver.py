"""Stream side of benchmarks/stream_crosscheck.py: Stream (stream-dse 2.1.1) solves, their DRAM traffic as JSON.

Runs under a Python >= 3.12 interpreter that has ``stream-dse==2.1.1`` and ``six`` installed (not hwnas's
venv; stream_crosscheck.py starts it as a subprocess):

  /work/stream-venv/bin/python benchmarks/stream/stream_driver.py JOB.json      # result JSON on stdout
  /work/stream-venv/bin/python benchmarks/stream/stream_driver.py --check       # exit 0 if Stream imports

JOB.json: {"hardware": system YAML, "models": [ONNX files], "time_limit_s": seconds per allocation solve,
"zigzag": false}. Each model is solved as one fusion group (``fusion_cut_points = []``): the caller cuts the
network into its groups (each group's layers as a model of their own, its inputs from DRAM, its one output to
DRAM, as Stream's ``Workload.split_fusion_groups`` makes them) and sends every distinct group once. The
models are solved in order; the first failure ends the job (its error is the last result).

What this file adds to Stream (through Stream's public extension points, no Stream code copied):

* An ONNX ``Concat`` parser (``stream.parser.onnx.model.register_onnx_parser``): stream-dse 2.1.1 has none.
  A channel concat of n equally shaped (B, C, H, W) inputs is one ComputationNode over (b, j, c, y, x),
  j < n: every input is read at (b, c, y, x), the output written at (b, j*C + c, y, x). It reads each input
  once and writes the output once: a copy kernel when it is a group of its own, on chip inside a group.
* ``zigzag = false`` (the default) skips ZigZag's per-layer temporal-mapping search (``ZigZagCostEstimator.
  run_zigzag`` raises, so Stream takes its own ideal-cycle fallback, as it does for any layer ZigZag cannot
  map). The search prices cycles and on-core energy and takes most of the time. The DRAM bytes follow the
  fusion groups, the tiling and the allocation's reuse choices; the last are made for latency, so they can
  follow the cycle costs: identical bytes on the 1 MiB mobile-npu core (all four networks, every schedule),
  2-51 % more with ZigZag on the 108 KB eyeriss core, where layers must be tiled (stream_crosscheck.py
  ``--zigzag``; docs/benchmarks.md "Stream cross-check").

Output {"results": [...]}, per model: the off-chip core's rows of ``group_memory_accesses`` (Stream's
``CoreMemoryAccesses.to_ir``): per tensor, ``read`` / ``write`` counts in port-width words of the off-chip
core (``read_bandwidth`` / ``write_bandwidth`` bits) and ``size_bits`` of the tile moved per firing.
Stream computes a count as ceil(size_bits / width) x fires, so ``stream_crosscheck.py`` takes bytes on the
bus = words x width / 8 (the last word of each tile padded, as a DRAM burst is) and payload bytes = fires x
size_bits / 8 with fires = words / ceil(size_bits / width).
"""
from __future__ import annotations

import contextlib
import json
import logging
import sys
import tempfile
import time
import traceback

log = logging.getLogger("stream_driver")


def _register_concat() -> None:
    from xdsl.ir.affine import AffineDimExpr, AffineMap

    from stream.parser.onnx.model import register_onnx_parser
    from stream.parser.onnx.operator_parser import OnnxOperatorParser
    from stream.workload.workload import ComputationNode

    class ConcatParser(OnnxOperatorParser):
        """Channel concat of n equal (B, C, H, W) tensors over (b, j, c, y, x): a copy (module doc)."""

        def generate_node(self, name_to_tensor_dict):
            inputs = tuple(name_to_tensor_dict[t] for t in self.node.input)
            outputs = self.get_output_tensors()
            shape = inputs[0].shape
            axis = self.get_node_attribute_int("axis")
            if len(shape) != 4 or axis not in (1, -3) or any(t.shape != shape for t in inputs):
                raise NotImplementedError(f"Concat {self.node.name}: only a channel concat of equal 4-D tensors")
            n, c = len(inputs), shape[1]
            b, j, ch, y, x = (AffineDimExpr(i) for i in range(5))
            read = AffineMap(5, 0, (b, ch, y, x))
            write = AffineMap(5, 0, (b, j * c + ch, y, x))
            return ComputationNode(type="Concat", name=self.node.name, inputs=inputs, outputs=outputs,
                                   operand_mapping=(*([read] * n), write), window_extents=((1, n),))

    register_onnx_parser("Concat", ConcatParser)


def _skip_zigzag() -> None:
    from stream.stages.estimation import zigzag_cost_estimator

    def ideal_cycles_only(self, node, core):
        raise RuntimeError("ZigZag mapping search skipped (stream_crosscheck: DRAM traffic only)")

    zigzag_cost_estimator.ZigZagCostEstimator.run_zigzag = ideal_cycles_only
    logging.getLogger(zigzag_cost_estimator.__name__).setLevel(logging.ERROR)  # one fallback warning per layer


def solve(hardware: str, model: str, time_limit_s: float) -> dict:
    """One model as one fusion group: its off-chip rows of ``group_memory_accesses``."""
    from stream.api import SolveOptions, evaluate_mapping

    options = SolveOptions(artifacts=False, time_limit_s=time_limit_s, stage_options={"fusion_cut_points": []})
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        estimate = evaluate_mapping(hardware, model, tmp, options=options)
    accesses = estimate.context.get("group_memory_accesses")
    groups = []
    for i in sorted(accesses):
        if accesses[i] is None:
            raise RuntimeError(f"group {i}: Stream could not estimate its memory accesses")
        groups.append({"index": i, "offchip": [c for c in accesses[i]["cores"] if c["is_offchip"]]})
    return {"groups": groups, "cycles": estimate.cycles, "seconds": time.perf_counter() - start}


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        import stream  # noqa: F401
        from stream.api import evaluate_mapping  # noqa: F401

        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    with open(argv[1]) as fh:
        job = json.load(fh)
    _register_concat()
    if not job.get("zigzag", False):
        _skip_zigzag()
    results = []
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result
        for k, model in enumerate(job["models"]):
            try:
                results.append(solve(job["hardware"], model, float(job.get("time_limit_s", 60))))
            except Exception as exc:  # noqa: BLE001 -- reported to the caller as this group's result
                results.append({"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                                "traceback": traceback.format_exc()})
                break
            print(f"stream_driver: {k + 1}/{len(job['models'])} groups", file=sys.stderr, flush=True)
    json.dump({"results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
