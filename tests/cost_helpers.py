"""Profile variants for the cost tests: a built-in profile file with some fields changed, by path."""
from __future__ import annotations

import re
from pathlib import Path

from cost_models import load_profile


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
