"""Cross-check: the analytic DRAM model (cost_models) against ZigZag (KU Leuven's public accelerator cost
model, ``pip install zigzag-dse six``) on the same layers, with ZigZag's bundled accelerator definitions.

  .venv/bin/python benchmarks/cost_crosscheck.py [--lpf-limit 6]

Layers are the primitive convolutions the search's operators are made of (pointwise and depthwise convs of
sep_conv, the dilated depthwise of dil_conv, the stem, a strided 1x1, a weight-heavy dense 3x3 and the
classifier's linear layer), each run alone at batch 1 with its input in DRAM and its output back to DRAM.
Pairs compared: ZigZag ``eyeriss_like`` vs our ``eyeriss`` profile (16-bit), ZigZag ``tpu_like`` vs our
``mobile-npu`` profile (int8 weights/activations). For each layer the table prints DRAM bytes read and
written by each model, their ratio, ZigZag's DRAM energy, ours with our profile's pJ/B, and ours with
ZigZag's DRAM pJ/B (so traffic differences and energy-table differences can be told apart).

Prints, installs nothing. Not a test.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cost_models.traffic import primitive_cost  # noqa: E402
from searchspace.ops import Primitive  # noqa: E402

# (label, primitive, H, W): the primitive's input is H x W
LAYERS = [
    ("sep pw 1x1 64->64 @32", Primitive("conv", 64, 64), 32, 32),
    ("sep dw 3x3 64 @32", Primitive("conv", 64, 64, kernel=3, groups=64), 32, 32),
    ("dil dw 5x5 d2 64 @16", Primitive("conv", 64, 64, kernel=5, dilation=2, groups=64), 16, 16),
    ("stem 3x3 3->48 @32", Primitive("conv", 3, 48, kernel=3), 32, 32),
    ("reduce 1x1/2 128->128 @16", Primitive("conv", 128, 128, stride=2), 16, 16),
    ("dense 3x3 256->256 @16", Primitive("conv", 256, 256, kernel=3), 16, 16),
    ("linear 256->10", Primitive("linear", 256, 10), 1, 1),
]

# ZigZag accelerator (bundled yaml) -> (our profile, operand precision in bits, spatial mapping to use)
PAIRS = {
    "eyeriss_like": ("eyeriss", {"W": 16, "I": 16, "O": 16, "O_final": 16}, None),
    "tpu_like": ("mobile-npu", {"W": 8, "I": 8, "O": 16, "O_final": 8}, "tpu_like.yaml"),
}


def _workload(precision: dict) -> list[dict]:
    layers = []
    for i, (label, p, h, w) in enumerate(LAYERS):
        oh, ow = -(-h // p.stride), -(-w // p.stride)
        pad = p.padding
        if p.kind == "linear":
            dims, sizes, eq = ["B", "K", "C"], [1, p.c_out, p.c_in], "O[b][k]+=W[k][c]*I[b][c]"
            rel = []
        elif p.groups > 1:  # depthwise: ZigZag's own grouped-conv form (K = C = 1 per group)
            eq = "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]"
            dims, sizes = ["B", "G", "K", "C", "OY", "OX", "FY", "FX"], [1, p.groups, 1, 1, oh, ow, p.kernel, p.kernel]
            rel = [f"ix={p.stride}*ox+{p.dilation}*fx", f"iy={p.stride}*oy+{p.dilation}*fy"]
        else:
            eq = "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]"
            dims, sizes = ["B", "K", "C", "OY", "OX", "FY", "FX"], [1, p.c_out, p.c_in, oh, ow, p.kernel, p.kernel]
            rel = [f"ix={p.stride}*ox+{p.dilation}*fx", f"iy={p.stride}*oy+{p.dilation}*fy"]
        layer = {"id": i, "name": label.replace(" ", "_"), "operator_type": "Conv", "equation": eq,
                 "loop_dims": dims, "loop_sizes": sizes, "operand_precision": dict(precision),
                 "operand_source": {"I": i, "W": i}}
        if rel:
            layer["dimension_relations"] = rel
            layer["pr_loop_dims"] = ["IX", "IY"]
            layer["pr_loop_sizes"] = [w, h]  # the unpadded input (padding is not fetched from DRAM)
            layer["padding"] = [[pad, pad], [pad, pad]]
        layers.append(layer)
    return layers


def _dram_spec(hw_path: str) -> tuple[int, float, float]:
    """(DRAM word bits, read pJ/word, write pJ/word) from a ZigZag hardware yaml."""
    with open(hw_path) as fh:
        mems = yaml.safe_load(fh)["memories"]
    dram = mems["dram"]
    return int(dram["ports"][0]["bandwidth_max"]), float(dram["r_cost"]), float(dram["w_cost"])


def _zigzag(accel: str, precision: dict, mapping: str | None, tmp: str, lpf_limit: int) -> list[dict]:
    import zigzag
    from zigzag.api import get_hardware_performance_zigzag

    root = os.path.dirname(zigzag.__file__)
    hw = os.path.join(root, "inputs", "hardware", f"{accel}.yaml")
    if mapping:
        map_path = os.path.join(root, "inputs", "mapping", mapping)
    else:  # eyeriss_like ships no mapping: unroll K x C over its 14 x 12 array
        map_path = os.path.join(tmp, f"{accel}_map.yaml")
        with open(map_path, "w") as fh:
            yaml.safe_dump([{"name": "default", "spatial_mapping": {"D1": ["K, 14"], "D2": ["C, 12"]},
                             "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}], fh)
    wl_path = os.path.join(tmp, f"{accel}_workload.yaml")
    with open(wl_path, "w") as fh:
        yaml.safe_dump(_workload(precision), fh, sort_keys=False)
    word_bits, r_pj, w_pj = _dram_spec(hw)
    res = get_hardware_performance_zigzag(wl_path, hw, map_path, opt="energy", dump_folder=os.path.join(tmp, accel),
                                          lpf_limit=lpf_limit, loma_show_progress_bar=False)
    rows = []
    for cme, _extra in res[2][0][1]:
        read = write = 0
        energy = 0.0
        for operand, levels in cme.memory_word_access.items():
            top = levels[-1].data  # the DRAM level
            read += (top["rd_out_to_low"] + top["rd_out_to_high"]) * word_bits // 8
            write += (top["wr_in_by_low"] + top["wr_in_by_high"]) * word_bits // 8
            energy += cme.mem_energy_breakdown[operand][-1]
        rows.append({"read": read, "write": write, "energy_uj": energy * 1e-6,
                     "r_pj_b": r_pj * 8 / word_bits, "w_pj_b": w_pj * 8 / word_bits})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lpf-limit", type=int, default=6, help="ZigZag LOMA temporal-mapping search depth")
    args = parser.parse_args()
    try:
        import zigzag  # noqa: F401
    except ImportError:
        print("zigzag is not importable: pip install zigzag-dse six   (zigzag imports six without declaring it)")
        return 1
    logging.disable(logging.INFO)  # ZigZag logs every mapping at INFO

    head = (f"{'layer':27s} {'zigzag accel':13s} {'our profile':11s} {'zz read B':>10s} {'zz write B':>10s} "
            f"{'our read B':>10s} {'our write B':>11s} {'ours/zz':>7s} {'zz uJ':>8s} {'our uJ':>8s} {'our@zz pJ':>9s}")
    print(head)
    print("-" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for accel, (profile, precision, mapping) in PAIRS.items():
            zz_rows = _zigzag(accel, precision, mapping, tmp, args.lpf_limit)
            for (label, prim, h, w), zz in zip(LAYERS, zz_rows):
                ours = primitive_cost(profile, prim, h, w)
                ours_at_zz = (ours.dram_read_bytes * zz["r_pj_b"] + ours.dram_write_bytes * zz["w_pj_b"]) * 1e-6
                ratio = ours.dram_bytes / max(1, zz["read"] + zz["write"])
                print(f"{label:27s} {accel:13s} {profile:11s} {zz['read']:10d} {zz['write']:10d} "
                      f"{ours.dram_read_bytes:10d} {ours.dram_write_bytes:11d} {ratio:7.2f} {zz['energy_uj']:8.2f} "
                      f"{ours.dram_energy_uj:8.2f} {ours_at_zz:9.2f}")
    print("\nzz = ZigZag (its DRAM level of memory_word_access x port width; energy = its DRAM energy breakdown).")
    print("our@zz pJ = our bytes priced with ZigZag's DRAM pJ/byte (r_cost, w_cost per 64-bit word / 8).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
