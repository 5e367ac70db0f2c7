"""Helpers of the cost tests: a built-in profile file with some fields changed, by path; a config's
search network costed on its profile and batch."""
from __future__ import annotations

import re
from pathlib import Path

from cost_models import NetworkCost, QueryFn, load_profile, network_cost
from searchspace.config import SearchConfig
from searchspace.genotype import Genotype
from searchspace.layout import network_spec


def profile_variant(directory: Path, base: str, name: str, **fields) -> str:
    """Write ``base``'s TOML with ``name`` and ``fields`` replaced (or added) to ``directory``; its path."""
    text = Path(load_profile(base).source).read_text()
    for key, value in {"name": name, **fields}.items():
        line = f"{key} = {value!r}".replace("'", '"') if isinstance(value, str) else \
            f"{key} = {str(value).lower() if isinstance(value, bool) else value}"
        text, n = re.subn(rf"(?m)^{key} = .*$", line, text)
        if not n:
            text += f"\n{line}\n"
    path = directory / f"{name}.toml"
    path.write_text(text)
    return str(path)


def config_network_cost(genotype: Genotype, config: SearchConfig, query_fn: QueryFn | None = None,
                        **resize: int) -> NetworkCost:
    """``network_cost`` of ``genotype`` on ``config``'s search network (``resize``: other layers / channels /
    image_size), at its profile and cost batch."""
    return network_cost(genotype, network_spec(config).resized(**resize), config.profile, config.cost_batch, query_fn)
