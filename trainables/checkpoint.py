"""Checkpoint files: a ``SearchState`` as plain data, written atomically, read with ``weights_only=True``.

The file is a dict ``{"format": FORMAT, "config": config.to_dict(), **state.to_plain()}``. Loading it
never unpickles a Python object (only tensors, numbers, strings, lists, dicts), so whoever can write to
the results bucket cannot run code on the worker that resumes a trial from it.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from searchspace.config import SearchConfig
from searchspace.files import atomic_write

from .state import SearchState

log = logging.getLogger(__name__)

FORMAT = "hwnas-search-state/2"  # bump when to_plain changes shape; older files are refused, not misread
_IGNORED_KEYS = ("device", "fast")  # execution knobs: a checkpoint moves between CPU and GPU


class CheckpointError(ValueError):
    """A checkpoint file that cannot be resumed from (unreadable, another format, or another config)."""


def save_checkpoint(path: str | Path, state: SearchState, config: SearchConfig) -> None:
    """Atomic write: a crash mid-save leaves the previous checkpoint intact."""
    plain = {"format": FORMAT, "config": config.to_dict(), **state.to_plain()}
    atomic_write(path, lambda tmp: torch.save(plain, tmp))


def load_checkpoint(path: str | Path | None, config: SearchConfig) -> SearchState | None:
    """The state saved at ``path``, None if there is no file; CheckpointError if it cannot be resumed."""
    if path is None or not Path(path).exists():
        return None
    remedy = "remove it to start the trial afresh"
    try:
        plain = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle errors have many types; all mean the same here
        raise CheckpointError(f"checkpoint {path} is unreadable or not a {FORMAT} file (written by an older hwnas, "
                              f"or not a checkpoint): {type(exc).__name__}: {_first_line(exc)}; {remedy}") from exc
    found = plain.get("format") if isinstance(plain, dict) else None
    if found != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {found!r}, this hwnas reads {FORMAT!r} "
                              f"(written by another hwnas version); {remedy}")
    saved = {k: v for k, v in plain.get("config", {}).items() if k not in _IGNORED_KEYS}
    want = {k: v for k, v in config.to_dict().items() if k not in _IGNORED_KEYS}
    if saved != want:
        diff = sorted(k for k in set(saved) | set(want) if saved.get(k) != want.get(k))
        raise CheckpointError(f"checkpoint {path} was written by another config (differs in: {', '.join(diff)}); "
                              "remove it or run with the config that wrote it")
    try:
        return SearchState.from_plain(plain)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path} is malformed ({type(exc).__name__}: {exc}); {remedy}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
