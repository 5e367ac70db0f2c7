"""The search core's public pieces (what benchmarks and users build on): a stage's supernet, its cost
term, the target-network protocol, lazy imports."""
import subprocess
import sys

import pytest
import torch

from searchspace.genotype import CellGenotype, Genotype
from searchspace.groups import DEFAULT_GROUPS, Groups
from searchspace.layout import reduction_cells
from trainables import build_supernet, search_epoch, stage_cost_term, stage2_space, train_target

from search_helpers import pools_cheap, tiny


def _batch(cfg, n=8):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, cfg.in_channels, cfg.image_size, cfg.image_size, generator=g)
    return x, torch.randint(0, cfg.num_classes, (n,), generator=g)


def test_stage1_supernet_is_ready_for_a_search_step():
    cfg = tiny(lambda_time=0.5)
    sn = build_supernet(cfg, pools_cheap, 1, device="cpu")
    reps = Groups(DEFAULT_GROUPS).representatives()
    assert all(c == reps for row in sn.space.candidates for c in row)
    assert sn.alpha.shape == (cfg.layers, 14, len(reps)) and not sn.alpha.any()
    cost = stage_cost_term(cfg, sn.space, pools_cheap)
    assert (cost.ref_time_us, cost.ref_energy_uj) == (sn.cost.ref_time_us, sn.cost.ref_energy_uj)
    m = search_epoch(sn, [_batch(cfg)], None, True, cfg.grad_clip)
    assert int(m["seen"]) == 8 and sn.alpha.abs().sum() > 0


def test_same_config_same_fresh_supernet():
    a = build_supernet(tiny(), pools_cheap, 1, device="cpu").net.state_dict()
    b = build_supernet(tiny(), pools_cheap, 1, device="cpu").net.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stage2_supernet_needs_candidates_and_keeps_stage1_reference():
    cfg = tiny()
    with pytest.raises(ValueError, match="stage-2 supernet needs candidates"):
        build_supernet(cfg, pools_cheap, 2, device="cpu")
    groups = Groups(DEFAULT_GROUPS)
    choice = [["pool" if e % 2 else "sep_conv" for e in range(14)] for _ in range(cfg.layers)]
    sn2 = build_supernet(cfg, pools_cheap, 2, stage2_space(cfg, groups, choice), device="cpu")
    sn1 = build_supernet(cfg, pools_cheap, 1, device="cpu")
    assert sn2.space.candidates[0][1] == groups.ops("pool") and sn2.alpha.shape == (cfg.layers, 14, 2)
    assert sn2.cost.ref_time_us == sn1.cost.ref_time_us  # lambda means the same in both stages
    nested = build_supernet(cfg, pools_cheap, 2, [[groups.ops(g) for g in row] for row in choice], device="cpu")
    assert nested.space == sn2.space
    search_epoch(sn2, [_batch(cfg)], None, True, cfg.grad_clip)


def test_learned_groups_must_be_learned_first():
    with pytest.raises(ValueError, match="learn_groups"):
        build_supernet(tiny(groups="learned:3"), pools_cheap, 1, device="cpu")


def test_a_cost_table_is_required():
    with pytest.raises(TypeError, match="cost table"):
        build_supernet(tiny(), None, 1, device="cpu")


def _genotype(cells: int) -> Genotype:
    edges = tuple((op, src, dst) for dst in range(2, 6) for op, src in (("sep_conv_3x3", 0), ("skip_connect", 1)))
    reductions = set(reduction_cells(cells))
    return Genotype(tuple(CellGenotype(i in reductions, edges) for i in range(cells)))


def test_train_target_is_the_trials_protocol_and_deterministic():
    cfg = tiny(eval_layers=8, eval_channels=6)
    first, again = train_target(cfg, _genotype(6), device="cpu"), train_target(cfg, _genotype(6), device="cpu")
    assert 0.0 <= first.accuracy <= 1.0 and first.accuracy == again.accuracy
    assert len(first.net.cells) == 8  # eval_layers: the genotype is expanded to the target depth
    w1, w2 = first.net.state_dict(), again.net.state_dict()
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_import_trainables_loads_no_torch():
    code = "import sys, trainables; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
