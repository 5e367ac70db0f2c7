"""The scan dimensions: every search key an experiment scans, declared once.

A dimension is a ``SearchConfig`` key that each trial sets from a list of values its experiment gives
(``ExperimentConfig.seeds`` -> the trial's ``seed``). Everything that names the dimensions derives them
from ``DIMENSIONS``: the experiment config's fields and spellings (``results.experiment_config``), the grid
and the Tune param space (``orchestrator.scan_strategy``), the adaptive scan's space, points and metrics
(``scan_space``, ``scan_policy``, ``scan_metrics``), the seed statistics' point key and columns
(``seedstats``), the trials table's columns and rows (``schema``), the console lines
(``orchestrator.progress``, ``orchestrator.experiment``), the plot's point labels (``plot``) and
``hwnas pareto``'s table.

``kind`` says how each part treats a dimension:

* ``seed``: one trial per value; the seed statistics are taken over it, so it is not a point coordinate;
* ``profile``: a category (the processor): a point coordinate, sorted first; an adaptive scan runs one;
* ``weight``: a weight of the search loss, off at 0 (no cost term); the adaptive scan spans it in log
  space from a fixed "zero position" below its smallest nonzero value;
* ``budget``: a cost budget, off at 0 (no budget): named in text only when set, a value it lacks reads as
  off, and the adaptive scan spans it in log space above 0.

Adding a dimension is one more ``ScanDimension`` here (its search key must be a ``SearchConfig`` key):
it becomes an experiment key, a grid axis, a column of trials.parquet and points.parquet and a coordinate
of every front point (``tests/test_dimensions.py``). The columns of the dimensions below keep the places
they had before this registry; a new one's column sits with its kind (at the end for a new kind).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

KINDS = ("seed", "profile", "weight", "budget")  # also the order of the kinds in tables


@dataclass(frozen=True)
class ScanDimension:
    """One scan dimension (module docstring)."""

    search_key: str  # the SearchConfig key each trial sets; its column in trials.parquet and points.parquet
    experiment_key: str  # the ExperimentConfig key that lists its values
    kind: str  # one of KINDS
    value_type: type  # int, float or str
    default: tuple  # the experiment key's default; () = the base search config's value
    why: str  # the experiment key's meaning (the docs' experiment config table)
    meaning: str  # the trials.parquet column's meaning (the docs' results tables)
    point_meaning: str = ""  # the points.parquet column's meaning ("" for the seed: not a point coordinate)
    bounds: Mapping[str, Any] = field(default_factory=dict)  # searchspace.schema.setting bounds of the values
    label: str = ""  # a front point's short label in plots ("lt=", "T<="); "" = not drawn
    fill: Any = None  # a row without a value, or a table written before the column existed, reads as this

    @property
    def off(self) -> Any:
        """The value that turns the dimension off (0.0 for a weight or a budget), None if none does."""
        return 0.0 if self.kind in ("weight", "budget") else None

    def shown(self, value: Any) -> bool:
        """Whether a text names this dimension's ``value``: a budget only when it is set."""
        return self.kind != "budget" or bool(value)

    def cell(self, value: Any) -> Any:
        """A raw value (JSON, a Tune config) as its column holds it; unknown -> ``fill``."""
        if value is None:
            return self.fill
        try:
            number = float(value) if self.value_type in (int, float) else None
        except (TypeError, ValueError):
            return self.fill
        if self.value_type is int:
            return int(round(number)) if number == number and abs(number) != float("inf") else self.fill
        if self.value_type is float:
            return number or (self.fill if self.fill is not None else number)
        return str(value)


