"""``hwnas cost``: through orchestrator.cli.main (in process) and once through the installed console script."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cost_models import op_cost
from orchestrator.cli import main

KEYS = {"dram_read_bytes", "dram_write_bytes", "compulsory_bytes", "dram_time_us", "dram_energy_uj"}


def _run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    rc = main(["cost", *argv])
    out = capsys.readouterr()
    return rc, (json.loads(out.out) if rc == 0 else None), out.err


def test_one_operator_prints_one_json_object(capsys):
    rc, d, _ = _run(capsys, "--profile", "mobile-npu", "--op", "sep_conv_3x3", "--shape", "16,32,32")
    assert rc == 0 and KEYS <= set(d)
    assert d["dram_bytes"] == op_cost("mobile-npu", "sep_conv_3x3", 16, 32, 32).dram_bytes == 33664


def test_stride_batch_c_out_and_profile_file(capsys, tmp_path):
    src = Path(__file__).resolve().parents[1] / "cost_models" / "profiles" / "eyeriss.toml"
    mine = tmp_path / "mine.toml"
    shutil.copy(src, mine)
    rc, d, _ = _run(capsys, "--profile", str(mine), "--op", "factorized_reduce", "--shape", "16,16,16",
                    "--stride", "2", "--batch", "3", "--c-out", "32")
    assert rc == 0 and (d["stride"], d["batch"], d["c_out"]) == (2, 3, 32)
    assert d["dram_bytes"] == op_cost("eyeriss", "factorized_reduce", 16, 16, 16, 2, 3, 32).dram_bytes


def test_list_profiles(capsys):
    rc = main(["cost", "--list-profiles"])
    profiles = {p["name"]: p for p in json.loads(capsys.readouterr().out)["profiles"]}
    assert rc == 0 and {"mobile-npu", "edge-gpu", "h100", "eyeriss", "h100-eager"} <= set(profiles)
    assert profiles["h100"]["onchip_buffer_bytes"] == 50 * 2**20 and profiles["h100-eager"]["fused"] is False


@pytest.mark.parametrize("argv, word", [
    (["--profile", "tpu-v9", "--op", "sep_conv_3x3", "--shape", "8,8,8"], "known profiles"),
    (["--profile", "h100", "--op", "conv_9x9", "--shape", "8,8,8"], "unknown operator"),
    (["--profile", "h100", "--op", "sep_conv_3x3", "--shape", "8,8"], "C,H,W"),
    (["--profile", "h100", "--op", "sep_conv_3x3", "--shape", "8,0,8"], "positive integer"),
    (["--profile", "h100", "--op", "sep_conv_3x3", "--shape", "8,8,8", "--stride", "4"], "stride"),
    (["--profile", "h100", "--op", "sep_conv_3x3"], "missing --shape"),
])
def test_errors_exit_2_with_a_clear_line(capsys, argv, word):
    rc, _, err = _run(capsys, *argv)
    assert rc == 2 and word in err and "Traceback" not in err


def test_installed_console_script():
    exe = Path(sys.executable).with_name("hwnas")
    if not exe.exists():
        pytest.skip("hwnas console script not installed in this environment")
    out = subprocess.run([str(exe), "cost", "--profile", "h100-eager", "--op", "dil_conv_3x3", "--shape", "8,16,16",
                          "--stride", "2"], check=True, capture_output=True, text=True).stdout
    d = json.loads(out)
    assert KEYS <= set(d) and d["dram_bytes"] == op_cost("h100-eager", "dil_conv_3x3", 8, 16, 16, 2).dram_bytes
