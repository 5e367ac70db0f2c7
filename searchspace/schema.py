"""The one validator of every config dataclass: untyped data (YAML, JSON, ``--set``, Tune dicts) -> frozen config.

A config class declares each field once, with its default, why it exists and its bounds::

    layers: int = setting(5, "cells stacked; reduction cells at 1/3 and 2/3 of the depth", ge=1)

and calls ``check(self)`` from ``__post_init__``. ``check`` coerces every field to its annotated type
(bool, int, float, str, ``tuple[T, ...]`` of those, or a nested config dataclass), applies the field's
bounds, then calls the class's ``validate()`` hook for rules that span fields. ``build(cls, data)`` is
the way in from a mapping: an unknown key is a ``ConfigError`` naming key and value and listing the known
keys. ``markdown_table(cls)`` renders the keys for the docs' config reference (generated at build time).

The ``--set KEY=VALUE [KEY=VALUE ...]`` grammar of every command is here too: ``add_set_argument`` and
``parse_set``.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import numbers
import re
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .errors import InputError


class ConfigError(InputError):
    """A configuration key or value that cannot be used; the message names both (a ``ValueError``; exit
    code 2)."""


@dataclass(frozen=True)
class Rule:
    """Bounds of one field; a tuple field's bounds apply to each of its values."""
    why: str  # the field's meaning: the config reference's "meaning" column
    ge: float | None = None  # value >= ge
    gt: float | None = None  # value > gt
    also: Mapping[Any, str] | None = None  # values allowed outside ge/gt, with their meaning (-1 = "no cap")
    choices: tuple[Any, ...] | None = None  # the only allowed values
    nonempty: bool = False  # strings (each string of a tuple) must not be empty
    min_items: int = 0  # tuples: at least this many values
    unique: bool = False  # tuples: no value twice
    pattern: tuple[str, str] | None = None  # (regex the whole string must match, what it means in words)
    check: Callable[[Any], None] | None = None  # raises ValueError(reason); its docstring names what it checks


def setting(default: Any = dataclasses.MISSING, why: str = "", *, factory: Callable[[], Any] | None = None,
            **bounds: Any) -> Any:
    """A dataclass field with its meaning and bounds (``Rule``'s keywords) in the field's metadata."""
    meta = {"rule": Rule(why=why, **bounds)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------------- the fields
@functools.cache
def fields_of(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    """name -> (dataclass field, resolved type) of a config class, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls)}


def rule_of(f: dataclasses.Field) -> Rule:
    return f.metadata.get("rule") or Rule(why="")


def default_of(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]


def unknown_key(key: Any, value: Any, known: typing.Iterable[str], source: str = "") -> ConfigError:
    where = f" in {source}" if source else ""
    return ConfigError(f"unknown config key {key!r} (value {value!r}){where}; known keys: {', '.join(known)}")


def build(cls: type, data: Any, source: str = "") -> Any:
    """``cls(**data)`` for a mapping of known keys; ``ConfigError`` naming an unknown key or a bad value."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source or cls.__name__}: expected a mapping of keys to values, got {type(data).__name__}")
    known = fields_of(cls)
    for key, value in data.items():
        if key not in known:
            raise unknown_key(key, value, known, source)
    return cls(**data)


def check(obj: Any) -> None:
    """Coerce every field of a frozen config in place, apply its bounds, then ``obj.validate()``."""
    for name, (f, tp) in fields_of(type(obj)).items():
        value = coerce(name, getattr(obj, name), tp)
        object.__setattr__(obj, name, value)  # frozen: the one place a config's fields are typed
        _apply_rule(name, value, rule_of(f), tp)
    hook = getattr(obj, "validate", None)
    if hook is not None:
        hook()


# ---------------------------------------------------------------------------------------------- coercion
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def coerce(key: str, value: Any, tp: Any) -> Any:
    """``value`` as type ``tp``; ``ConfigError`` naming key and value when it cannot be."""
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return tp.from_dict(value)
        raise ConfigError(f"config key {key!r} = {value!r}: expected a mapping of {tp.__name__} keys")
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0]
        values = _as_list(key, value)
        out = []
        for v in values:
            try:
                out.append(_scalar(v, item))
            except (TypeError, ValueError):
                raise ConfigError(f"config key {key!r}: cannot use {v!r} (in {value!r}) as {item.__name__}") from None
        return tuple(out)
    try:
        return _scalar(value, tp)
    except (TypeError, ValueError):
        raise ConfigError(f"config key {key!r}: cannot use {value!r} as {tp.__name__}") from None


def _as_list(key: str, value: Any) -> list[Any]:
    if isinstance(value, str):  # "a,b", "[0, 1]" (a --set value that is not JSON), "" = none
        s = value.strip()
        if s[:1] in ("[", "(") and s[-1:] in ("]", ")"):
            s = s[1:-1]
        return [p.strip() for p in s.split(",") if p.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, Mapping):
        raise ConfigError(f"config key {key!r} = {value!r}: expected a list of values")
    return [value]  # one value: a list of one