DIMENSIONS: tuple[ScanDimension, ...] = (
    ScanDimension("seed", "seeds", "seed", int, (0,), "scan dimension: seed variance is part of every front",
                  "random seed of the trial", bounds={"min_items": 1, "unique": True}),
    ScanDimension("lambda_time", "lambda_time", "weight", float, (0.0,),
                  "scan dimension: weights of the DRAM time term (the cost-loss patent, CN112001491A)",
                  "weight of the expected DRAM time term in the search loss", "weight of the DRAM time term",
                  bounds={"min_items": 1, "ge": 0}, label="lt="),
    ScanDimension("lambda_energy", "lambda_energy", "weight", float, (0.0,),
                  "scan dimension: weights of the DRAM energy term (the cost-loss patent, CN112001491A)",
                  "weight of the expected DRAM energy term in the search loss", "weight of the DRAM energy term",
                  bounds={"min_items": 1, "ge": 0}, label="le="),
    ScanDimension("dram_time_budget_us", "dram_time_budget_us", "budget", float, (0.0,),
                  "scan dimension: DRAM time budgets of the deployed network, us (0 = off; search key of the "
                  "same name)", "DRAM time budget of the deployed network in the search loss, us (0 = off)",
                  "DRAM time budget of the point, us (0 = off)", bounds={"min_items": 1, "ge": 0}, label="T<=",
                  fill=0.0),
    ScanDimension("dram_energy_budget_uj", "dram_energy_budget_uj", "budget", float, (0.0,),
                  "scan dimension: DRAM energy budgets, uJ (0 = off)",
                  "DRAM energy budget of the deployed network in the search loss, uJ (0 = off)",
                  "DRAM energy budget of the point, uJ (0 = off)", bounds={"min_items": 1, "ge": 0}, label="E<=",
                  fill=0.0),
    ScanDimension("profile", "profiles", "profile", str, (), "scan dimension: processors; [] = [search.profile]",
                  "processor profile whose DRAM costs entered the loss", "processor profile",
                  bounds={"nonempty": True}),
)


def of_kind(*kinds: str) -> tuple[ScanDimension, ...]:
    """The dimensions of ``kinds``, kind by kind in ``KINDS`` order, each kind in registry order."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown dimension kind(s) {sorted(unknown)}; kinds: {', '.join(KINDS)}")
    return tuple(d for k in KINDS if k in kinds for d in DIMENSIONS if d.kind == k)


def keys(dims: Sequence[ScanDimension]) -> tuple[str, ...]:
    return tuple(d.search_key for d in dims)


def by_search_key() -> dict[str, ScanDimension]:
    """search key -> its dimension."""
    return {d.search_key: d for d in DIMENSIONS}


def seed_dimension() -> ScanDimension:
    return next(d for d in DIMENSIONS if d.kind == "seed")


def profile_dimension() -> ScanDimension:
    return next(d for d in DIMENSIONS if d.kind == "profile")


def point_dimensions() -> tuple[ScanDimension, ...]:
    """The coordinates of a lambda point, what the seed statistics group trials by: every kind but the seed."""
    return of_kind("profile", "weight", "budget")


def coordinate_dimensions() -> tuple[ScanDimension, ...]:
    """What the adaptive scan spans, in registry order: the weights, then the budgets (a point's values)."""
    return of_kind("weight", "budget")


def point_text(row: Mapping[str, Any], dims: Sequence[ScanDimension], numbers: str = "g",
               short: bool = False) -> str:
    """``seed=0 lambda_time=0.5 lambda_energy=0``: the dimensions of ``row`` a text names (a budget only when
    set). ``numbers="g"`` writes floats with ``:g``, ``"raw"`` as ``str()``; ``short`` uses the plot labels."""
    parts = []
    for d in dims:
        value = row.get(d.search_key)
        if not d.shown(value):
            continue
        text = f"{value:g}" if numbers == "g" and d.value_type is float else f"{value}"
        parts.append(f"{d.label if short else d.search_key + '='}{text}")
    return " ".join(parts)


def columns(dims: Sequence[ScanDimension], arrow_type: Callable[[type], Any],
            meaning: Callable[[ScanDimension], str]) -> tuple[tuple[str, Any, str], ...]:
    """(name, arrow type, meaning) of each dimension's column, as ``results.schema`` declares columns."""
    return tuple((d.search_key, arrow_type(d.value_type), meaning(d)) for d in dims)
