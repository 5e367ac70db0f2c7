"""DRAM cost models: processor profiles, the analytic DRAM traffic model, network costs.

Reads the search space (``searchspace``) only: no torch, no Ray. The Ray actor that serves these
queries to every trial of an experiment lives in ``orchestrator.cost_service``.
"""
from .network import EdgeCostTable, NetworkCost, derived_network_cost, edge_cost_table, network_cost, search_cost_table
from .profile import CostQueryError, Profile, list_profiles, load_profile
from .query import CostQuery, QueryFn, compute, local_query_fn
from .traffic import OpCost, op_cost

__all__ = [
    "CostQuery", "CostQueryError", "EdgeCostTable", "NetworkCost", "OpCost", "Profile", "QueryFn", "compute",
    "derived_network_cost", "edge_cost_table", "list_profiles", "load_profile", "local_query_fn", "network_cost",
    "op_cost", "search_cost_table",
]
