"""Cost queries as values: what a trial asks for, and the in-process way to answer a batch of them.

A :class:`CostQuery` is hashable (the cost service's cache key) and converts to and from a plain dict
(what crosses the Ray boundary and what the exported table stores). ``QueryFn`` is the one interface
the network-level code needs: :func:`local_query_fn` answers in this process (``hwnas trial``, no Ray),
``orchestrator.cost_service.actor_query_fn(handle)`` answers through the experiment's cost service actor.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .profile import CostQueryError, Profile, load_profile
from .traffic import OpCost, op_cost

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CostQuery:
    """One operator on one input shape on one processor: ``(profile, op, c_in, c_out, h, w, stride, batch)``."""

    profile: str  # built-in profile name or profile file path
    op: str  # a name of searchspace.ops.OPS
    c_in: int
    c_out: int
    h: int
    w: int
    stride: int = 1
    batch: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_any(cls, q: "CostQuery | Mapping[str, Any]") -> "CostQuery":
        """A CostQuery from itself or a plain dict; ``c_out`` defaults to ``c_in``, ``w`` to ``h``."""
        if isinstance(q, CostQuery):
            return q
        if not isinstance(q, Mapping):
            raise CostQueryError(f"a cost query must be a CostQuery or a dict, got {type(q).__name__}: {q!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(q) - names)
        if unknown:
            raise CostQueryError(f"unknown cost query field(s) {', '.join(unknown)}; fields: {', '.join(names)}")
        missing = [k for k in ("profile", "op", "c_in", "h") if k not in q]
        if missing:
            raise CostQueryError(f"cost query {dict(q)!r} lacks field(s) {', '.join(missing)}")
        d = dict(q)
        d.setdefault("c_out", d["c_in"])
        d.setdefault("w", d["h"])
        return cls(**d)

    def key(self) -> tuple:
        return dataclasses.astuple(self)


#: Answers a batch of queries, in order. Raises CostQueryError for the first bad query.
QueryFn = Callable[[list[CostQuery]], list[OpCost]]

def compute(query: CostQuery | Mapping[str, Any], profiles: dict[str, Profile] | None = None) -> OpCost:
    """One query, in process. Bad input raises :class:`CostQueryError` naming the value. The profile comes
    from ``load_profile`` (its one cache: parsed once per file version, an edited file reloads); ``profiles``
    holds those a batch already looked up, so each file is checked once per batch."""
    q = CostQuery.from_any(query)
    if not isinstance(q.profile, str):
        raise CostQueryError(f"profile must be a name or a file path, got {q.profile!r}")
    if not isinstance(q.op, str):
        raise CostQueryError(f"op must be an operator name, got {q.op!r}")
    if profiles is None:
        profile = load_profile(q.profile)
    elif q.profile in profiles:
        profile = profiles[q.profile]
    else:
        profile = profiles[q.profile] = load_profile(q.profile)
    return op_cost(profile, q.op, q.c_in, q.h, q.w, q.stride, q.batch, q.c_out)


def local_query_fn(queries: list[CostQuery]) -> list[OpCost]:
    """The in-process :data:`QueryFn`: answers every query here, no Ray, no cache beyond the profiles."""
    profiles: dict[str, Profile] = {}
    return [compute(q, profiles) for q in queries]
