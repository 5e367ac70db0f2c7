"""The two-stage search on CPU: stage structure, the cost term, determinism, checkpoint/resume, errors."""
import json

import numpy as np
import pytest

from trainables import Genotype, run_search
from trainables.arch import derive_genotype, make_space
from searchspace.groups import DEFAULT_GROUPS
from trainables.train import NonFiniteLoss

from search_helpers import Killed, kill_at, pools_cheap, tiny

GROUPS = dict(DEFAULT_GROUPS)


@pytest.fixture(scope="module")
def result():
    history = []
    r = run_search(tiny(seed=3), report=history.append, cost_table=pools_cheap)
    return r, history


def test_stage1_one_representative_per_group_and_stage2_the_winning_group(result):
    r, _ = result
    assert len(r.stage1_choice) == 3 and all(len(row) == 14 for row in r.stage1_choice)
    for choice_row, cand_row in zip(r.stage1_choice, r.stage2_candidates):
        for group, cands in zip(choice_row, cand_row):
            assert group in GROUPS
            assert cands == list(GROUPS[group])  # exactly the winning group, every operator of it


def test_stage1_supernet_holds_exactly_one_candidate_per_group():
    from trainables.arch import make_space
    from searchspace.groups import Groups

    reps = Groups(DEFAULT_GROUPS).representatives()
    space = make_space(reps, (False, True, False), 4, share=False)
    for row in space.edge_spec():
        for cands in row:
            assert sorted(Groups(DEFAULT_GROUPS).group_of(op) for op in cands) == sorted(GROUPS)


def test_genotype_ops_come_from_stage2_candidates_two_inputs_per_node(result):
    r, _ = result
    for cell, cands in zip(r.genotype.cells, r.stage2_candidates):
        from searchspace.genotype import cell_edges

        index = {e: i for i, e in enumerate(cell_edges(4))}
        assert len(cell.edges) == 8
        for op, src, dst in cell.edges:
            assert op in cands[index[(src, dst)]]
        assert sorted(d for _, _, d in cell.edges) == [2, 2, 3, 3, 4, 4, 5, 5]
    assert r.skip_count == sum(r.skip_counts) and max(r.skip_counts) <= 2


def test_record_keys_and_report_stream(result):
    r, history = result
    rec = json.loads(json.dumps(r.to_record()))
    for key in ("genotype", "groups", "stage1_choice", "stage2_candidates", "stage1_epochs", "stage2_epochs",
                "supernet_accuracy", "accuracy", "params", "flops", "skip_count", "seconds"):
        assert key in rec
    assert Genotype.from_dict(rec["genotype"]) == r.genotype
    assert 0 <= rec["accuracy"] <= 1 and rec["params"] > 0 and rec["flops"] > 0
    phases = [h["phase"] for h in history]
    assert phases[0] == "stage1" and "stage2" in phases and phases[-1] == "eval"
    assert all({"epoch", "train_loss"} <= set(h) for h in history)
    # val accuracy (val_every: 0) on each phase's last epoch only: the one the record reads
    for phase in ("stage1", "stage2", "eval"):
        rows = [h for h in history if h["phase"] == phase]
        assert "val_acc" in rows[-1] and not any("val_acc" in h for h in rows[:-1])
    assert [h for h in history if h["phase"] == "stage2"][-1]["val_acc"] == r.supernet_accuracy
    assert all("expected_dram_time_us" in h and "alpha_entropy" in h for h in history if h["phase"] != "eval")


def test_same_seed_same_genotype(result):
    r, _ = result
    again = run_search(tiny(seed=3), cost_table=pools_cheap)
    assert again.genotype == r.genotype and again.accuracy == r.accuracy


def test_cost_weight_lowers_expected_cost():
    """With pools/skip far cheaper, lambda_time > 0 ends stage 1 at a lower expected DRAM time."""
    def final_stage1_time(lam):
        hist = []
        run_search(tiny(seed=1, lambda_time=lam, arch_lr=0.05, max_epochs=3, patience=3, eval_epochs=1),
                   report=hist.append, cost_table=pools_cheap)
        return [h for h in hist if h["phase"] == "stage1"][-1]["expected_dram_time_us"]

    assert final_stage1_time(2.0) < 0.9 * final_stage1_time(0.0)


