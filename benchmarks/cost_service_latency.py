"""Query latency of the cost service actor: median single-query and batched-query round trips.

  /work/shared/tools/loopback-only .venv/bin/python benchmarks/cost_service_latency.py [--calls 1000]

Starts a local Ray (num_cpus=1), creates the named cost service, warms its cache, then times
``ray.get(handle.query.remote(batch))`` for a 1-query batch and for the batch of a whole supernet edge
table (every (cell, edge, candidate) of the default SearchConfig, deduplicated as search_cost_table sends
it), each ``--calls`` times (cached answers: this is the service overhead a trial pays), and the same
batch computed in process by ``local_query_fn`` (uncached model cost) for reference. Not a test.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import ray  # noqa: E402

from cost_models import CostQuery, local_query_fn  # noqa: E402
from orchestrator.cost_service import cost_service_name, start_cost_service  # noqa: E402
from searchspace.config import SearchConfig  # noqa: E402
from searchspace.layout import network_spec, supernet_edge_shapes  # noqa: E402
from searchspace.ops import CANDIDATES  # noqa: E402


def _table_queries(config: SearchConfig) -> list[CostQuery]:
    qs = [CostQuery(config.profile, op, c, c, h, w, s, config.cost_batch)
          for row in supernet_edge_shapes(network_spec(config)) for (c, h, w, s) in row for op in CANDIDATES]
    return list(dict.fromkeys(qs))


def _median_us(fn, calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per measurement (>= 1000)")
    args = parser.parse_args()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False,
             namespace="hwnas-latency-bench")
    try:
        handle = start_cost_service(cost_service_name("hwnas-cost", "latency"))
        single = [CostQuery("mobile-npu", "sep_conv_3x3", 16, 16, 32, 32, 1, 1)]
        batch = _table_queries(SearchConfig())
        for qs in (single, batch):  # warm the cache and the worker
            for _ in range(20):
                ray.get(handle.query.remote(qs))
        t_single = _median_us(lambda: ray.get(handle.query.remote(single)), args.calls)
        t_batch = _median_us(lambda: ray.get(handle.query.remote(batch)), args.calls)
        t_local = _median_us(lambda: local_query_fn(batch), max(50, args.calls // 10))
        stats = ray.get(handle.stats.remote())
    finally:
        ray.shutdown()
    print(f"cost service query latency, median over {args.calls} calls (cached answers)")
    print(f"  single query            : {t_single:9.1f} us per call")
    print(f"  batch of {len(batch):3d} queries    : {t_batch:9.1f} us per call ({t_batch / len(batch):.1f} us per query)")
    print(f"  same batch, in process  : {t_local:9.1f} us (local_query_fn, uncached model, median of "
          f"{max(50, args.calls // 10)})")
    print(f"  service stats           : {stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
