"""The scan's Ray-free names in one place, for readers of scan tables (``compare.py``, ``tables.py``).

The scan itself is split by what it does: ``scan_metrics`` (hypervolume, gaps, scan.parquet rows),
``scan_space`` (lambda space, coarse grid, gap filling, config rules), ``scan_policy`` (the adaptive
policy's state machine) and, on the Ray side, ``scan_searcher`` (the policy as a Tune ``Searcher``).
New code imports from those modules; this one only keeps the names earlier callers import.
"""
from __future__ import annotations

from .scan_metrics import (HV_REF, SCAN_COLUMNS, SCAN_FILE, SCAN_SCHEMA, batch_scan_rows, conform_scan,
                           describe_round, grid_scan_table, hypervolume_of, hypervolume_of_means, largest_gap,
                           minmax_bounds, reference_costs, scan_row, scan_table, trial_objectives)
from .scan_space import check_adaptive, coarse_points, scanned_dims

__all__ = ["HV_REF", "SCAN_COLUMNS", "SCAN_FILE", "SCAN_SCHEMA", "batch_scan_rows", "check_adaptive", "coarse_points",
           "conform_scan", "describe_round", "grid_scan_table", "hypervolume_of", "hypervolume_of_means",
           "largest_gap", "minmax_bounds", "reference_costs", "scan_row", "scan_table", "scanned_dims",
           "trial_objectives"]