RESUME_CFG = dict(seed=5, max_epochs=3, patience=3, eval_epochs=2)


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("full") / "full.pt"
    return run_search(tiny(**RESUME_CFG), cost_table=pools_cheap, checkpoint=path), path


@pytest.fixture(scope="module")
def uninterrupted(uninterrupted_run):
    return uninterrupted_run[0]


def test_last_checkpoint_is_plain_data_holding_the_typed_state(uninterrupted_run):
    import torch

    from trainables import load_checkpoint

    result, path = uninterrupted_run
    torch.load(path, weights_only=True)  # tensors, numbers, strings, lists, dicts only
    state = load_checkpoint(path, tiny(**RESUME_CFG))
    assert state.phase == "eval" and state.progress.epoch == RESUME_CFG["eval_epochs"]
    assert state.genotype == result.genotype and state.groups.to_dict() == result.groups
    assert state.stage1.epochs == result.stage1_epochs and state.stage2.epochs == result.stage2_epochs
    assert state.stage2.supernet_accuracy == result.supernet_accuracy
    assert list(state.history) == result.history and state.wall <= result.seconds


@pytest.mark.parametrize("stop_after", [("stage1", 2), ("stage2", 1), ("eval", 1)])
def test_resume_from_checkpoint_matches_uninterrupted_run(tmp_path, stop_after, uninterrupted):
    cfg = tiny(**RESUME_CFG)
    full = uninterrupted

    ck = tmp_path / "interrupted.pt"
    with pytest.raises(Killed):
        run_search(cfg, report=kill_at(*stop_after), cost_table=pools_cheap, checkpoint=ck)
    resumed_history = []
    resumed = run_search(cfg, report=resumed_history.append, cost_table=pools_cheap, checkpoint=ck)
    assert resumed.genotype == full.genotype
    assert resumed.accuracy == full.accuracy and resumed.supernet_accuracy == full.supernet_accuracy
    assert (resumed_history[0]["phase"], resumed_history[0]["epoch"]) != ("stage1", 1)  # really resumed


EVAL_SEEDS_CFG = dict(RESUME_CFG, eval_seeds=2, test_size=200)


@pytest.fixture(scope="module")
def two_eval_seeds():
    history = []
    return run_search(tiny(**EVAL_SEEDS_CFG), report=history.append, cost_table=pools_cheap), history


def test_eval_seeds_mean_std_and_seed_0_is_the_single_seed_protocol(two_eval_seeds):
    import statistics

    from trainables import train_target

    r, history = two_eval_seeds
    one = run_search(tiny(**dict(EVAL_SEEDS_CFG, eval_seeds=1)), cost_table=pools_cheap)
    assert one.accuracy_std is None and one.eval_accuracies == (one.accuracy,)
    assert len(r.eval_accuracies) == 2 and r.eval_accuracies[0] == one.accuracy  # seed 0: bit for bit
    assert r.genotype == one.genotype and r.params == one.params
    assert r.accuracy == statistics.fmean(r.eval_accuracies)
    assert r.accuracy_std == pytest.approx(statistics.stdev(r.eval_accuracies), abs=0)
    rec = json.loads(json.dumps(r.to_record()))
    assert rec["eval_accuracies"] == list(r.eval_accuracies) and rec["accuracy_std"] == r.accuracy_std
    # every eval epoch says which training seed it belongs to, each seed from epoch 1
    evals = [(h["eval_seed"], h["epoch"]) for h in history if h["phase"] == "eval"]
    assert evals == [(0, 1), (0, 2), (1, 1), (1, 2)]
    # seed 1 has its own init and data order, derived from (seed, 1) only: train_target reproduces it
    assert train_target(tiny(**EVAL_SEEDS_CFG), r.genotype, device="cpu", eval_seed=1).accuracy == r.eval_accuracies[1]


