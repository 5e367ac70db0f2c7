"""The cost service as a real Ray actor: batched, cached, exported, restartable, errors as answers; created
by one owner under a run-unique name, found by name, a missing one a clear error.

The module's local Ray is conftest's ``ray_local``; the actor takes no CPU (num_cpus=0)."""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pytest

ray = pytest.importorskip("ray")

from cost_models import CostQuery, CostQueryError, local_query_fn, search_cost_table  # noqa: E402
from orchestrator.cost_service import (EXPORT_SCHEMA, CostServiceMissing, actor_query_fn,  # noqa: E402
                                       cost_service_name, find_cost_service, start_cost_service)
from searchspace.config import SearchConfig  # noqa: E402

NAMESPACE = "hwnas"  # ray_local's
NAME = cost_service_name("hwnas-cost", "test")

GOOD = [CostQuery("mobile-npu", "sep_conv_3x3", 16, 16, 32, 32, 1, 1),
        CostQuery("eyeriss", "dil_conv_5x5", 32, 32, 16, 16, 2, 2),
        CostQuery("h100-eager", "factorized_reduce", 24, 48, 8, 8, 2, 1)]

BAD = {  # query -> a word its error message must contain
    "unknown profile": ({"profile": "tpu-v9", "op": "sep_conv_3x3", "c_in": 8, "h": 8}, "unknown profile"),
    "unknown op": ({"profile": "h100", "op": "conv_7x7", "c_in": 8, "h": 8}, "unknown operator"),
    "zero shape": ({"profile": "h100", "op": "sep_conv_3x3", "c_in": 0, "h": 8}, "positive integer"),
    "negative shape": ({"profile": "h100", "op": "sep_conv_3x3", "c_in": 8, "h": -4}, "positive integer"),
    "float shape": ({"profile": "h100", "op": "sep_conv_3x3", "c_in": 8, "h": 8.5}, "positive integer"),
    "string shape": ({"profile": "h100", "op": "sep_conv_3x3", "c_in": "8", "h": 8}, "positive integer"),
    "stride 3": ({"profile": "h100", "op": "max_pool_3x3", "c_in": 8, "h": 8, "stride": 3}, "stride"),
    "odd reduce": ({"profile": "h100", "op": "factorized_reduce", "c_in": 8, "h": 7, "stride": 2}, "even"),
    "unknown field": ({"profile": "h100", "op": "sep_conv_3x3", "c_in": 8, "h": 8, "depth": 3}, "unknown cost query field"),
}


@pytest.fixture(scope="module")
def service(ray_local):
    handle = start_cost_service(NAME, NAMESPACE)  # this test module owns it, as a driver does
    yield handle
    ray.kill(handle, no_restart=True)


def test_names_are_unique_per_run_and_a_missing_actor_is_a_clear_error(service):
    assert NAME.startswith("hwnas-cost-test-") and cost_service_name("hwnas-cost", "test") != NAME
    with pytest.raises(CostServiceMissing, match="hwnas-cost-nobody.*driver"):
        find_cost_service("hwnas-cost-nobody", NAMESPACE)


def test_batched_query_matches_local_model(service):
    answers = ray.get(service.query.remote(GOOD))
    assert [a["dram_bytes"] for a in answers] == [c.dram_bytes for c in local_query_fn(GOOD)]
    # plain dicts are queries too (c_out defaults to c_in, w to h)
    d = ray.get(service.query.remote([{"profile": "mobile-npu", "op": "sep_conv_3x3", "c_in": 16, "h": 32}]))
    assert d[0]["dram_bytes"] == answers[0]["dram_bytes"]


def test_cache_hits_and_found_by_name(service):
    before = ray.get(service.stats.remote())
    ray.get(service.query.remote(GOOD))
    after = ray.get(service.stats.remote())
    assert after["hits"] - before["hits"] == len(GOOD)
    assert after["misses"] == before["misses"]
    again = find_cost_service(NAME, NAMESPACE)  # what a trial does: the same actor, the same cache
    assert ray.get(again.stats.remote())["cached"] == after["cached"]


def test_export_table(service):
    ray.get(service.query.remote(GOOD))
    table = ray.get(service.export_table.remote())
    assert isinstance(table, pa.Table) and table.schema == EXPORT_SCHEMA
    assert table.num_rows == ray.get(service.stats.remote())["cached"] >= len(GOOD)
    rows = {(r["profile"], r["op"], r["c_in"], r["h"], r["stride"]): r for r in table.to_pylist()}
    r = rows[("eyeriss", "dil_conv_5x5", 32, 16, 2)]
    assert r["dram_bytes"] == r["dram_read_bytes"] + r["dram_write_bytes"] and r["profile_name"] == "eyeriss"
    assert r["dram_latencies"] >= 1  # every kernel pays at least one DRAM latency (the time model's unit)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_query_is_an_answer_and_the_actor_lives(service, case):
    query, word = BAD[case]
    answers = ray.get(service.query.remote([query, GOOD[0]]))
    assert word in answers[0]["error"]
    assert "dram_bytes" in answers[1]  # the good query in the same batch is answered
    with pytest.raises(CostQueryError, match=word):
        actor_query_fn(service)([query])
    assert ray.get(service.query.remote([GOOD[1]]))[0]["dram_bytes"] > 0  # and the next call too


def test_not_a_list_is_an_error_answer(service):
    answers = ray.get(service.query.remote("sep_conv_3x3"))
    assert "list" in answers[0]["error"]


def test_edge_cost_table_through_the_actor(service):
    config = SearchConfig(layers=3, channels=4, profile="edge-gpu", cost_batch=2)
    remote, local = search_cost_table(config, actor_query_fn(service)), search_cost_table(config)
    np.testing.assert_array_equal(remote.time_us, local.time_us)
    np.testing.assert_array_equal(remote.energy_uj, local.energy_uj)


def test_killed_actor_restarts_and_answers_the_same(service):
    first = ray.get(service.query.remote(GOOD))
    pid = ray.get(service.ping.remote())
    ray.kill(service, no_restart=False)  # asynchronous: wait for the restarted process, not the old one
    deadline = time.monotonic() + 60
    while True:  # calls retry across the restart (max_task_retries); allow for the restart itself
        try:
            if ray.get(service.ping.remote(), timeout=30) != pid:
                break
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            pass
        assert time.monotonic() < deadline, "the cost service did not come back"
        time.sleep(0.2)
    assert ray.get(service.query.remote(GOOD)) == first
    assert ray.get(service.stats.remote())["misses"] == len(GOOD)  # a fresh cache, same costs
