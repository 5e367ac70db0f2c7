"""``hwnas pareto --out FILE`` writes the format FILE's suffix names, or refuses before reading anything;
``hwnas --version`` (no Ray, no torch)."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from orchestrator import cli
from orchestrator.results import PARETO_FILE, TRIALS_FILE, front_of, make_row, rows_to_table
from orchestrator.storage import Storage


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
    (".txt", lambda p: p.read_text().split()[0] == "trial_id"),
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
