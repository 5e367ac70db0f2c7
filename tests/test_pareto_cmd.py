"""``hwnas pareto --out FILE`` writes the format FILE's suffix names, or refuses before reading anything;
``hwnas --version`` (no Ray, no torch)."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from hwnas import cli
from results.schema import PARETO_FILE, TRIALS_FILE, front_of, make_row, rows_to_table
from results.storage import Storage


def experiment(tmp_path, name: str) -> str:
    """An experiment folder with three completed trials, two of them on the front."""
    storage = Storage.from_uri(tmp_path).check().child(name)
    rows = []
    for i, (acc, t, e) in enumerate([(0.9, 10.0, 5.0), (0.8, 5.0, 2.0), (0.7, 12.0, 6.0)]):
        config = dict(seed=0, lambda_time=float(i), lambda_energy=0.0, profile="mobile-npu")
        record = dict(accuracy=acc, dram_time_us=t, dram_energy_uj=e, genotype={"cells": []})
        rows.append(make_row(name, f"t{i}", config, record, status="completed"))
    table = rows_to_table(rows)
    storage.write_table(TRIALS_FILE, table)
    storage.write_table(PARETO_FILE, front_of(table))
    return str(tmp_path / name)


@pytest.mark.parametrize("suffix, check", [
    (".parquet", lambda p: pq.read_table(p).num_rows == 2),
    (".csv", lambda p: p.read_text().splitlines()[0].startswith("experiment,") and len(p.read_text().splitlines()) == 3),
    (".json", lambda p: len(json.loads(p.read_text())) == 2),
    (".txt", lambda p: p.read_text().splitlines()[1].split()[0] == "trial_id"),  # under the title line
])
def test_out_writes_the_format_its_suffix_names(tmp_path, capsys, suffix, check):
    uri = experiment(tmp_path, "a")
    out = tmp_path / f"front{suffix}"
    assert cli.main(["pareto", uri, "--format", "table", "--out", str(out)]) == 0
    assert check(out)
    assert "wrote" in capsys.readouterr().err


def test_compare_out_parquet_is_parquet(tmp_path, capsys):
    a, b = experiment(tmp_path, "a"), experiment(tmp_path, "b")
    out = tmp_path / "cmp.parquet"
    assert cli.main(["pareto", a, "--compare", b, "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.column("experiment").to_pylist() == ["a", "b"] and "hypervolume" in table.column_names
    capsys.readouterr()


@pytest.mark.parametrize("name", ["front.md", "front", "front.xlsx"])
def test_unknown_out_suffix_is_refused_before_reading(tmp_path, capsys, name):
    # the experiment does not even exist: the suffix error comes first, and nothing is written
    assert cli.main(["pareto", str(tmp_path / "missing"), "--out", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and ".parquet" in err and not (tmp_path / name).exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("hwnas ")


# ---------------------------------------------------------------------------------------------- --recost
def _genotype(ops_normal: tuple[str, str], ops_reduce: tuple[str, str], layers: int = 3):
    """Every node fed by cell inputs 0 and 1 with the given operators (normal cells / reduction cells)."""
    from searchspace.genotype import CellGenotype, Genotype
    from searchspace.layout import reduction_cells

    cells = []
    for i in range(layers):
        red = i in reduction_cells(layers)
        a, b = ops_reduce if red else ops_normal
        cells.append(CellGenotype(red, tuple(e for n in range(2, 6) for e in ((a, 0, n), (b, 1, n)))))
    return Genotype(tuple(cells))


RECOST_CONFIG = dict(dataset="fashion", layers=3, channels=4, deploy_layers=8, deploy_channels=16,
                     profile="mobile-npu")


def recost_experiment(tmp_path, name: str = "real") -> tuple[str, list[dict]]:
    """A real experiment folder: three trials whose records are what a trial reports (``SearchResult.to_record``,
    costed by the trial's own ``derived_network_cost``), through Tune's flattened final report, written as
    ``hwnas search`` writes them. Accuracy rises with energy, so all three are on the front."""
    from types import SimpleNamespace

    from cost_models import derived_network_cost
    from orchestrator.trainable import record_metrics
    from results.trial_rows import result_rows, write_results
    from searchspace.config import SearchConfig
    from trainables.result import SearchResult

    genotypes = [_genotype(("max_pool_3x3", "skip_connect"), ("max_pool_3x3", "max_pool_3x3")),
                 _genotype(("sep_conv_3x3", "skip_connect"), ("avg_pool_3x3", "max_pool_3x3")),
                 _genotype(("sep_conv_5x5", "dil_conv_5x5"), ("sep_conv_5x5", "sep_conv_3x3"))]
    results = []
    for i, g in enumerate(genotypes):
        config = SearchConfig.from_dict({**RECOST_CONFIG, "lambda_time": float(2 - i), "eval_seeds": 2})
        cost = derived_network_cost(g, config)
        results.append((config, g, cost))
    results.sort(key=lambda r: r[2].dram_energy_uj)
    tune_results = []
    for i, (config, g, cost) in enumerate(results):
        acc = 0.6 + 0.1 * i
        res = SearchResult(config=config, genotype=g, groups={}, stage1_choice=[], stage2_candidates=[],
                           stage1_epochs=1, stage2_epochs=1, supernet_accuracy=0.5, accuracy=acc, params=100,
                           flops=1000, skip_counts=g.skip_counts(), dram_time_us=cost.dram_time_us,
                           dram_energy_uj=cost.dram_energy_uj, dram_bytes=cost.dram_bytes, seconds=1.0,
                           accuracy_std=0.01 * (i + 1), eval_accuracies=(acc - 0.01, acc + 0.01))
        metrics = {"trial_id": f"t{i}", **record_metrics(res.to_record())}
        tune_results.append(SimpleNamespace(metrics=metrics, config=config.to_dict(), error=None))
    rows = result_rows(name, tune_results)
    write_results(Storage.from_uri(tmp_path).check(), name, rows)
    return str(tmp_path / name), rows


def test_recost_on_the_trials_own_profile_gives_back_their_dram_columns(tmp_path):
    """Golden: re-costing reads each point's genotype and config back from pareto.parquet and costs it as
    the trial did, so on the trial's own profile it reproduces the dram_* columns exactly."""
    from results.recost import recost
    from results.tables import load_front

    uri, rows = recost_experiment(tmp_path)
    _, front = load_front(uri)
    assert front.num_rows == 3
    table = recost(front, ["mobile-npu"])
    want = {r["trial_id"]: (r["dram_time_us"], r["dram_energy_uj"], r["dram_bytes"]) for r in rows}
    got = {r["trial_id"]: (r["dram_time_us"], r["dram_energy_uj"], r["dram_bytes"]) for r in table.to_pylist()}
    assert got == want
    assert [r["rank"] for r in table.to_pylist()] == [1, 2, 3] and table.column("trial_id").to_pylist() == ["t0", "t1", "t2"]
    assert set(table.column("deploy_layers").to_pylist()) == {8} and set(table.column("cost_batch").to_pylist()) == {1}
    # a deployed-network override re-costs another network: dearer, and said so in every row
    big = recost(front, ["mobile-npu"], {"deploy_layers": 20, "deploy_channels": 36})
    assert all(b > a for b, a in zip(big.column("dram_energy_uj").to_pylist(), table.column("dram_energy_uj").to_pylist()))
    assert set(big.column("deploy_layers").to_pylist()) == {20}


def test_recost_cli_tables_formats_and_errors(tmp_path, capsys):
    from cost_models.profile import known_profile_names

    uri, _ = recost_experiment(tmp_path)
    assert cli.main(["pareto", uri, "--recost", "mobile-npu,eyeriss"]) == 0
    out = capsys.readouterr().out
    assert "profile mobile-npu: DRAM costs of the 8-cell x 16-ch network, 32x32 input, batch 1, on mobile-npu" in out
    assert "profile eyeriss: DRAM costs of the 8-cell x 16-ch network, 32x32 input, batch 1, on eyeriss" in out
    assert "0.6000 ± 0.0100" in out and "Spearman" in out and "spearman_energy" in out
    pair = [line.split() for line in out.splitlines() if line.split()[:2] == ["mobile-npu", "eyeriss"]]
    assert len(pair) == 1 and -1 <= float(pair[0][2]) <= 1 and pair[0][3] == "3"
    # all: every built-in profile; json holds points and every pair; --out .parquet the points
    out_file = tmp_path / "recost.parquet"
    assert cli.main(["pareto", uri, "--recost", "all", "--format", "json", "--out", str(out_file),
                     "--set", "cost_batch=4"]) == 0
    data = json.loads(capsys.readouterr().out)
    n = len(known_profile_names())
    assert data["profiles"] == known_profile_names() and len(data["points"]) == 3 * n
    assert len(data["spearman"]) == n * (n - 1) // 2 and {p["cost_batch"] for p in data["points"]} == {4}
    assert pq.read_table(out_file).num_rows == 3 * n
    assert cli.main(["pareto", uri, "--recost", "eyeriss", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith("profile,trial_id,") and len(captured.out.splitlines()) == 4
    assert "needs two or more profiles" in captured.err
    # bad input: one line, exit 2, naming what is known
    assert cli.main(["pareto", uri, "--recost", "mobile-npu,tpu9"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tpu9" in err and "known profiles" in err and "eyeriss" in err
    assert cli.main(["pareto", uri, "--recost", "eyeriss", "--set", "lambda_time=1"]) == 2
    assert "deploy_layers" in capsys.readouterr().err
    assert cli.main(["pareto", uri, "--set", "cost_batch=4"]) == 2
    assert "--recost" in capsys.readouterr().err


def test_recost_refuses_points_without_a_whole_config(tmp_path, capsys):
    uri = experiment(tmp_path, "old")  # rows holding only the scan point, an empty genotype
    assert cli.main(["pareto", uri, "--recost", "eyeriss"]) == 2
    assert "nothing to re-cost" in capsys.readouterr().err


def test_spearman_on_a_hand_made_case():
    from results.recost import average_ranks, rank_correlations, spearman

    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ties share their mean rank: y ranks 1, 2, 3.5, 5, 3.5 -> 8 / sqrt(10 * 9.5)
    assert average_ranks([5, 6, 7, 8, 7]) == [1, 2, 3.5, 5, 3.5]
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / (95 ** 0.5))
    assert spearman([1.0], [2.0]) is None and spearman([1, 2], [4, 4]) is None
    import pyarrow as pa

    table = pa.Table.from_pylist([{"profile": p, "trial_id": t, "dram_energy_uj": e}
                                  for p, es in (("a", (1, 2, 3)), ("b", (3, 1, 2))) for t, e in zip("xyz", es)])
    assert rank_correlations(table) == [{"profile_a": "a", "profile_b": "b", "spearman_energy": pytest.approx(-0.5),
                                         "points": 3}]


def test_front_table_and_plot_name_the_deployed_network_and_the_error_bar(tmp_path, capsys):
    from results.plot import axis_labels

    uri, rows = recost_experiment(tmp_path)
    assert cli.main(["pareto", uri, "--plot", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("DRAM costs of the 8-cell x 16-ch network, 32x32 input, batch 1, on mobile-npu")
    assert "0.8000 ± 0.0300" in out[2] and (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert axis_labels(rows)[1] == "DRAM energy (uJ) of the 8-cell x 16-ch network, 32x32 input, batch 1, on mobile-npu"
    assert cli.main(["pareto", uri, "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert "accuracy" in header and "accuracy_std" in header
