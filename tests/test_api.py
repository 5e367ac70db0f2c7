"""The Python API (``import hwnas``) without Ray: what it exports, its typed errors and their exit codes, an
experiment read back, picking, costing and re-costing, and a search refused before Ray starts. Seconds."""
from __future__ import annotations


import pyarrow.parquet as pq
import pytest

import hwnas
from results.schema import PARETO_FILE, TRIALS_FILE, front_of, make_row, rows_to_table

EDGES = [["sep_conv_3x3", 0, 2], ["skip_connect", 1, 2], ["max_pool_3x3", 0, 3], ["dil_conv_3x3", 1, 3],
         ["avg_pool_3x3", 0, 4], ["sep_conv_3x3", 2, 4], ["skip_connect", 1, 5], ["dil_conv_3x3", 3, 5]]
GENOTYPE = {"cells": [{"reduction": r, "edges": EDGES} for r in (False, True, True)]}
CHEAP = {"cells": [{"reduction": r, "edges": [["skip_connect", a, b] if op.startswith("sep") else [op, a, b]
                                              for op, a, b in EDGES]} for r in (False, True, True)]}
CONFIG = {"dataset": "synthetic", "layers": 3, "channels": 4, "profile": "edge-gpu", "seed": 0, "lambda_time": 0.0,
          "lambda_energy": 0.0}


@pytest.fixture
def experiment(tmp_path):
    """An experiment folder with two completed trials, as a search writes it: (path, rows)."""
    rows = [make_row("exp", "t_acc", CONFIG, {"accuracy": 0.9, "dram_time_us": 9.0, "dram_energy_uj": 2.0,
                                              "genotype": GENOTYPE}),
            make_row("exp", "t_cheap", CONFIG, {"accuracy": 0.5, "dram_time_us": 3.0, "dram_energy_uj": 1.0,
                                                "genotype": CHEAP})]
    folder = tmp_path / "exp"
    folder.mkdir()
    table = rows_to_table(rows)
    pq.write_table(table, folder / TRIALS_FILE)
    pq.write_table(front_of(table), folder / PARETO_FILE)
    return folder


def test_exports_and_exit_codes():
    for name in hwnas.__all__:
        assert hasattr(hwnas, name), name
    assert hwnas.__version__
    assert issubclass(hwnas.ConfigError, hwnas.InputError) and issubclass(hwnas.InputError, ValueError)
    assert issubclass(hwnas.StorageWriteError, hwnas.SaveError) and issubclass(hwnas.SaveError, OSError)
    assert issubclass(hwnas.NotFoundError, FileNotFoundError) and issubclass(hwnas.NotFoundError, hwnas.InputError)
    import cost_models

    assert issubclass(hwnas.CostQueryError, cost_models.CostQueryError)  # either except works
    assert hwnas.InputError.exit_code == 2 and hwnas.SaveError.exit_code == 3
    assert hwnas.ResultsNotSaved.exit_code == 3 and hwnas.ExperimentInUse.exit_code == 2


