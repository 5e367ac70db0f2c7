"""The search core: seed 1's two-stage clustered supernet search with seed 2's DRAM cost term, in plain
PyTorch. It takes its cost table as an argument: it imports neither Ray nor ``cost_models``.

Public API: ``run_search(config, cost_table, ...)`` (one whole trial) and the types it returns;
the search space (operators, layout, genotypes, config) lives in ``searchspace``.
"""
from searchspace.config import ConfigError, SearchConfig
from searchspace.genotype import CellGenotype, Genotype, cell_edges

__all__ = ["ConfigError", "SearchConfig", "Genotype", "CellGenotype", "cell_edges", "run_search", "SearchResult"]


def __getattr__(name: str):
    # run_search pulls in torch, the data and model modules; load them on first use only
    if name in ("run_search", "SearchResult"):
        from . import search

        return getattr(search, name)
    raise AttributeError(name)
