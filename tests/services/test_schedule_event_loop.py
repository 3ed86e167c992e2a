"""A real headwater process keeps answering /health within 100 ms while a request registers
the most expensive schedules we can write (before the fix, one impossible rrule kept the
event loop busy for about 20 s, /health included)."""

from __future__ import annotations

import http.client
import threading
import time

import pytest

from tests import factories as f

pytestmark = pytest.mark.slow

CREATE_FLOW = "mutation($input: create_flow_input!) { create_flow(input: $input) { id } }"


def rrule(text: str, **extra) -> dict:
    return {"type": "RRuleClock", "rrule_obj": {"type": "rrule", "rr": text, **extra}}


def worst_schedules() -> list[dict]:
    """Each costs the whole search budget; the rule texts differ, so no cache helps."""
    schedules = []
    for month in range(1, 13):
        schedules.append({"clocks": [rrule(f"FREQ=SECONDLY;BYMONTH={month};BYMONTHDAY=31,-31;BYMONTH=2;BYSETPOS=1")]})
        schedules.append({"clocks": [{"type": "RRuleClock", "rrule_obj": {
            "type": "rruleset", "_rrule": [{"type": "rrule", "rr": f"FREQ=SECONDLY;INTERVAL={month}"}],
            "_exrule": [{"type": "rrule", "rr": f"FREQ=SECONDLY;INTERVAL={month}"}]}}]})
        schedules.append({"clocks": [rrule(f"FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30;BYHOUR={month}")]})
        schedules.append({
            "clocks": [{"type": "CronClock", "cron": f"* {month} * * * *"}],
            "filters": [{"fn": "prefect.schedules.filters.is_weekday", "kwargs": {}},
                        {"fn": "prefect.schedules.filters.is_weekend", "kwargs": {}}],
        })
    return schedules


def health_latencies(url: str, stop: threading.Event) -> list[float]:
    host, port = url.removeprefix("http://").split(":")
    latencies = []
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    while not stop.is_set():
        started = time.perf_counter()
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        assert response.status == 200
        time.sleep(0.01)
    connection.close()
    return latencies


def test_health_answers_while_the_worst_schedules_are_registered(live_server, tenant_id):
    project = live_server.query(
        "mutation($input: create_project_input!) { create_project(input: $input) { id } }",
        {"input": {"tenant_id": tenant_id, "name": "worst-schedules"}},
    )["data"]["create_project"]["id"]

    results: list[dict] = []
    durations: list[float] = []

    def register_all() -> None:
        for index, schedule in enumerate(worst_schedules()):
            flow = f.flow(f"worst-{index}", schedule=schedule)
            started = time.perf_counter()
            results.append(live_server.query(CREATE_FLOW, {"input": {"project_id": project, "serialized_flow": flow}}))
            durations.append(time.perf_counter() - started)

    live_server.query("{ hello }")  # warm up the server's first-request paths
    stop = threading.Event()
    latencies: list[float] = []
    poller = threading.Thread(target=lambda: latencies.extend(health_latencies(live_server.url, stop)))
    poller.start()
    try:
        register_all()
    finally:
        stop.set()
        poller.join()

    assert all(r["errors"][0]["message"].startswith("The schedule's ") for r in results), results
    assert len(latencies) > 20, "/health was polled throughout"
    busy = sum(durations)
    assert busy > 1.0, f"the registrations did real work ({busy:.2f}s)"
    worst = max(latencies)
    print(f"{len(results)} registrations in {busy:.2f}s; {len(latencies)} /health calls, max {worst * 1000:.1f} ms")
    assert worst < 0.1, f"/health took up to {worst * 1000:.0f} ms (median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms)"
