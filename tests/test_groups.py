"""Operator groups: the patent's default four, learned:K clustering, explicit specs, representatives."""
import numpy as np
import pytest

from searchspace.groups import DEFAULT_GROUPS, Groups, cluster_operators, parse_groups
from searchspace.ops import CANDIDATES
from trainables import learn_groups, load_datasets

from search_helpers import tiny


def test_default_groups_are_the_patents_four():
    g = parse_groups("default")
    assert g.to_dict() == {"pool": ["max_pool_3x3", "avg_pool_3x3"], "skip": ["skip_connect"],
                           "sep_conv": ["sep_conv_3x3", "sep_conv_5x5"], "dil_conv": ["dil_conv_3x3", "dil_conv_5x5"]}
    assert g.representatives() == ("max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3")
    assert g.representatives(("avg_pool_3x3", "dil_conv_5x5")) == ("avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                                                                     "dil_conv_5x5")


@pytest.mark.parametrize("k", [1, 3, 4, 7])
def test_learned_groups_cover_every_operator_once(k):
    cfg = tiny(groups=f"learned:{k}", learned_warmup_steps=2)
    groups = learn_groups(cfg, load_datasets(cfg), k)
    ops = [op for _, members in groups.items for op in members]
    assert len(groups.items) == k and all(members for _, members in groups.items)
    assert sorted(ops) == sorted(CANDIDATES)


def test_clustering_merges_the_most_similar_operators():
    sim = np.eye(7)
    sim[0, 1] = sim[1, 0] = 0.9  # the two pools
    sim[3, 4] = sim[4, 3] = 0.8  # the two separable convs
    g = cluster_operators(sim, CANDIDATES, 5)
    assert ["max_pool_3x3", "avg_pool_3x3"] in g.to_dict().values()
    assert ["sep_conv_3x3", "sep_conv_5x5"] in g.to_dict().values()


@pytest.mark.parametrize("spec, match", [
    ("pool=max_pool_3x3;x=", "group 'x' is empty"),
    ("a=max_pool_3x3;b=max_pool_3x3", "in two groups"),
    ("a=stem_conv_bn", "structural"),
    ("a=nope", "unknown operator 'nope'"),
])
def test_bad_group_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_groups(spec)


def test_unknown_group_name_and_two_representatives_for_one_group():
    g = Groups(DEFAULT_GROUPS)
    with pytest.raises(ValueError, match="unknown operator group 'conv'"):
        g.ops("conv")
    with pytest.raises(ValueError, match="at most one per group"):
        g.representatives(("max_pool_3x3", "avg_pool_3x3"))


def test_explicit_groups_drive_the_search():
    from trainables import run_search
    from search_helpers import pools_cheap

    r = run_search(tiny(groups="pools=max_pool_3x3,avg_pool_3x3;convs=sep_conv_3x3,dil_conv_3x3",
                        share_alphas=True, max_epochs=1, eval_epochs=1), cost_table=pools_cheap)
    assert r.groups == {"pools": ["max_pool_3x3", "avg_pool_3x3"], "convs": ["sep_conv_3x3", "dil_conv_3x3"]}
    assert {g for row in r.stage1_choice for g in row} <= {"pools", "convs"}
    normal = [i for i, c in enumerate(r.genotype.cells) if not c.reduction]
    assert all(r.stage1_choice[i] == r.stage1_choice[normal[0]] for i in normal)  # shared alphas
