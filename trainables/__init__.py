"""The search core: the search patent's (CN112561027A) two-stage clustered supernet search with the
cost-loss patent's (CN112001491A) DRAM cost term, in plain PyTorch. It takes its cost table as an argument
(``searchspace.layout.CostTable``): it imports neither Ray nor ``cost_models``.

Public API (torch loads on first use of any of these, not on ``import trainables``):

* ``run_search(config, cost_table, report=None, checkpoint=None, network_cost=None) -> SearchResult``:
  one whole trial (``trainables.search`` reads as the patent's steps);
* ``train_target(config, genotype, data=None, *, device=None, generator=None) -> TargetRun``
  ``(accuracy, net)``: a genotype's target network trained and tested with a trial's protocol;
* ``build_supernet(config, cost_table, stage=1, candidates=None, *, groups=None, device=None, ref=None)
  -> Supernet``: a stage's supernet, alphas and optimisers, ready for
  ``search_epoch(supernet, batches, arch_batches, update_arch, grad_clip)``;
* ``stage_cost_term(config, space, cost_table, device="cpu", ref=None) -> CostTerm``: the loss's DRAM part;
* ``learn_groups(config, data, k) -> Groups``: claim 2's operator clustering; ``load_datasets(config, device)``;
* ``SearchState`` and ``load_checkpoint(path, config)`` / ``save_checkpoint(path, state, config)``:
  a trial's typed state and its ``weights_only`` checkpoint file (``CheckpointError`` if unusable).

The search space (operators, layout, genotypes, config) lives in ``searchspace``.
"""
from searchspace.config import ConfigError, SearchConfig
from searchspace.genotype import CellGenotype, Genotype, cell_edges

# public name -> submodule that defines it (imported lazily: it pulls in torch)
_LAZY = {
    "run_search": "search", "SearchResult": "result",
    "train_target": "target", "TargetRun": "target",
    "build_supernet": "supernet", "stage_cost_term": "supernet", "stage1_space": "supernet",
    "stage2_space": "supernet", "search_device": "supernet",
    "Supernet": "train", "CostTerm": "train", "search_epoch": "train", "NonFiniteLoss": "train",
    "learn_groups": "clustering", "load_datasets": "data",
    "SearchState": "state", "load_checkpoint": "state", "save_checkpoint": "state", "CheckpointError": "state",
}

__all__ = ["ConfigError", "SearchConfig", "Genotype", "CellGenotype", "cell_edges", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trainables' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