def _scalar(v: Any, tp: type) -> Any:
    if tp is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, numbers.Integral) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in _TRUE + _FALSE:
            return v.strip().lower() in _TRUE
        raise ValueError
    if isinstance(v, bool) or v is None or isinstance(v, (list, tuple, dict)):
        raise ValueError  # True is not 1 here: a YAML "yes" in a number field is a mistake
    if tp is int:
        if isinstance(v, numbers.Integral):
            return int(v)
        f = float(v.strip()) if isinstance(v, str) else float(v)
        if not f.is_integer():
            raise ValueError
        return int(f)
    if tp is float:
        return float(v.strip()) if isinstance(v, str) else float(v)
    if tp is str:
        if isinstance(v, str):
            return v
        if isinstance(v, numbers.Real):
            return str(v)  # `name: 2024` in YAML, `--set name=2024`
        raise ValueError
    raise TypeError(f"unsupported config type {tp!r}")


# ---------------------------------------------------------------------------------------------- bounds
def _apply_rule(key: str, value: Any, rule: Rule, tp: Any) -> None:
    def bad(why: str) -> None:
        raise ConfigError(f"config key {key!r} = {value!r}: {why}")

    if dataclasses.is_dataclass(tp):
        return  # validated by its own check()
    is_tuple = typing.get_origin(tp) is tuple
    if is_tuple:
        if len(value) < rule.min_items:
            bad(f"needs at least {rule.min_items} value{'s' if rule.min_items > 1 else ''}")
        if rule.unique and len(set(value)) != len(value):
            bad("has duplicates")
    for v in value if is_tuple else (value,):
        why = _item_problem(v, rule)
        if why:
            bad(f"value {v!r} {why}" if is_tuple else why)
    if rule.check is not None:
        try:
            rule.check(value)
        except ValueError as exc:
            bad(str(exc))


def _item_problem(v: Any, rule: Rule) -> str:
    """Why one value breaks the rule, or ""."""
    if rule.also and v in rule.also and not isinstance(v, bool):
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return "must be a finite number"
    if rule.choices is not None and v not in rule.choices:
        return f"expected one of {', '.join(map(str, rule.choices))}"
    if (rule.ge is not None and not v >= rule.ge) or (rule.gt is not None and not v > rule.gt):
        return f"must be {_bounds_text(rule)}"
    if rule.nonempty and isinstance(v, str) and not v.strip():
        return "must not be empty"
    if rule.pattern is not None and not re.fullmatch(rule.pattern[0], v):
        return f"must be {rule.pattern[1]}"
    return ""


def _bounds_text(rule: Rule) -> str:
    parts = [f">= {_num(rule.ge)}"] if rule.ge is not None else []
    parts += [f"> {_num(rule.gt)}"] if rule.gt is not None else []
    text = " and ".join(parts)
    for v, meaning in (rule.also or {}).items():
        text += f", or {v} for {meaning}"
    return text


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def allowed_text(rule: Rule, tp: Any) -> str:
    """The bounds in words (the config reference's "allowed" column)."""
    parts = []
    if rule.choices is not None:
        parts.append(" / ".join(map(str, rule.choices)))
    if rule.ge is not None or rule.gt is not None:
        parts.append(_bounds_text(rule))
    if rule.pattern is not None:
        parts.append(rule.pattern[1])
    if rule.nonempty:
        parts.append("non-empty")
    if rule.min_items:
        parts.append(f"at least {rule.min_items} value{'s' if rule.min_items > 1 else ''}")
    if rule.unique:
        parts.append("no duplicates")
    if rule.check is not None and rule.check.__doc__:
        parts.append(rule.check.__doc__.strip().splitlines()[0].rstrip("."))
    text = "; ".join(parts)
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0].__name__
        return f"list of {item}" + (f": {text}" if text else "")
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return text or tp.__name__


# ---------------------------------------------------------------------------------------------- docs
def _default_text(value: Any) -> str:
    if dataclasses.is_dataclass(value):
        return "(the search keys)"
    if isinstance(value, str) and value:
        return f"`{value}`"  # as a --set value takes it
    return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"


def markdown_table(cls: type, exclude: tuple[str, ...] = ()) -> str:
    """``| key | default | allowed | meaning |``, one row per field of a config class, declaration order."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for name, (f, tp) in fields_of(cls).items():
        if name in exclude:
            continue
        rule = rule_of(f)
        cells = [f"`{name}`", _default_text(default_of(f)), allowed_text(rule, tp), rule.why]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------- --set
SET_HELP = "values are JSON where they parse, else strings; repeatable"


def add_set_argument(parser: argparse.ArgumentParser, example: str, what: str = "override config keys") -> None:
    """The ``--set KEY=VALUE [KEY=VALUE ...]`` option of every command, into ``args.sets`` (read it with
    ``parse_set``); ``what`` says which keys it overrides there."""
    parser.add_argument("--set", dest="sets", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                        help=f"{what}, e.g. --set {example} ({SET_HELP})")


def parse_set(items: typing.Iterable[str] | None) -> dict[str, Any]:
    """``["key=value", ...]`` -> {key: value}: values JSON where they parse, else strings; later keys win."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out
