"""Small file helpers shared by every layer: atomic writes and the one config-file loader."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Write ``path`` through ``write(tmp_path)`` into a temporary file beside it, then rename.

    A crash mid-write leaves the previous file intact (rename is atomic on POSIX); the temporary file is
    removed on any error. Used for search checkpoints (torch.save) and local Parquet tables alike.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def load_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML (``.yaml``/``.yml``) or JSON file holding one mapping; ``ValueError`` naming the file otherwise."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    if not p.is_file():
        raise ValueError(f"config file {path} is not a file")
    text = p.read_text()
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError: one line naming the file
        raise ValueError(f"config file {path}: not valid {'YAML' if p.suffix in ('.yaml', '.yml') else 'JSON'} "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path}: expected a mapping of keys to values, got {type(data).__name__}")
    return data
