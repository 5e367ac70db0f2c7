"""`hwnas trial` end to end (no Ray) and the data loaders' errors."""
import json

import pytest

from hwnas import cli
from hwnas.cli.trial import load_search_config
from searchspace.config import SearchConfig, preset
from trainables.data import load_datasets, load_fashion


def test_trial_writes_the_record(tmp_path):
    out = tmp_path / "r.json"
    rc = cli.main(["trial", "--preset", "smoke", "--set", "dataset=synthetic", "train_size=64", "val_size=32",
                   "test_size=32", "--set", "max_epochs=1", "layers=3", "profile=eyeriss", "lambda_energy=0.5",
                   "--out", str(out)])
    assert rc == 0
    rec = json.loads(out.read_text())
    for key in ("genotype", "groups", "stage1_choice", "stage2_candidates", "stage1_epochs", "stage2_epochs",
                "supernet_accuracy", "accuracy", "params", "flops", "skip_count", "seconds"):
        assert key in rec, key
    assert rec["profile"] == "eyeriss" and rec["lambda_energy"] == 0.5
    assert len(rec["genotype"]["cells"]) == 3 and len(rec["stage1_choice"][0]) == 14
    assert rec["dram_time_us"] > 0 and rec["dram_energy_uj"] > 0 and rec["dram_bytes"] > 0


def trial_config(*argv: str) -> SearchConfig:
    """What `hwnas trial ARGV` would run, from the CLI's own parser (no search is run)."""
    args = cli.build_parser().parse_args(["trial", *argv])
    return load_search_config(args.config, args.preset, args.sets)


def test_readme_example_sets_several_keys_per_flag():
    c = trial_config("--preset", "fashion", "--set", "lambda_time=2", "profile=eyeriss", "--checkpoint", "t.pt")
    assert c.lambda_time == 2.0 and c.profile == "eyeriss" and c.dataset == "fashion"
    c = trial_config("--set", "lambda_time=2", "--set", "profile=eyeriss", "seed=3")
    assert (c.lambda_time, c.profile, c.seed) == (2.0, "eyeriss", 3)


def test_config_file_flat_or_search_section(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("preset: smoke\nlayers: 2\nlambda_time: 0.5\n")
    c = trial_config("--config", str(flat), "--set", "layers=4")
    assert c.layers == 4 and c.lambda_time == 0.5 and c.max_epochs == preset("smoke")["max_epochs"]
    nested = tmp_path / "exp.json"
    nested.write_text(json.dumps({"preset": "smoke", "lambda_time": 2, "search.channels": 6,
                                  "search": {"max_epochs": 3, "profile": "eyeriss"}}))
    c = trial_config("--config", str(nested))
    assert (c.lambda_time, c.channels, c.max_epochs, c.profile) == (2.0, 6, 3, "eyeriss")


@pytest.mark.parametrize("text, match", [
    ("name: x\nseeds: [0, 1]\nsearch:\n  layers: 2\n", "experiment keys name, seeds are for `hwnas search`"),
    ("scan: adaptive\n", "experiment keys scan are for"),
    ("layers: 2\nsearch:\n  layers: 3\n", "search key 'layers' given twice"),
    ("search: [1]\n", "'search' = \\[1\\]: expected a mapping"),
    ("bogus: 1\n", "unknown config key 'bogus'"),
    ("lambda_time: [0, 1]\n", "'lambda_time': cannot use \\[0, 1\\] as float"),
])
def test_config_file_errors_name_the_keys(tmp_path, text, match):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ValueError, match=match):
        trial_config("--config", str(f))


def test_trial_bad_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("search:\n  layers: [2\n")
    assert cli.main(["trial", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "not valid YAML" in err and err.count("\n") == 1


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


# ---------------------------------------------------------------------------------------------- --out, config
TINY_TRIAL = dict(dataset="synthetic", train_size=64, val_size=32, test_size=32, batch_size=16, layers=3,
                  channels=4, nodes=2, max_epochs=2, patience=2, warmup_epochs=0, eval_epochs=1,
                  eval_batch_size=32, augment=False, lambda_time=0.5)


def test_unwritable_out_fails_before_the_search(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker / "r.json", tmp_path):  # a parent that is a file; a folder
        rc = cli.main(["trial", "--preset", "smoke", "--set", "dataset=synthetic", "--out", str(out)])
        captured = capsys.readouterr()
        assert rc == 2 and "--out" in captured.err and captured.err.count("\n") == 1
        assert captured.out == ""  # nothing ran
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the probe left nothing behind


def test_config_column_round_trips_and_a_failed_write_prints_the_record(tmp_path, capsys):
    """A trials.parquet row's `config` is a `hwnas trial --config` file that loads the row's exact config.
    Its --out folder is replaced by a file while the search runs: the record is printed, exit 3."""
    import threading
    import time

    from results.schema import make_row

    config = SearchConfig.from_dict(TINY_TRIAL)
    row = make_row("exp", "t0", config.to_dict(), None, status="incomplete")
    cfg_file = tmp_path / "trial.json"
    cfg_file.write_text(row["config"])
    assert trial_config("--config", str(cfg_file)) == config
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    ckpt = tmp_path / "t.ckpt"
    blocked = {}

    def block_out_dir():  # once the first epoch checkpoint exists, the search still has most of its work
        deadline = time.monotonic() + 120
        while not ckpt.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        out_dir.rmdir()
        out_dir.write_text("now a file")
        blocked["done"] = ckpt.exists()

    t = threading.Thread(target=block_out_dir, daemon=True)
    t.start()
    rc = cli.main(["trial", "--config", str(cfg_file), "--checkpoint", str(ckpt), "--out", str(out_dir / "r.json")])
    t.join(5)
    captured = capsys.readouterr()
    assert blocked.get("done") and rc == 3
    assert "cannot write --out" in captured.err and captured.err.count("\n") == 1
    rec = json.loads(captured.out)  # the whole record, printed since it could not be written
    assert rec["config"] == config.to_dict() and rec["genotype"]["cells"] and 0 <= rec["accuracy"] <= 1
