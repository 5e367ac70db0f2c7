"""DRAM cost models: processor profiles, the analytic DRAM traffic model, network costs, and (in
``cost_models.service``, the only module that imports Ray) the cost service actor.

Importing this package does not import Ray.
"""
from .network import EdgeCostTable, NetworkCost, edge_cost_table, network_cost
from .profile import CostQueryError, Profile, list_profiles, load_profile
from .query import CostQuery, QueryFn, compute, local_query_fn
from .traffic import OpCost, op_cost

__all__ = [
    "CostQuery", "CostQueryError", "EdgeCostTable", "NetworkCost", "OpCost", "Profile", "QueryFn", "compute",
    "edge_cost_table", "list_profiles", "load_profile", "local_query_fn", "network_cost", "op_cost",
]