def test_load_an_experiment(experiment, tmp_path):
    exp = hwnas.load(experiment)
    assert exp.name == "exp" and exp.path == str(experiment)
    assert exp.trials().num_rows == 2 and exp.front().column("trial_id").to_pylist() == ["t_acc", "t_cheap"]
    df = exp.front().to_pandas()
    assert list(df["trial_id"]) == ["t_acc", "t_cheap"]
    assert exp.summary.all_completed and exp.summary.seconds is None
    assert "experiment exp: 2 trials (2 completed" in exp.summary.describe()
    assert exp.points().num_rows >= 1 and exp.scan() is None and exp.config() is None
    assert exp.plot(tmp_path / "front.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(hwnas.NotFoundError, match="does not exist"):
        hwnas.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError
        hwnas.load(tmp_path / "nope")


def test_pick_cost_recost(experiment):
    exp = hwnas.load(experiment)
    assert hwnas.pick(exp, "most-accurate")["trial_id"] == "t_acc"
    assert hwnas.pick(exp.front(), "cheapest")["trial_id"] == "t_cheap"
    assert hwnas.pick(exp.front().to_pandas(), "budget:dram_time_us=5")["trial_id"] == "t_cheap"
    assert exp.pick("knee")["trial_id"] in ("t_acc", "t_cheap")
    with pytest.raises(hwnas.PickError, match="cheapest has 3"):
        hwnas.pick(exp, "budget:dram_time_us=1")
    with pytest.raises(hwnas.PickError, match="unknown --pick rule"):
        hwnas.pick(exp, "best")

    point = hwnas.pick(exp, "most-accurate")
    cost = hwnas.cost(point)  # the trial's own config: its profile and geometry
    from cost_models import derived_network_cost
    from searchspace.config import SearchConfig
    from searchspace.genotype import Genotype

    want = derived_network_cost(Genotype.from_dict(GENOTYPE), SearchConfig.from_dict(CONFIG))
    assert cost.profile == "edge-gpu" and cost.dram_time_us == pytest.approx(want.dram_time_us)
    assert (cost.layers, cost.channels) == (3, 4)
    bigger = hwnas.cost(point, profile="eyeriss", deploy_layers=8, cost_batch=2)
    assert bigger.profile == "eyeriss" and bigger.batch == 2 and bigger.layers == 8
    assert hwnas.cost(GENOTYPE).layers == 3  # a bare genotype: the search defaults, one cell per genotype cell
    with pytest.raises(hwnas.CostQueryError, match="known profiles|mobile-npu"):
        hwnas.cost(point, profile="tpu9")
    with pytest.raises(hwnas.InputError, match="not a genotype"):
        hwnas.cost({"edges": []})

    table = hwnas.recost(exp, ["edge-gpu", "eyeriss"])
    assert table.num_rows == 4 and set(table.column("profile").to_pylist()) == {"edge-gpu", "eyeriss"}
    own = {r["trial_id"]: r["dram_time_us"] for r in table.to_pylist() if r["profile"] == "edge-gpu"}
    assert own["t_acc"] == pytest.approx(want.dram_time_us)
    assert [p["profile_a"] for p in hwnas.rank_correlations(table)] == ["edge-gpu"]
    assert hwnas.recost([point], "eyeriss").num_rows == 1
    with pytest.raises(hwnas.InputError, match="a re-cost takes only"):
        hwnas.recost(exp, "eyeriss", lambda_time=1)
    assert hwnas.op_cost("sep_conv_3x3", (16, 32, 32), "mobile-npu").dram_bytes > 0
    assert {p.name for p in hwnas.profiles()} >= {"mobile-npu", "eyeriss", "h100"}


def test_search_is_refused_before_ray(tmp_path):
    """Bad input fails in the preflight, typed, before Ray is started (no Ray in this process)."""
    import sys

    with pytest.raises(hwnas.ConfigError, match="bogus"):
        hwnas.search("smoke", storage=str(tmp_path), bogus=1)
    with pytest.raises(hwnas.ConfigError, match="lambda_time"):
        hwnas.search("smoke", storage=str(tmp_path), lambda_time=[-1])
    with pytest.raises(hwnas.InputError, match="resume needs"):
        hwnas.search(storage=str(tmp_path), resume=True)
    with pytest.raises(hwnas.InputError, match="cannot resume|does not exist"):
        hwnas.search(storage=str(tmp_path), name="nothing-here", resume=True)
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "trials.parquet").write_bytes(b"x")
    with pytest.raises(hwnas.ExperimentExists):
        hwnas.search("smoke", storage=str(tmp_path))
    with pytest.raises(hwnas.CostQueryError):
        hwnas.search("smoke", storage=str(tmp_path), name="other", profile="tpu9")
    with pytest.raises(hwnas.ConfigError, match="seeds"):  # a config mapping, as a file holds it
        hwnas.search(config={"preset": "smoke", "seeds": "zero"}, storage=str(tmp_path), name="m")
    ray = sys.modules.get("ray")
    assert ray is None or not ray.is_initialized()


def test_train_refuses_a_choice_within_one_network(experiment, tmp_path):
    with pytest.raises(hwnas.InputError, match="--trial and --pick choose within an experiment"):
        hwnas.train(hwnas.pick(hwnas.load(experiment), "knee"), pick="knee", out=tmp_path / "x")
    with pytest.raises(hwnas.NotFoundError, match="no such file, folder or s3:// URI"):
        hwnas.train(str(tmp_path / "nope"), out=tmp_path / "y")
    with pytest.raises(hwnas.PickError, match="no trial 'zz'"):
        hwnas.train(hwnas.load(experiment), trial="zz", out=tmp_path / "z")