@pytest.mark.parametrize("stop_after", [("eval", 2, 0), ("eval", 1, 1)], ids=["end-of-seed-0", "seed-1-epoch-1"])
def test_resume_during_an_eval_seed_ends_with_the_same_record(tmp_path, stop_after, two_eval_seeds):
    full, _ = two_eval_seeds
    ck = tmp_path / "interrupted.pt"
    with pytest.raises(Killed):
        run_search(tiny(**EVAL_SEEDS_CFG), report=kill_at(*stop_after), cost_table=pools_cheap, checkpoint=ck)
    resumed_history = []
    resumed = run_search(tiny(**EVAL_SEEDS_CFG), report=resumed_history.append, cost_table=pools_cheap, checkpoint=ck)
    assert resumed.eval_accuracies == full.eval_accuracies and resumed.accuracy == full.accuracy
    assert resumed.accuracy_std == full.accuracy_std and resumed.genotype == full.genotype
    assert all(h["phase"] == "eval" for h in resumed_history)  # really resumed in the eval phase
    remaining = {("eval", 2, 0): [(1, 1), (1, 2)], ("eval", 1, 1): [(1, 2)]}[stop_after]
    assert [(h["eval_seed"], h["epoch"]) for h in resumed_history] == remaining


def test_checkpoint_without_eval_seed_state_still_resumes(tmp_path, uninterrupted):
    """A checkpoint written before eval_seeds (no eval_accuracies in the state, no key in its config)
    resumes as the single-seed trial it was."""
    import torch

    ck = tmp_path / "old.pt"
    with pytest.raises(Killed):
        run_search(tiny(**RESUME_CFG), report=kill_at("eval", 1), cost_table=pools_cheap, checkpoint=ck)
    plain = torch.load(ck, weights_only=True)
    del plain["eval_accuracies"], plain["config"]["eval_seeds"]
    torch.save(plain, ck)
    resumed = run_search(tiny(**RESUME_CFG), cost_table=pools_cheap, checkpoint=ck)
    assert resumed.accuracy == uninterrupted.accuracy and resumed.eval_accuracies == (uninterrupted.accuracy,)


def test_checkpoint_from_another_config_is_refused(tmp_path):
    ck = tmp_path / "c.pt"
    run_search(tiny(max_epochs=1, eval_epochs=1), cost_table=pools_cheap, checkpoint=ck)
    with pytest.raises(ValueError, match="another config.*lambda_time"):
        run_search(tiny(max_epochs=1, eval_epochs=1, lambda_time=1.0), cost_table=pools_cheap, checkpoint=ck)


def test_nan_loss_stops_naming_stage_and_epoch():
    nan_table = lambda op, c, h, s: (float("nan"), 1.0)  # noqa: E731
    with pytest.raises(NonFiniteLoss, match="stage1 epoch 1"):
        run_search(tiny(lambda_time=1.0), cost_table=nan_table)


def test_skip_cap_applied_at_derivation():
    """Even edges hold only skip_connect, odd edges two convs; skips are the strongest edges (ranked by the
    stage-1 rule). Without stage-1 alternatives nodes 2 and 3 cannot get two inputs without one skip each,
    so a cap of 2 leaves exactly those two."""
    space = make_space([[("skip_connect",) if e % 2 == 0 else ("sep_conv_3x3", "sep_conv_5x5") for e in range(14)]],
                       (False,), 4, share=False)
    weights = np.zeros((1, 14, 2))
    weights[..., 0] = 1.0
    strength = np.linspace(1.0, 0.5, 14)[None].copy()
    strength[0, ::2] += 1.0
    uncapped = derive_genotype(space, weights, strength, max_skip_per_cell=-1, rank="stage1")
    capped = derive_genotype(space, weights, strength, max_skip_per_cell=2, rank="stage1")
    assert uncapped.cells[0].skip_count() == 7
    assert capped.cells[0].skip_count() == 2
    assert sorted(d for _, _, d in capped.cells[0].edges) == [2, 2, 3, 3, 4, 4, 5, 5]
    assert all(op == "sep_conv_3x3" for op, _, d in capped.cells[0].edges if d >= 4)


def test_train_target_builds_the_trials_target_network(result):
    from trainables import train_target

    r, _ = result
    run = train_target(tiny(seed=3), r.genotype, device="cpu")
    assert sum(p.numel() for p in run.net.parameters()) == r.params and 0 <= run.accuracy <= 1
