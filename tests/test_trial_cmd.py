"""`hwnas trial` end to end (no Ray) and the data loaders' errors."""
import json

import pytest

from orchestrator import cli
from searchspace.config import SearchConfig
from trainables.data import load_datasets, load_fashion


def test_trial_writes_the_record(tmp_path):
    out = tmp_path / "r.json"
    rc = cli.main(["trial", "--preset", "smoke", "--set", "dataset=synthetic", "--set", "train_size=64",
                   "--set", "val_size=32", "--set", "test_size=32", "--set", "max_epochs=1", "--set", "layers=3",
                   "--set", "profile=eyeriss", "--set", "lambda_energy=0.5", "--out", str(out)])
    assert rc == 0
    rec = json.loads(out.read_text())
    for key in ("genotype", "groups", "stage1_choice", "stage2_candidates", "stage1_epochs", "stage2_epochs",
                "supernet_accuracy", "accuracy", "params", "flops", "skip_count", "seconds"):
        assert key in rec, key
    assert rec["profile"] == "eyeriss" and rec["lambda_energy"] == 0.5
    assert len(rec["genotype"]["cells"]) == 3 and len(rec["stage1_choice"][0]) == 14
    assert rec["dram_time_us"] > 0 and rec["dram_energy_uj"] > 0 and rec["dram_bytes"] > 0


def test_trial_bad_key_is_one_clear_error(capsys):
    assert cli.main(["trial", "--preset", "smoke", "--set", "lamda_time=1"]) == 2
    assert "unknown config key 'lamda_time'" in capsys.readouterr().err


def test_trial_unknown_profile_fails_before_training(capsys):
    assert cli.main(["trial", "--preset", "smoke", "--set", "dataset=synthetic", "--set", "profile=tpu-v9"]) == 2
    assert "tpu-v9" in capsys.readouterr().err


def test_fashion_from_the_debian_package():
    (trx, try_), (tex, tey) = load_fashion()
    assert trx.shape == (60000, 28, 28) and tex.shape == (10000, 28, 28)
    assert sorted(set(try_[:1000].tolist())) == list(range(10))
    d = load_datasets(SearchConfig(train_size=100, val_size=50, test_size=60))
    assert d.train.x.shape == (100, 1, 32, 32) and len(d.val) == 50 and len(d.test) == 60
    assert abs(float(d.train.x.mean())) < 1e-4  # normalised with train statistics


def test_missing_fashion_names_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_datasets(SearchConfig(data_dir=str(tmp_path)))


def test_cifar10_needs_a_folder(tmp_path):
    with pytest.raises(ValueError, match="data_dir"):
        load_datasets(SearchConfig(dataset="cifar10"))
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found"):
        load_datasets(SearchConfig(dataset="cifar10", data_dir=str(tmp_path)))
