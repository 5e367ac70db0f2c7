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
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:  # name the file the caller asked for, never the temporary one
        raise naming(exc, path, tmp) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def naming(exc: OSError, path: str | os.PathLike, tmp: str | None = None) -> OSError:
    """``exc`` as an OSError of the same errno (so the same subclass) whose message and filename are
    ``path``: "cannot write PATH: No space left on device"."""
    why = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    if tmp:
        why = why.replace(tmp, str(path))
    cls = type(OSError(exc.errno, why)) if exc.errno else OSError  # FileNotFoundError, PermissionError, ...
    out = cls(f"cannot write {path}: {why}")
    out.errno = exc.errno
    out.reason = why  # the OS's words alone, for messages that name the file themselves
    return out


def reason(exc: BaseException) -> str:
    """Why an OSError happened, without the file name (``naming``'s reason, else ``strerror``)."""
    return getattr(exc, "reason", None) or getattr(exc, "strerror", None) or " ".join(str(exc).split())


def check_writable(path: str | os.PathLike, flag: str) -> None:
    """Fail early (a one-line ValueError naming ``flag`` and ``path``) when a file cannot be written there:
    a folder, a parent that cannot be created, or one where no file can be created (probed with a
    temporary file, removed). Run before the work whose result goes there."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{flag} {str(path)!r} is a folder; give a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"{flag} {str(path)!r}: cannot write there ({exc.strerror or exc})") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def load_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """The one config-file loader (``--config`` of every command): a file holding one mapping.

    ``.json`` is read as JSON, anything else (``.yaml``, ``.yml``, no suffix) as YAML, which also reads JSON.
    An empty file (or ``{}``, or only comments) is a ValueError: a wrong file must not run the defaults
    silently. A missing file is ``FileNotFoundError``; a folder, unreadable text, invalid
    YAML/JSON or a top level that is not a mapping is a one-line ``ValueError`` naming the file.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    if not p.is_file():
        raise ValueError(f"config file {str(path)!r} is not a file")
    is_json = p.suffix.lower() == ".json"
    try:
        text = p.read_text(encoding="utf-8")
        if is_json:
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise ValueError(f"config file {str(path)!r} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"config file {str(path)!r}: not valid JSON ({exc.msg} at line {exc.lineno} "
                         f"column {exc.colno})") from None
    except Exception as exc:  # yaml.YAMLError: its text spans lines; keep the problem and where
        raise ValueError(f"config file {str(path)!r}: not valid YAML ({_yaml_problem(exc)})") from None
    if data is None or data == {}:  # an empty file (or only comments): never run the defaults silently
        raise ValueError(f"config file {str(path)!r} is empty (no keys); give the keys to set, or leave out --config")
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r}: expected a mapping of keys to values at the top level, "
                         f"got {type(data).__name__}")
    return data


def _yaml_problem(exc: Exception) -> str:
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1} column {mark.column + 1}"
    return " ".join(str(exc).split()) or type(exc).__name__
