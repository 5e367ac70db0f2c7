"""The cost service: one named Ray actor per experiment that answers every trial's DRAM cost queries.

* One owner: the experiment's driver creates it (:func:`start_cost_service`) under a name unique to that
  run (:func:`cost_service_name`), before any trial, and owns it (not detached); trials only look it up
  (:func:`find_cost_service`), so every trial of an experiment shares one actor and one cache, and two
  experiments on one cluster never share one.
* Restartable: ``max_restarts=-1`` (Ray restarts it whenever it dies while its driver lives) and ``max_task_retries`` so a
  call in flight when it died is re-sent to the restarted actor. The model is a pure function, so a
  restarted actor (empty cache) answers exactly the same costs.
* Batched, cached: :meth:`CostServiceImpl.query` takes a list of queries (``CostQuery`` or plain dicts)
  and answers a list of dicts, one per query, in order; results are cached in memory.
* Errors are answers: a bad query (unknown profile or operator, non-positive or non-integer shape,
  unsupported stride) gets ``{"error": message, "query": ...}`` and the actor stays alive;
  :func:`actor_query_fn` turns it into a :class:`CostQueryError` in the caller.
* :meth:`CostServiceImpl.export_table` returns everything it computed as a ``pyarrow.Table``.
* Observable calls (``probe_dir``, off by default): every ``query`` call marks itself in flight with a
  file ``query-<pid>-<n>`` that it removes when it answers, and waits (bounded) while ``<probe_dir>/hold``
  exists. That is how the fault test kills the service *while* a trial's call is in flight.

The Ray wrapper around ``cost_models`` (which itself never imports Ray).
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa
import ray

from cost_models.profile import CostQueryError
from cost_models.query import CostQuery, QueryFn, compute
from cost_models.traffic import OpCost

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "hwnas-cost"  # the config key cost_service: prefix of every actor name
#: Ray restarts the actor without bound; a call is re-sent this many times across restarts.
MAX_TASK_RETRIES = 5
PROBE_HOLD_FILE = "hold"  # in probe_dir: while it exists, query calls wait before answering
PROBE_HOLD_MAX_S = 120.0  # never wait longer than this, whatever the probe folder says

_QUERY_SCHEMA = [("profile", pa.string()), ("op", pa.string()), ("c_in", pa.int64()), ("c_out", pa.int64()),
                 ("h", pa.int64()), ("w", pa.int64()), ("stride", pa.int64()), ("batch", pa.int64())]
_COST_SCHEMA = [("profile_name", pa.string()), ("dram_read_bytes", pa.int64()), ("dram_write_bytes", pa.int64()),
                ("dram_bytes", pa.int64()), ("compulsory_bytes", pa.int64()), ("dram_transfers", pa.int64()),
                ("dram_latencies", pa.int64()),
                ("onchip_intermediates", pa.int64()), ("spilled_intermediates", pa.int64()),
                ("dram_time_us", pa.float64()), ("dram_energy_uj", pa.float64()), ("scratch_bytes", pa.int64())]
EXPORT_SCHEMA = pa.schema(_QUERY_SCHEMA + _COST_SCHEMA)


class CostServiceImpl:
    """The actor's body, a plain class (usable and testable without Ray)."""

    def __init__(self, probe_dir: str | None = None) -> None:
        self._cache: dict[CostQuery, OpCost] = {}
        self._hits = self._misses = self._errors = self._calls = 0
        self._probe = Path(probe_dir) if probe_dir else None
        log.info("cost service started (pid %d)", os.getpid())

    def query(self, queries: list[CostQuery | Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Answer a batch, in order: a cost dict (``OpCost.to_dict()``) or ``{"error", "query"}`` each."""
        self._calls += 1
        if self._probe is None:
            return self._answer(queries)
        marker = self._probe / f"query-{os.getpid()}-{self._calls}"
        marker.write_text(str(len(queries) if isinstance(queries, (list, tuple)) else 0))
        deadline = time.monotonic() + PROBE_HOLD_MAX_S
        while (self._probe / PROBE_HOLD_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # held by the probe's owner (a fault test), bounded
        answers = self._answer(queries)
        marker.unlink(missing_ok=True)
        return answers

    def _answer(self, queries: list[CostQuery | Mapping[str, Any]]) -> list[dict[str, Any]]:
        if not isinstance(queries, (list, tuple)):
            self._errors += 1
            return [{"error": f"query expects a list of cost queries, got {type(queries).__name__}", "query": None}]
        return [self._one(q) for q in queries]

    def _one(self, raw: CostQuery | Mapping[str, Any]) -> dict[str, Any]:
        try:
            q = CostQuery.from_any(raw)
            cost = self._cache.get(q)
            if cost is not None:
                self._hits += 1
                return cost.to_dict()
            cost = compute(q)
        except (CostQueryError, TypeError) as exc:
            self._errors += 1
            return {"error": str(exc), "query": _plain(raw)}
        except Exception as exc:  # a model bug must not kill the service every trial depends on
            self._errors += 1
            log.exception("cost service: internal error on %r", raw)
            return {"error": f"internal error {type(exc).__name__}: {exc}", "query": _plain(raw)}
        self._misses += 1
        self._cache[q] = cost
        return cost.to_dict()

    def stats(self) -> dict[str, int]:
        return {"hits": self._hits, "misses": self._misses, "errors": self._errors, "calls": self._calls,
                "cached": len(self._cache), "pid": os.getpid()}

    def export_table(self) -> pa.Table:
        """One row per cached query: the query fields, then the cost fields (``profile_name`` = the
        profile's own name, ``profile`` = what the query said: a name or a file path)."""
        cols: dict[str, list] = {name: [] for name in EXPORT_SCHEMA.names}
        for q, cost in self._cache.items():
            for name, _ in _QUERY_SCHEMA:
                cols[name].append(getattr(q, name))
            cols["profile_name"].append(cost.profile)
            for name, _ in _COST_SCHEMA[1:]:
                cols[name].append(getattr(cost, name))
        return pa.table(cols, schema=EXPORT_SCHEMA)

    def ping(self) -> int:
        return os.getpid()


def _plain(raw: Any) -> Any:
    if isinstance(raw, CostQuery):
        return raw.to_dict()
    return dict(raw) if isinstance(raw, Mapping) else repr(raw)


#: The Ray actor class. num_cpus=0: the service never takes a CPU slot a trial could use.
CostService = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=MAX_TASK_RETRIES)(CostServiceImpl)


class CostServiceMissing(RuntimeError):
    """A trial looked for its experiment's cost actor and it was not there."""


def cost_service_name(prefix: str, experiment: str) -> str:
    """A name unique to one run of one experiment: ``<prefix>-<experiment>-<8 hex digits>``, so two
    experiments (or two runs of one) on a shared cluster never share, or take down, each other's actor."""
    return f"{prefix}-{experiment}-{uuid.uuid4().hex[:8]}"


def start_cost_service(name: str, namespace: str | None = None, probe_dir: str | None = None):
    """Create the experiment's cost actor; only the experiment's driver calls this. ``probe_dir``: see
    the module docstring (a restarted actor gets the same one).

    Not detached: the driver owns it and keeps the handle for the whole experiment, so it ends with the
    driver (a killed driver takes its own actor down and nobody else's). The name must be free (see
    ``cost_service_name``). Ray must be initialised."""
    if not ray.is_initialized():
        raise RuntimeError("start_cost_service needs ray.init() first (hwnas trial without Ray computes in process)")
    options: dict[str, Any] = dict(name=name, max_restarts=-1, max_task_retries=MAX_TASK_RETRIES)
    if namespace is not None:
        options["namespace"] = namespace
    handle = CostService.options(**options).remote(probe_dir)
    log.debug("cost service %r started (namespace %r)", name, namespace)
    return handle


def find_cost_service(name: str, namespace: str | None = None):
    """The running cost actor ``name`` (a trial's way to it); :class:`CostServiceMissing` if there is none."""
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        raise CostServiceMissing(
            f"cost service actor {name!r} (namespace {namespace!r}) does not exist: the experiment's driver "
            f"creates it before any trial and it ends with that driver; is the driver still running?") from None


def answers_to_costs(answers: list[dict[str, Any]]) -> list[OpCost]:
    """The service's answers as OpCosts; the first error answer raises :class:`CostQueryError`."""
    costs = []
    for a in answers:
        if "error" in a:
            raise CostQueryError(f"cost service: {a['error']} (query {a.get('query')!r})")
        costs.append(OpCost.from_dict(a))
    return costs


def actor_query_fn(handle) -> QueryFn:
    """A :data:`QueryFn` that asks the cost service (one remote call per batch)."""

    def query_fn(queries: list[CostQuery]) -> list[OpCost]:
        return answers_to_costs(ray.get(handle.query.remote(list(queries))))

    return query_fn
