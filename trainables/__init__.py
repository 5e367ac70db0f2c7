"""The search core: seed 1's two-stage clustered supernet search with seed 2's DRAM cost term, in plain
PyTorch. Importing this package never imports Ray (the Tune adapter lives in ``trainables.tune``)."""
from .config import ConfigError, SearchConfig
from .genotype import CellGenotype, Genotype, cell_edges

__all__ = ["ConfigError", "SearchConfig", "Genotype", "CellGenotype", "cell_edges", "run_search", "SearchResult"]


def __getattr__(name: str):
    # run_search pulls in the data and model modules; load them on first use only
    if name in ("run_search", "SearchResult"):
        from . import search

        return getattr(search, name)
    raise AttributeError(name)
