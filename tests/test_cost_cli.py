"""``hwnas cost``: through hwnas.cli.main (in process) and once through the installed console script."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cost_models import op_cost
from hwnas.cli import main

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


# ------------------------------------------------------------------ network mode (--genotype)
def _genotype(layers: int = 3) -> dict:
    from searchspace.layout import reduction_cells

    edges = [["sep_conv_3x3", 0, 2], ["skip_connect", 1, 2], ["max_pool_3x3", 0, 3], ["dil_conv_3x3", 2, 3],
             ["skip_connect", 2, 4], ["avg_pool_3x3", 3, 4], ["sep_conv_5x5", 1, 5], ["skip_connect", 4, 5]]
    return {"cells": [{"reduction": i in reduction_cells(layers), "edges": edges} for i in range(layers)]}


def _write(tmp_path, name: str, obj) -> str:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


NET_KEYS = {"profile", "profile_source", "batch", "layers", "channels", "dram_read_bytes", "dram_write_bytes",
            "dram_bytes", "compulsory_bytes", "dram_latencies", "dram_time_us", "dram_energy_uj"}


def test_genotype_file_defaults_to_the_search_config(capsys, tmp_path):
    from cost_models import derived_network_cost
    from searchspace.config import SearchConfig
    from searchspace.genotype import Genotype

    rc, d, _ = _run(capsys, "--genotype", _write(tmp_path, "g.json", _genotype()))
    assert rc == 0 and NET_KEYS <= set(d) and "rows" not in d
    want = derived_network_cost(Genotype.from_dict(_genotype()), SearchConfig(layers=3))
    assert (d["profile"], d["layers"], d["channels"]) == (SearchConfig().profile, 3, SearchConfig().channels)
    assert d["dram_bytes"] == want.dram_bytes and d["dram_time_us"] == pytest.approx(want.dram_time_us)


def test_trial_result_recosted_on_another_profile_and_size(capsys, tmp_path):
    from cost_models import derived_network_cost
    from searchspace.config import SearchConfig
    from searchspace.genotype import Genotype

    config = SearchConfig(layers=5, channels=4, profile="eyeriss")
    result = {"genotype": _genotype(5), "config": config.to_dict(), "accuracy": 0.8}
    path = _write(tmp_path, "trial.json", result)
    genotype = Genotype.from_dict(_genotype(5))
    rc, d, _ = _run(capsys, "--genotype", path)
    assert rc == 0 and d["profile"] == "eyeriss" and d["dram_bytes"] == derived_network_cost(genotype, config).dram_bytes
    rc, d, _ = _run(capsys, "--genotype", path, "--profile", "h100", "--set", "channels=8", "cost_batch=2", "eval_layers=8")
    want = derived_network_cost(genotype, config.replace(profile="h100", channels=8, cost_batch=2, eval_layers=8))
    assert rc == 0 and (d["profile"], d["batch"], d["layers"], d["channels"]) == ("h100", 2, 8, 8)
    assert d["dram_bytes"] == want.dram_bytes and d["dram_energy_uj"] == pytest.approx(want.dram_energy_uj)
    # a trials.parquet row holds genotype and config as JSON strings
    row = _write(tmp_path, "row.json", {"genotype": json.dumps(_genotype(5)), "config": config.to_json()})
    rc, d, _ = _run(capsys, "--genotype", row)
    assert rc == 0 and d["dram_bytes"] == derived_network_cost(genotype, config).dram_bytes


def test_front_point_recosted_at_a_deployed_size(capsys, tmp_path):
    """"What would this cell cost on X, at the size I ship?": a 3-cell fashion trial at DARTS's 20 x 36."""
    from cost_models import derived_network_cost, search_cost_table
    from searchspace.config import SearchConfig, preset
    from searchspace.genotype import Genotype

    config = SearchConfig.from_dict({**preset("fashion"), "deploy_layers": 0, "deploy_channels": 0})  # the proxy
    path = _write(tmp_path, "trial.json", {"genotype": _genotype(3), "config": config.to_dict()})
    genotype = Genotype.from_dict(_genotype(3))
    rc, proxy, _ = _run(capsys, "--genotype", path, "--profile", "eyeriss")
    assert rc == 0 and (proxy["layers"], proxy["channels"], proxy["image_size"]) == (3, 6, 32)
    rc, d, _ = _run(capsys, "--genotype", path, "--profile", "eyeriss", "--rows", "--set", "deploy_channels=36",
                    "deploy_layers=20", "deploy_image_size=64")
    deployed = config.replace(profile="eyeriss", deploy_layers=20, deploy_channels=36, deploy_image_size=64)
    want = derived_network_cost(genotype, deployed)
    assert rc == 0 and (d["layers"], d["channels"], d["image_size"]) == (20, 36, 64)
    assert d["dram_bytes"] == want.dram_bytes > 10 * proxy["dram_bytes"]
    assert len({r["cell"] for r in d["rows"] if r["cell"] >= 0}) == 20
    assert d["rows"][0]["role"] == "stem" and d["rows"][0]["h"] == 64
    # the same number the search's loss table gives for this genotype
    assert search_cost_table(deployed).genotype_cost(genotype, config.nodes)[2] == d["dram_bytes"]
    rc, _, err = _run(capsys, "--genotype", path, "--set", "deploy_layers=1")
    assert rc == 2 and "deploy_layers=1" in err and err.count("\n") == 1


