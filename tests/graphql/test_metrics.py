"""`/metrics`: every family present and moving with real requests and service passes, the
`read` role rule, bounded labels, and the database-derived gauges cached."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import asynccontextmanager

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from headwater.server.app import create_app
from headwater.server.db.engine import create_sessionmaker, transaction
from headwater.server.domain import api_keys
from headwater.services.zombie_killer import ZombieKiller
from tests import factories as f


@asynccontextmanager
async def client(settings):
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://headwater.test") as http:
            yield application, http


async def scrape(http: httpx.AsyncClient, **headers: str) -> dict[tuple[str, frozenset], float]:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: dict, name: str) -> list[dict]:
    return [dict(labels) for sample_name, labels in samples if sample_name == name]


async def post(http, query: str, variables=None, **headers: str) -> dict:
    response = await http.post("/", json={"query": query, "variables": json.dumps(variables)}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def make_run(gql, tenant_id: str, labels: list[str] | None = None) -> tuple[str, str]:
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": f"p-{uuid.uuid4().hex[:6]}"}))["id"]
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow()}))["id"]
    run_input = {"flow_id": flow_id}
    if labels is not None:
        run_input["labels"] = labels
    return flow_id, (await gql.mutate("create_flow_run", run_input))["id"]


HEARTBEAT = 'mutation { update_flow_run_heartbeat(input: {flow_run_id: "%s"}) { success } }'
DURATION = "headwater_graphql_request_duration_seconds_count"


async def test_requests_are_counted_by_operation_with_latency(http, gql, tenant_id):
    _, run_id = await make_run(gql, tenant_id)
    before = await scrape(http)
    for _ in range(3):
        assert (await post(http, HEARTBEAT % run_id))["data"]["update_flow_run_heartbeat"]["success"]
    await post(http, "query Named { hello }")
    after = await scrape(http)
    labels = {"type": "mutation", "operation": "update_flow_run_heartbeat"}
    assert value(after, DURATION, **labels) - value(before, DURATION, **labels) == 3
    assert value(after, "headwater_graphql_request_duration_seconds_sum", **labels) > value(
        before, "headwater_graphql_request_duration_seconds_sum", **labels)
    bucket = {**labels, "le": "+Inf"}
    assert value(after, "headwater_graphql_request_duration_seconds_bucket", **bucket) >= 3
    named = {"type": "query", "operation": "Named"}
    assert value(after, DURATION, **named) - value(before, DURATION, **named) == 1
    # HTTP responses by route template and status (the scrape itself included).
    assert value(after, "headwater_http_requests_total", route="/", status="200") - value(
        before, "headwater_http_requests_total", route="/", status="200") == 4
    assert value(after, "headwater_http_requests_total", route="/metrics", status="200") >= 1


async def test_errors_are_counted_by_code(http, gql, tenant_id):
    before = await scrape(http)
    missing = str(uuid.uuid4())
    body = await post(http, 'mutation { delete_flow_run(input: {flow_run_id: "%s"}) { success } }' % missing)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    body = await post(http, "{ no_such_field }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    body = await post(http, "{ unclosed ")
    after = await scrape(http)

    def delta(**labels):
        return value(after, "headwater_graphql_errors_total", **labels) - value(before, "headwater_graphql_errors_total", **labels)

    assert delta(type="mutation", operation="delete_flow_run", code="NOT_FOUND") == 1
    assert delta(type="query", operation="_other", code="GRAPHQL_VALIDATION_FAILED") == 1, "not a schema field"
    assert delta(type="", operation="_invalid", code=body["errors"][0]["extensions"]["code"]) == 1


async def test_a_thousand_documents_with_literal_ids_make_one_label(http, gql, tenant_id):
    _, run_id = await make_run(gql, tenant_id)
    for i in range(1000):
        flow_run = str(uuid.UUID(int=i))
        await post(http, '{ flow_run_by_pk(id: "%s") { id } }' % flow_run)
    await post(http, '{ flow_run_by_pk(id: "%s") { id name } hello }' % run_id)
    # Names a client chooses are capped too: a thousand operation names stay within the budget.
    for i in range(1000):
        await post(http, "query Op_%s_%d { hello }" % (uuid.uuid4().hex, i))
    samples = await scrape(http)
    operations = {labels["operation"] for labels in series(samples, DURATION)}
    assert "flow_run_by_pk" in operations and "flow_run_by_pk+hello" in operations
    # The literal ids are 00000000-0000-...; a chosen name's random hex may hold "0000", never "-0000-".
    assert not any(run_id in operation or "-0000-" in operation for operation in operations)
    from headwater.server.graphql.schema import schema
    from headwater.server.metrics.operations import MAX_CHOSEN_LABELS, labels_for

    # The process may have seen any of the schema's root fields (other tests ran before): those
    # (and __schema, __type, __typename) are bounded by the schema; everything else shares the
    # budget (plus _other and _invalid).
    chosen = operations - labels_for(schema._schema).root_names - {"_other", "_invalid", ""}
    assert len(chosen) <= MAX_CHOSEN_LABELS, len(chosen)
    assert "_other" in operations


async def test_pool_in_use_and_waiting(settings):
    async with client(settings.replace(db_pool_size=2)) as (application, http):
        engine = application.state.engine
        samples = await scrape(http)
        assert value(samples, "headwater_db_pool_size") == 2
        idle_in_use = value(samples, "headwater_db_pool_connections_in_use")
        held = [await engine.connect().start() for _ in range(2)]
        try:
            waiter = asyncio.create_task(engine.connect().start())
            await asyncio.sleep(0.2)
            samples = await scrape(http)  # answered although the request pool is exhausted
            assert value(samples, "headwater_db_pool_connections_in_use") == idle_in_use + 2
            assert value(samples, "headwater_db_pool_connections_open") == 2
            assert value(samples, "headwater_db_pool_waiting") == 1
        finally:
            for connection in held:
                await connection.close()
        await (await waiter).close()
        await scrape(http)  # the waiting peak is reported once, then the current count
        samples = await scrape(http)
        assert value(samples, "headwater_db_pool_waiting") == 0
        assert value(samples, "headwater_db_pool_connections_in_use") == 0


async def test_flow_runs_by_state_and_queue_depth(settings, gql, tenant_id, db):
    async with client(settings) as (application, http):
        application.state.metrics.run_gauges.cache_seconds = 0
        empty = await scrape(http)
        assert value(empty, "headwater_run_gauges_up") == 1
        assert series(empty, "headwater_queue_depth") == []
        await make_run(gql, tenant_id, labels=["gpu", "eu"])
        await make_run(gql, tenant_id, labels=["eu", "gpu"])
        await make_run(gql, tenant_id, labels=[])
        _, later = await make_run(gql, tenant_id, labels=["gpu", "eu"])
        await db.execute(text("UPDATE flow_run SET state_start_time = now() + interval '1 hour' WHERE id = :id"),
                         {"id": later})
        _, running = await make_run(gql, tenant_id, labels=["gpu", "eu"])
        await db.execute(text("UPDATE flow_run SET state = 'Running' WHERE id = :id"), {"id": running})
        await db.commit()
        samples = await scrape(http)
        assert value(samples, "headwater_flow_runs", state="Scheduled") == 4
        assert value(samples, "headwater_flow_runs", state="Running") == 1
        assert value(samples, "headwater_queue_depth", labels="eu,gpu") == 2, "same labels in any order; not the future one"
        assert value(samples, "headwater_queue_depth", labels="") == 1


async def test_run_counts_are_cached_between_scrapes(settings, gql, tenant_id):
    async with client(settings) as (application, http):
        gauges = application.state.metrics.run_gauges
        await asyncio.gather(*(scrape(http) for _ in range(10)))
        assert gauges.queries == 1
        await make_run(gql, tenant_id)
        assert value(await scrape(http), "headwater_flow_runs", state="Scheduled") == 0, "a cached answer"
        gauges.cache_seconds = 0
        assert value(await scrape(http), "headwater_flow_runs", state="Scheduled") == 1
        assert gauges.queries == 2


async def test_an_unreachable_database_leaves_the_run_gauges_out(settings):
    # The setting's key needs no database, so the outage meets the counts, not the key check.
    async with client(settings.replace(api_key="s3cret")) as (application, http):
        application.state.metrics.run_gauges.database_url = "postgresql://nobody@127.0.0.1:9/nowhere"
        samples = await scrape(http, authorization="Bearer s3cret")
        assert value(samples, "headwater_run_gauges_up") == 0
        assert series(samples, "headwater_flow_runs") == []
        assert value(samples, "headwater_db_pool_size") == settings.db_pool_size, "the rest is still there"


async def test_loop_service_passes_are_measured(app, http, gql, tenant_id):
    before = await scrape(http)
    killer = ZombieKiller(app.state.sessions, interval=0.05, heartbeat_cutoff=__import__("datetime").timedelta(minutes=10))
    await killer.run(loops=2)

    def delta(name: str) -> float:
        return value(after, name, service=killer.name) - value(before, name, service=killer.name)

    after = await scrape(http)
    assert delta("headwater_service_passes_total") == 2
    assert delta("headwater_service_pass_duration_seconds_count") == 2
    assert delta("headwater_service_items_total") == 0
    assert delta("headwater_service_errors_total") == 0

    async def broken() -> int:
        raise RuntimeError("boom")

    killer.run_once = broken  # type: ignore[method-assign]
    await killer.run(loops=1)
    after = await scrape(http)
    assert delta("headwater_service_errors_total") == 1
    assert delta("headwater_service_passes_total") == 3


async def test_metrics_follow_the_read_role(settings, engine):
    async with transaction(create_sessionmaker(engine)) as session:
        _, reader = await api_keys.create_key(session, "prometheus", "read")
    async with client(settings.replace(api_key_cache_seconds=0)) as (_, http):
        refused = await http.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await http.get("/metrics", headers={"authorization": "Bearer hw_wrong"})).status_code == 401
        samples = await scrape(http, authorization=f"Bearer {reader}")
        assert ("headwater_db_pool_size", frozenset()) in samples


async def test_without_keys_metrics_are_open_and_a_setting_turns_them_off(settings):
    async with client(settings) as (_, http):
        assert (await http.get("/metrics")).status_code == 200
    async with client(settings.replace(metrics_enabled=False)) as (application, http):
        assert (await http.get("/metrics")).status_code in (404, 405)
        assert (await http.post("/", json={"query": "{ hello }"})).json() == {"data": {"hello": "👋"}}
        assert application.state.metrics is None
