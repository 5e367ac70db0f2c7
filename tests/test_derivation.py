"""Derivation (issues 10 and 16): the skip cap always holds, edges are ranked by both stages, and stage 2's
siblings start fairly. Built from hand-made stage outcomes: no training, milliseconds each."""
import numpy as np
import pytest
import torch

from searchspace.groups import DEFAULT_GROUPS, Groups
from searchspace.ops import CANDIDATES
from trainables import build_supernet, stage1_space, stage2_space
from trainables.arch import derive_genotype, stage1_alternatives
from trainables.supernet import representative_of, warm_start

from search_helpers import pools_cheap, tiny


def _stage1_skip_everywhere(cfg, groups, rng):
    """Stage-1 weights (n_sets, E, 4) where the skip representative wins every edge (weight 0.55-0.85)."""
    space1 = stage1_space(cfg, groups)
    reps = space1.candidates[0][0]
    n_sets, n_edges = len(space1.candidates), space1.n_edges
    w = rng.random((n_sets, n_edges, len(reps)))
    skip = reps.index("skip_connect")
    w[..., skip] = 0.0
    w = w / w.sum(-1, keepdims=True) * (1 - (s := rng.uniform(0.55, 0.85, (n_sets, n_edges))))[..., None]
    w[..., skip] = s
    return space1, w


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cap", [0, 1, 2])
def test_cap_holds_when_the_skip_group_wins_every_edge(seed, cap):
    cfg = tiny(layers=5, max_skip_per_cell=cap)
    groups = Groups(DEFAULT_GROUPS)
    space1, w1 = _stage1_skip_everywhere(cfg, groups, np.random.default_rng(seed))
    choice = [["skip"] * space1.n_edges for _ in space1.candidates]
    space2 = stage2_space(cfg, groups, choice)  # stage 2 offers only skip_connect on every edge
    op_weight = np.ones((len(choice), space1.n_edges, 1))
    strength = w1.max(-1)
    alts = stage1_alternatives(space1, w1, groups, space2, op_weight)
    uncapped = derive_genotype(space2, op_weight, strength, -1, alternatives=alts)
    assert all(c.skip_count() == 8 for c in uncapped.cells)  # what the alphas say: identity cells
    g = derive_genotype(space2, op_weight, strength, cap, alternatives=alts)
    reps = dict(zip(groups.names, groups.representatives()))
    index = {(a, b): i for i, (a, b) in enumerate((s_, d) for d in range(2, 6) for s_ in range(d))}
    for i, cell in enumerate(g.cells):
        assert cell.skip_count() <= cap
        assert sorted(d for _, _, d in cell.edges) == [2, 2, 3, 3, 4, 4, 5, 5]
        for op, src, dst in cell.edges:
            if op != "skip_connect":  # a barred edge takes its next-strongest stage-1 group's operator
                e = index[(src, dst)]
                others = [(w1[i][e][k], rep) for k, rep in enumerate(space1.candidates[i][e]) if rep != "skip_connect"]
                assert op == max(others)[1] and op in reps.values()


def test_one_group_spec_is_not_wired_to_inputs_0_and_1():
    """With one group every stage-1 strength is 1.0: ranking by stage 1 alone wires every node to inputs
    0 and 1; stage 2's operator weights separate the edges."""
    cfg = tiny(groups="all=" + ",".join(CANDIDATES))
    groups = Groups((("all", CANDIDATES),))
    space1 = stage1_space(cfg, groups)
    space2 = stage2_space(cfg, groups, [["all"] * space1.n_edges for _ in space1.candidates])
    rng = np.random.default_rng(0)
    w2 = rng.dirichlet(np.ones(len(CANDIDATES)) * 0.5, size=(len(space2.candidates), space2.n_edges))
    strength = np.ones(w2.shape[:2])
    alts = stage1_alternatives(space1, np.ones(w2.shape[:2] + (1,)), groups, space2, w2)
    old = derive_genotype(space2, w2, strength, -1, alternatives=alts, rank="stage1")
    new = derive_genotype(space2, w2, strength, -1, alternatives=alts, rank="both")
    assert all({src for _, src, _ in c.edges} == {0, 1} for c in old.cells)
    assert any(src >= 2 for c in new.cells for _, src, _ in c.edges)
    # each node keeps the two incoming edges whose strongest operator weighs most
    edges = [(s_, d) for d in range(2, 6) for s_ in range(d)]
    for i, cell in enumerate(new.cells):
        for dst in range(2, 6):
            incoming = [e for e, (_s, d) in enumerate(edges) if d == dst]
            best = sorted(incoming, key=lambda e: -w2[i][e].max())[:2]
            assert sorted(src for _, src, d in cell.edges if d == dst) == sorted(edges[e][0] for e in best)
            for op, src, d in cell.edges:
                if d == dst:
                    assert op == CANDIDATES[int(np.argmax(w2[i][edges.index((src, d))]))]