def test_rows_one_per_kernel_group_summing_to_the_total(capsys, tmp_path):
    rc, d, _ = _run(capsys, "--genotype", _write(tmp_path, "g.json", _genotype()), "--profile", "h100-eager", "--rows")
    assert rc == 0
    rows = d["rows"]
    assert all({"cell", "role", "dram_bytes", "dram_time_us", "dram_energy_uj"} <= set(r) for r in rows)
    assert {r["role"] for r in rows} == {"stem", "preprocess0", "preprocess1", "edge", "node_sum", "cell_concat",
                                         "classifier"}
    assert sum(r["dram_bytes"] for r in rows) == d["dram_bytes"]
    assert sum(r["dram_time_us"] for r in rows) == pytest.approx(d["dram_time_us"])
    assert all(r["dram_bytes"] > 0 for r in rows if r["role"] in ("node_sum", "cell_concat"))  # eager add / cat


def test_rows_show_bytes_kept_on_chip_and_spilled(capsys, tmp_path):
    """Issue 22: per kernel, the bytes that stayed on chip and the bytes spilled (mobile-npu, batch 8 at
    20 x 36: the cell tensors no longer all fit in its 1 MiB scratchpad)."""
    rc, d, _ = _run(capsys, "--genotype", _write(tmp_path, "g.json", _genotype()), "--profile", "mobile-npu",
                    "--rows", "--set", "deploy_layers=20", "deploy_channels=36", "cost_batch=8")
    assert rc == 0 and all({"onchip_bytes", "spilled_bytes"} <= set(r) for r in d["rows"])
    assert sum(r["onchip_bytes"] for r in d["rows"]) > 0 and sum(r["spilled_bytes"] for r in d["rows"]) > 0


@pytest.mark.parametrize("content, argv, word", [
    (None, [], "no such file"),
    ("{not json", [], "not JSON"),
    ({"layers": 3}, [], "not a genotype"),
    ({"cells": [{"reduction": False}]}, [], "not a genotype"),
    (_genotype(), ["--profile", "tpu-v9"], "known profiles"),
    (_genotype(), ["--set", "colour=3"], "unknown config key"),
    (_genotype(), ["--set", "layers"], "key=value"),
    (_genotype(), ["--op", "sep_conv_3x3"], "operator mode"),
    (json.dumps(_genotype()).replace("dil_conv_3x3", "conv_9x9"), [], "unknown operator"),
])
def test_genotype_errors_exit_2_with_one_line(capsys, tmp_path, content, argv, word):
    path = str(tmp_path / "missing.json") if content is None else _write(tmp_path, "g.json", content)
    rc, _, err = _run(capsys, "--genotype", path, *argv)
    assert rc == 2 and word.lower() in err.lower() and "Traceback" not in err and err.count("\n") == 1


def test_set_and_rows_need_a_genotype(capsys):
    rc, _, err = _run(capsys, "--profile", "h100", "--op", "sep_conv_3x3", "--shape", "8,8,8", "--rows")
    assert rc == 2 and "--genotype" in err


def test_network_mode_imports_no_torch(tmp_path):
    path = _write(tmp_path, "g.json", _genotype())
    code = ("import sys; from hwnas.cli import main; rc = main(['cost', '--genotype', %r, '--rows']); "
            "assert rc == 0 and 'torch' not in sys.modules and 'ray' not in sys.modules" % path)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
