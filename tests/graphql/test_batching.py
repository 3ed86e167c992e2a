"""HTTP batching: a POST of a JSON array of operations (the web UI's Apollo batch link) gets a
JSON array of results in the same order, each operation under its own limits and role check."""

from __future__ import annotations

import contextlib
import json

import httpx

from headwater.server.app import create_app
from headwater.server.db.engine import create_engine, create_sessionmaker, transaction
from headwater.server.domain import api_keys

JSON = {"content-type": "application/json"}


async def post(http, body, **headers) -> httpx.Response:
    return await http.post("/", content=json.dumps(body).encode(), headers={**JSON, **headers})


@contextlib.asynccontextmanager
async def client(settings):
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://headwater.test") as http:
            yield application, http


async def test_a_batch_like_the_uis_is_answered_in_order(http, tenant_id):
    batch = [
        {"operationName": "Api", "variables": {}, "query": "query Api { api { backend mode } }"},
        {"operationName": "CreateProject", "variables": {"name": "ui", "tenantId": tenant_id},
         "query": "mutation CreateProject($name: String!, $tenantId: UUID!) "
                  "{ create_project(input: {name: $name, tenant_id: $tenantId}) { id } }"},
        {"operationName": "Projects", "variables": {}, "query": "query Projects { project { name tenant_id } }"},
        {"operationName": "Broken", "query": "query Broken { nope }"},
        {"operationName": "Tenants", "variables": json.dumps({"slug": "default"}),
         "query": "query Tenants($slug: String) { tenant(where: {slug: {_eq: $slug}}) { id } }"},
    ]
    response = await post(http, batch, **{"x-prefect-ui": "true", "x-backend": "SERVER"})
    assert response.status_code == 200
    api, created, projects, broken, tenants = response.json()
    assert api == {"data": {"api": {"backend": "SERVER", "mode": "normal"}}}
    assert set(created) == {"data"} and created["data"]["create_project"]["id"]
    assert projects == {"data": {"project": [{"name": "ui", "tenant_id": tenant_id}]}}, "runs after the mutation"
    assert broken["errors"][0]["message"].startswith("Cannot query field 'nope'") and "data" in broken
    assert tenants == {"data": {"tenant": [{"id": tenant_id}]}}


async def test_items_that_are_no_operation_get_their_error_in_place(http):
    response = await post(http, [{"query": "{ hello }"}, {"variables": {}}, "x", {"query": "{ hello }", "variables": [1]}])
    first, no_query, text, bad_variables = response.json()
    assert response.status_code == 200 and first == {"data": {"hello": "👋"}}
    assert "no `query`" in no_query["errors"][0]["message"] and no_query["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "JSON object" in text["errors"][0]["message"] and "JSON object" in bad_variables["errors"][0]["message"]


async def test_an_empty_batch_and_one_too_many_operations_are_refused(http, settings):
    body = (await post(http, [])).json()
    assert body["errors"][0]["message"] == "The batch is empty: send at least one operation."
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST" and body["data"] is None
    limit = settings.max_batch_operations
    assert limit == 25
    assert len((await post(http, [{"query": "{ hello }"}] * limit)).json()) == limit
    body = (await post(http, [{"query": "{ hello }"}] * (limit + 1))).json()
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_OPERATIONS"
    assert body["errors"][0]["message"] == "The batch has 26 operations; the limit is 25 (HEADWATER_MAX_BATCH_OPERATIONS)."


async def test_limits_apply_to_the_whole_body_and_to_each_operation(settings):
    wide = "{ " + " ".join(f"a{i}: hello" for i in range(26)) + " }"
    async with client(settings.replace(max_request_bytes=2000, max_batch_operations=3)) as (_, http):
        answers = (await post(http, [{"query": "{ hello }"}, {"query": wide}])).json()
        assert answers[0] == {"data": {"hello": "👋"}}
        assert "HEADWATER_MAX_QUERY_ROOT_FIELDS" in answers[1]["errors"][0]["message"]
        # Each operation is small, the body is not.
        body = (await post(http, [{"query": "{ hello }", "variables": {"pad": "x" * 900}}] * 3)).json()
        assert body["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        assert (await post(http, [{"query": "{ hello }"}] * 4)).json()["errors"][0]["extensions"]["code"] == "TOO_MANY_OPERATIONS"
    async with client(settings.replace(max_json_depth=4)) as (_, http):
        nested = {"query": "{ hello }", "variables": json.dumps({"a": {"b": {"c": 1}}})}  # 1 + 3 levels
        assert (await post(http, nested)).json() == {"data": {"hello": "👋"}}
        [answer] = (await post(http, [nested])).json()  # one level deeper inside the array
        assert "nested 5 levels deep; the limit is 4" in answer["errors"][0]["message"]


async def test_auth_once_per_request_and_the_role_per_operation(settings, engine):
    async with transaction(create_sessionmaker(engine)) as session:
        _, reader = await api_keys.create_key(session, "ui-reader", "read")
    batch = [{"query": "{ hello }"}, {"query": 'mutation { create_project(input: {name: "x", tenant_id: '
                                                 '"6b1e5b1a-1d5f-4a8e-9b0b-1e2d3c4b5a69"}) { id } }'}, {"query": "{ api { mode } }"}]
    async with client(settings.replace(api_key="s3cret", api_key_cache_seconds=0)) as (_, http):
        refused = await post(http, batch)
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", "one answer, not an array"
        answers = (await post(http, batch, authorization=f"Bearer {reader}")).json()
        assert answers[0] == {"data": {"hello": "👋"}} and answers[2] == {"data": {"api": {"mode": "normal"}}}
        assert answers[1]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert [r["data"] for r in (await post(http, batch[:1], authorization="Bearer s3cret")).json()] == [{"hello": "👋"}]


async def test_a_database_outage_in_a_batch(settings):
    """Operations after the outage are not run; 503 only when nothing ran, so a retry is safe."""
    unreachable = create_engine("postgresql://nobody@127.0.0.1:9/nowhere")
    reads = [{"query": "{ project { id } }"}, {"query": "{ hello }"}, {"query": "{ tenant { id } }"}]
    try:
        # The setting's key needs no database, so the outage meets the operations, not the auth.
        async with client(settings.replace(api_key="s3cret")) as (application, http):
            working = application.state.sessions
            application.state.sessions = create_sessionmaker(unreachable)
            try:
                response = await post(http, reads, authorization="Bearer s3cret")
                assert response.status_code == 503
                codes = [answer["errors"][0]["extensions"]["code"] for answer in response.json()]
                assert codes == ["DATABASE_UNAVAILABLE"] * 3
                assert response.json()[1]["errors"][0]["message"].startswith("Not run: the database became unavailable")
                response = await post(http, [{"query": "{ hello }"}, *reads], authorization="Bearer s3cret")
                assert response.status_code == 200, "the first operation was answered"
                first, *rest = response.json()
                assert first == {"data": {"hello": "👋"}}
                assert all(r["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE" for r in rest)
                single = await post(http, reads[0], authorization="Bearer s3cret")
                assert single.status_code == 503 and isinstance(single.json(), dict)
            finally:
                application.state.sessions = working
    finally:
        await unreachable.dispose()