def test_rank_both_reads_stage2_and_does_not_favour_a_one_operator_group():
    """Node 3's inputs: skip (stage-1 weight 0.6, alone in its group), a separable conv (0.55, stage 2 put
    0.7 on sep_conv_3x3) and a pool (0.58, stage 2 undecided). Stage 1 alone keeps skip and pool; both
    stages keep the conv (0.55 x 2 x 0.7 = 0.77) and the skip (0.6 x 1 x 1.0)."""
    cfg = tiny(layers=1)
    groups = Groups(DEFAULT_GROUPS)
    space2 = stage2_space(cfg, groups, [["pool", "pool", "skip", "sep_conv", "pool"] + ["pool"] * 9])
    w2 = np.full((1, 14, 2), 0.5)
    w2[0, 2] = [1.0, 0.0]
    w2[0, 3] = [0.7, 0.3]
    strength = np.full((1, 14), 0.3)
    strength[0, 2:5] = [0.6, 0.55, 0.58]
    node3 = lambda g: sorted((src, op) for op, src, d in g.cells[0].edges if d == 3)  # noqa: E731
    assert node3(derive_genotype(space2, w2, strength, -1, rank="stage1")) == [(0, "skip_connect"), (2, "max_pool_3x3")]
    assert node3(derive_genotype(space2, w2, strength, -1, rank="both")) == [(0, "skip_connect"), (1, "sep_conv_3x3")]


def test_bad_rank_is_refused():
    cfg = tiny(layers=1)
    space2 = stage2_space(cfg, Groups(DEFAULT_GROUPS), [["pool"] * 14])
    with pytest.raises(ValueError, match="derive rank 'x'"):
        derive_genotype(space2, np.ones((1, 14, 2)), np.ones((1, 14)), 2, rank="x")


def test_copy_start_makes_siblings_compute_what_the_representative_computes():
    cfg = tiny(layers=3)
    groups = Groups(DEFAULT_GROUPS)
    sn1 = build_supernet(cfg, pools_cheap, 1, device="cpu")
    with torch.no_grad():  # a trained-looking representative: not the fresh init
        for p in sn1.net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    choice = [["sep_conv", "dil_conv"] * 7 for _ in range(cfg.layers)]
    space2 = stage2_space(cfg, groups, choice)
    fresh = build_supernet(cfg, pools_cheap, 2, space2, device="cpu")
    assert warm_start(fresh, sn1.net.state_dict()) == 0  # representative kept, siblings fresh
    sn2 = build_supernet(cfg, pools_cheap, 2, space2, device="cpu")
    assert warm_start(sn2, sn1.net.state_dict(), representative_of(groups)) > 0
    x = torch.randn(4, cfg.channels, 16, 16)  # cell 0: a normal cell of `channels` at 16x16
    for e, (rep, sib) in enumerate([("sep_conv_3x3", "sep_conv_5x5"), ("dil_conv_3x3", "dil_conv_5x5")]):
        ops = sn2.net.cells[0].edges[str(e)].ops.eval()
        fresh_ops = fresh.net.cells[0].edges[str(e)].ops.eval()
        with torch.no_grad():
            assert torch.allclose(ops[sib](x), ops[rep](x), atol=1e-5)
            assert not torch.allclose(fresh_ops[sib](x), fresh_ops[rep](x), atol=1e-3)
