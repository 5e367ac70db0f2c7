"""Picking one point of a Pareto front (``hwnas train --trial ID | --pick RULE``). Ray-free, torch-free.

Rules, over the front's completed rows with finite accuracy, ``dram_time_us`` and ``dram_energy_uj``:

* ``most-accurate``: highest accuracy (ties: lower DRAM time, then trial id).
* ``cheapest``: lowest DRAM time (ties: higher accuracy, then trial id).
* ``knee``: error and DRAM time min-max normalised over the front, the point nearest to (0, 0), the ideal
  corner (ties: higher accuracy). With one point it is that point.
* ``budget:dram_time_us=X`` / ``budget:dram_energy_uj=X``: the most accurate point whose DRAM time
  (energy) is at most X; none under the budget is an error that names the cheapest one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from searchspace.errors import InputError

RULES = ("knee", "most-accurate", "cheapest", "budget:dram_time_us=X", "budget:dram_energy_uj=X")
BUDGET_KEYS = ("dram_time_us", "dram_energy_uj")


class PickError(InputError):
    """A pick rule that is not one, or a front with no point the rule (or trial id) can pick: the message
    says which and what there is (a ``ValueError``; exit code 2)."""


@dataclass(frozen=True)
class PickRule:
    name: str  # knee / most-accurate / cheapest / budget
    budget_key: str = ""
    budget: float = 0.0


def parse_rule(text: str) -> PickRule:
    """``knee`` | ``most-accurate`` | ``cheapest`` | ``budget:dram_time_us=X`` | ``budget:dram_energy_uj=X``."""
    text = str(text).strip()
    if text in ("knee", "most-accurate", "cheapest"):
        return PickRule(text)
    if text.startswith("budget:"):
        key, sep, value = text[len("budget:"):].partition("=")
        if not sep or key not in BUDGET_KEYS:
            raise PickError(f"--pick {text!r}: a budget is budget:dram_time_us=X or budget:dram_energy_uj=X")
        try:
            budget = float(value)
        except ValueError:
            raise PickError(f"--pick {text!r}: the budget {value!r} is not a number") from None
        if not math.isfinite(budget) or budget <= 0:
            raise PickError(f"--pick {text!r}: the budget must be a positive number")
        return PickRule("budget", key, budget)
    raise PickError(f"unknown --pick rule {text!r}; rules: {', '.join(RULES)}")


def _usable(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    def finite(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    return [r for r in rows if r.get("status", "completed") == "completed"
            and all(finite(r.get(k)) for k in ("accuracy", "dram_time_us", "dram_energy_uj"))]


def pick(rows: Sequence[Mapping[str, Any]], rule: PickRule | str) -> Mapping[str, Any]:
    """The row of ``rows`` (a front, as dicts) that ``rule`` picks; ``PickError`` when none qualifies."""
    rule = parse_rule(rule) if isinstance(rule, str) else rule
    cands = _usable(rows)
    if not cands:
        raise PickError("the front has no completed point with finite accuracy and DRAM cost to pick from")
    tid = lambda r: str(r.get("trial_id", ""))  # noqa: E731 - the last tie-breaker
    if rule.name == "most-accurate":
        return min(cands, key=lambda r: (-r["accuracy"], r["dram_time_us"], tid(r)))
    if rule.name == "cheapest":
        return min(cands, key=lambda r: (r["dram_time_us"], -r["accuracy"], tid(r)))
    if rule.name == "budget":
        within = [r for r in cands if r[rule.budget_key] <= rule.budget]
        if not within:
            low = min(cands, key=lambda r: r[rule.budget_key])
            raise PickError(f"no front point has {rule.budget_key} <= {rule.budget:g}; the cheapest has "
                             f"{low[rule.budget_key]:.4g} (trial {tid(low)})")
        return min(within, key=lambda r: (-r["accuracy"], r[rule.budget_key], tid(r)))
    errors = [1.0 - r["accuracy"] for r in cands]
    times = [r["dram_time_us"] for r in cands]

    def norm(v: float, vs: list[float]) -> float:
        span = max(vs) - min(vs)
        return (v - min(vs)) / span if span > 0 else 0.0

    return min(cands, key=lambda r: (math.hypot(norm(1.0 - r["accuracy"], errors), norm(r["dram_time_us"], times)),
                                     -r["accuracy"], tid(r)))


def by_trial(rows: Sequence[Mapping[str, Any]], trial_id: str) -> Mapping[str, Any]:
    """The row of trial ``trial_id`` (any row of trials.parquet, on the front or not)."""
    for r in rows:
        if str(r.get("trial_id")) == trial_id:
            if r.get("status", "completed") != "completed" or not r.get("genotype"):
                raise PickError(f"trial {trial_id} is {r.get('status')}: it has no genotype to train")
            return r
    known = ", ".join(sorted(str(r.get("trial_id")) for r in rows)[:10])
    raise PickError(f"no trial {trial_id!r} in the experiment; trials: {known}")
