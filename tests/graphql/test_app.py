"""The HTTP surface: liveness, readiness, the hello query, and request-level errors."""

from __future__ import annotations

import json


async def test_hello(gql):
    assert await gql("query { hello }") == {"hello": "👋"}


async def test_health_and_ready(http):
    assert (await http.get("/health")).json()["status"] == "ok"
    ready = await http.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_variables_as_json_string_and_object(http):
    for variables in ("null", None, {}, json.dumps({})):
        response = await http.post("/", json={"query": "{ hello }", "variables": variables})
        assert response.status_code == 200
        assert response.json() == {"data": {"hello": "👋"}}


async def test_graphql_path_aliases(http):
    for path in ("/graphql", "/graphql/"):
        response = await http.post(path, json={"query": "{ hello }"})
        assert response.json()["data"]["hello"] == "👋"


async def test_malformed_bodies_are_graphql_errors(http):
    cases = [
        (b"{not json", "not valid JSON"),
        (b"1", "JSON object"),
        (json.dumps({"variables": {}}).encode(), "no `query`"),
        (json.dumps({"query": "{ hello }", "variables": "{bad"}).encode(), "not valid JSON"),
        (json.dumps({"query": "{ hello }", "variables": [1]}).encode(), "JSON object"),
    ]
    for body, fragment in cases:
        response = await http.post("/", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 200
        assert fragment in response.json()["errors"][0]["message"]
    # An array is a batch (tests/graphql/test_batching.py): each item that is no operation gets its error.
    response = await http.post("/", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert response.status_code == 200 and all("JSON object" in r["errors"][0]["message"] for r in response.json())


async def test_syntax_and_unknown_field_errors(gql):
    assert "Syntax Error" in await gql.error("query { hello ")
    assert "Cannot query field 'nope'" in await gql.error("query { nope }")


async def test_oversized_request_is_refused(http, settings):
    huge = "x" * (settings.max_request_bytes + 1)
    response = await http.post("/", json={"query": "{ hello }", "variables": {"pad": huge}})
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert str(settings.max_request_bytes) in error["message"]


async def test_default_tenant_exists(db, tenant_id):
    assert tenant_id and tenant_id != "None"


async def test_introspection_query_works(gql):
    query = (
        "{ __schema { queryType { fields { name args { name type { ...T } } type { ...T } } } "
        "mutationType { fields { name } } } } "
        "fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"
    )
    schema = (await gql(query))["__schema"]
    assert "flow_run" in {f["name"] for f in schema["queryType"]["fields"]}
    assert "create_flow_run" in {f["name"] for f in schema["mutationType"]["fields"]}


async def test_api_key_is_required_when_configured(settings):
    import httpx

    from headwater.server.app import create_app

    guarded = create_app(settings.replace(api_key="s3cret"))
    async with guarded.router.lifespan_context(guarded):
        transport = httpx.ASGITransport(app=guarded)
        async with httpx.AsyncClient(transport=transport, base_url="http://headwater.test") as http:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                body = (await http.post("/", json={"query": "{ hello }"}, headers=headers)).json()
                assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            ok = await http.post("/", json={"query": "{ hello }"}, headers={"Authorization": "Bearer s3cret"})
            assert ok.json() == {"data": {"hello": "👋"}}
            assert (await http.get("/health")).status_code == 200, "probes need no key"


async def test_database_outage_is_a_retryable_503_not_a_500(app, http):
    from headwater.server.db.engine import create_engine, create_sessionmaker

    unreachable = create_engine("postgresql://nobody@127.0.0.1:9/nowhere")
    working = app.state.sessions
    app.state.sessions = create_sessionmaker(unreachable)
    try:
        response = await http.post("/", json={"query": 'mutation { update_flow_run_heartbeat(input: '
                                                        '{ flow_run_id: "6b1e5b1a-1d5f-4a8e-9b0b-1e2d3c4b5a69" }) '
                                                        '{ success } }'})
        assert response.status_code == 503
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "DATABASE_UNAVAILABLE" and "Retry shortly" in error["message"]
        assert "Traceback" not in response.text
    finally:
        app.state.sessions = working
        await unreachable.dispose()


async def test_validation_cache_by_shape_still_rejects_bad_literals(gql):
    import uuid

    query = 'query { flow_run_by_pk(id: "%s") { id } }'
    for _ in range(3):
        assert (await gql(query % uuid.uuid4()))["flow_run_by_pk"] is None
    body = await gql.raw(query % "not-a-uuid")
    assert "Could not parse UUID: not-a-uuid" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] != "INTERNAL_SERVER_ERROR"
    heartbeat = 'mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } }'
    assert (await gql(heartbeat % uuid.uuid4()))["update_flow_run_heartbeat"]["success"] is False
    body = await gql.raw(heartbeat % "nope")
    assert "Could not parse UUID: nope" in body["errors"][0]["message"]
    assert "Cannot query field" in await gql.error('query { flow_run_by_pk(id: "%s") { nope } }' % uuid.uuid4())
