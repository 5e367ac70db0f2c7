"""Checkpoint files: the typed state round-trips through plain data, loads with weights_only=True, and
anything else (another config, an older format, a pickled object, garbage) is refused with a clear error."""
import os
import pickle

import pytest
import torch

from searchspace.genotype import CellGenotype, Genotype
from searchspace.groups import DEFAULT_GROUPS, Groups
from trainables import CheckpointError, SearchState, load_checkpoint, save_checkpoint
from trainables.state import PhaseProgress, Stage1Outcome, Stage2Outcome

from search_helpers import tiny


def _state() -> SearchState:
    """A state in the eval phase with every field set (no training: values made up, shapes real)."""
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), 0.1, momentum=0.9)
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    a = torch.nn.Parameter(torch.zeros(2, 14, 4))
    a_opt = torch.optim.Adam([a], 0.01, betas=(0.5, 0.999))
    a.grad = torch.ones_like(a)
    a_opt.step()
    choice = tuple(tuple("pool" if e % 2 else "sep_conv" for e in range(14)) for _ in range(2))
    genotype = Genotype((CellGenotype(False, (("sep_conv_3x3", 0, 2), ("max_pool_3x3", 1, 2))),))
    return SearchState(
        phase="eval", groups=Groups(DEFAULT_GROUPS), ref=(12.5, 0.25),
        progress=PhaseProgress(epoch=1, seconds=0.5, stable=0, prev_argmax=None, net=net.state_dict(),
                               w_opt=opt.state_dict()),
        stage1=Stage1Outcome(choice, torch.rand(2, 14), 3, net.state_dict()),
        stage2=Stage2Outcome(torch.rand(2, 14, 2), 2, 0.375), genotype=genotype,
        history=({"phase": "stage1", "epoch": 1, "train_loss": 2.3},), phase_seconds={"stage1": 1.0, "stage2": 2.0},
        wall=4.5, rng=torch.Generator().manual_seed(3).get_state(), eval_accuracies=(0.625,))


def test_state_round_trips_through_a_weights_only_file(tmp_path):
    state, cfg, path = _state(), tiny(), tmp_path / "c.pt"
    save_checkpoint(path, state, cfg)
    plain = torch.load(path, weights_only=True)  # plain data only: no pickled Python objects
    assert plain["format"].startswith("hwnas-search-state/") and plain["config"] == cfg.to_dict()
    back = load_checkpoint(path, cfg)
    assert (back.phase, back.groups, back.ref, back.genotype) == (state.phase, state.groups, state.ref, state.genotype)
    assert back.stage1.choice == state.stage1.choice and torch.equal(back.stage1.strength, state.stage1.strength)
    assert torch.equal(back.stage2.op_weight, state.stage2.op_weight) and back.stage2.supernet_accuracy == 0.375
    assert back.progress.epoch == 1 and torch.equal(back.progress.net["weight"], state.progress.net["weight"])
    assert back.progress.w_opt["state"][0]["momentum_buffer"].shape == (2, 3)
    assert back.history == state.history and back.phase_seconds == state.phase_seconds and back.wall == 4.5
    assert torch.equal(back.rng, state.rng) and back.eval_accuracies == (0.625,)


def test_no_file_is_a_fresh_trial(tmp_path):
    assert load_checkpoint(tmp_path / "missing.pt", tiny()) is None and load_checkpoint(None, tiny()) is None
    assert not SearchState().resumed


def test_another_config_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, _state(), tiny())
    assert load_checkpoint(path, tiny(device="cpu")) is not None  # execution knobs do not count
    with pytest.raises(ValueError, match="another config.*lambda_time"):
        load_checkpoint(path, tiny(lambda_time=1.0))


def test_a_key_added_later_counts_as_its_default(tmp_path):
    """A checkpoint from before a config key existed (e.g. collapse_guard, the budgets) resumes under the
    key's default, and is refused once the key is set to something else."""
    path = tmp_path / "c.pt"
    save_checkpoint(path, _state(), tiny())
    plain = torch.load(path, weights_only=True)
    del plain["config"]["collapse_guard"], plain["config"]["dram_time_budget_us"]
    torch.save(plain, path)
    assert load_checkpoint(path, tiny()) is not None
    with pytest.raises(CheckpointError, match="another config.*dram_time_budget_us"):
        load_checkpoint(path, tiny(dram_time_budget_us=40.0))
    # supernet_pool_bn changed the supernet when it was added: a checkpoint without it had the pools' BN
    plain["config"].pop("supernet_pool_bn")
    torch.save(plain, path)
    assert load_checkpoint(path, tiny(supernet_pool_bn=True)) is not None
    with pytest.raises(CheckpointError, match="another config.*supernet_pool_bn"):
        load_checkpoint(path, tiny())
    # arch_step likewise: before it, alpha and the weights stepped in two passes (alternate)
    plain["config"].pop("arch_step")
    torch.save(plain, path)
    assert load_checkpoint(path, tiny(supernet_pool_bn=True, arch_step="alternate")) is not None
    with pytest.raises(CheckpointError, match="another config.*arch_step"):
        load_checkpoint(path, tiny(supernet_pool_bn=True))  # auto = joint with arch_data=same


def test_auto_arch_step_is_its_resolved_value_and_speed_knobs_do_not_count(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, _state(), tiny(arch_step="joint"))
    assert load_checkpoint(path, tiny(arch_step="auto", channels_last="off", val_every=1)) is not None
    with pytest.raises(CheckpointError, match="another config.*arch_step"):
        load_checkpoint(path, tiny(arch_step="alternate"))


def test_old_format_is_refused_clearly(tmp_path):
    """The previous format: a flat dict, loadable as plain data but without a format tag."""
    path = tmp_path / "old.pt"
    torch.save({"phase": "stage1", "epoch": 1, "config": tiny().to_dict(), "history": []}, path)
    with pytest.raises(CheckpointError, match="format None.*another hwnas version.*remove it"):
        load_checkpoint(path, tiny())


def test_old_format_with_numpy_is_refused_clearly(tmp_path):
    import numpy as np

    path = tmp_path / "old.pt"
    torch.save({"phase": "eval", "stage1": {"strength": np.ones(3)}, "config": tiny().to_dict()}, path)
    with pytest.raises(CheckpointError, match="unreadable or not a hwnas-search-state"):
        load_checkpoint(path, tiny())


def test_garbage_and_truncated_files_are_refused(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(path, tiny())
    save_checkpoint(path, _state(), tiny())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(path, tiny())


class _Payload:
    """A pickle that would create a file when unpickled (what a hostile bucket writer could plant)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_pickled_object_is_never_run(tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "ran"
    with open(path, "wb") as f:
        pickle.dump({"format": "hwnas-search-state/2", "x": _Payload(marker)}, f, protocol=2)
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(path, tiny())
    torch.save({"format": "hwnas-search-state/2", "x": _Payload(marker)}, path)  # the zip container too
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(path, tiny())
    assert not marker.exists()


def test_malformed_state_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, _state(), tiny())
    plain = torch.load(path, weights_only=True)
    del plain["progress"]
    torch.save(plain, path)
    with pytest.raises(CheckpointError, match="malformed.*progress"):
        load_checkpoint(path, tiny())
