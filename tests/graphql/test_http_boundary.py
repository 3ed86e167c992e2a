"""The HTTP boundary (issue 10, items 3 and 4): which requests reach the GraphQL executor at all.

Cross-site requests (a `text/plain` or form POST, a foreign `Origin`, a foreign `Host` as DNS
rebinding produces) are refused before they can run a mutation; CORS answers are given only to
listed origins; the API key is checked before the body is parsed; deeply nested JSON is a clear
error, never a 500.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from headwater.server.app import create_app
from headwater.server.settings import Settings, SettingsError
from tests import factories as f

CREATE_PROJECT = 'mutation { create_project(input: { tenant_id: "%s", name: "%s" }) { id } }'


@asynccontextmanager
async def client(settings: Settings, base_url: str = "http://127.0.0.1:4200") -> AsyncIterator[httpx.AsyncClient]:
    """An in-process app with these settings, addressed at `base_url` (which sets the Host)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            yield http


@pytest.fixture
def plain_settings(settings: Settings) -> Settings:
    """The defaults a developer runs with: loopback bind, no allow-lists, no API key."""
    return settings.replace(allowed_hosts="", cors_origins="")


async def project_count(db) -> int:
    return await db.scalar(text("SELECT count(*) FROM project"))


# Item 3: content types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
    ],
)
async def test_a_non_json_post_never_runs_its_mutation(http, db, tenant_id, content_type):
    body = json.dumps({"query": CREATE_PROJECT % (tenant_id, "csrf")})
    headers = {"content-type": content_type} if content_type else {}
    response = await http.post("/", content=body, headers=headers)
    assert response.status_code == 415
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "application/json" in error["message"]
    assert await project_count(db) == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/graphql+json"]
)
async def test_json_media_types_are_accepted(http, content_type):
    response = await http.post("/", content=json.dumps({"query": "{ hello }"}), headers={"content-type": content_type})
    assert response.status_code == 200 and response.json() == {"data": {"hello": "👋"}}


# Item 3: origins -----------------------------------------------------------------------------


async def test_a_foreign_origin_is_refused_and_changes_nothing(plain_settings, db, tenant_id):
    async with client(plain_settings) as http:
        for origin in ("https://evil.example", "http://127.0.0.1:8080", "null"):
            response = await http.post(
                "/", json={"query": CREATE_PROJECT % (tenant_id, "csrf")}, headers={"origin": origin}
            )
            assert response.status_code == 403, origin
            error = response.json()["errors"][0]
            assert error["extensions"]["code"] == "ORIGIN_NOT_ALLOWED"
            assert "HEADWATER_CORS_ORIGINS" in error["message"]
            assert "access-control-allow-origin" not in response.headers
        # A preflight from it gets no CORS permission either.
        preflight = await http.options(
            "/", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
        )
        assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    assert await project_count(db) == 0


async def test_same_origin_pages_and_clients_without_origin_are_served(plain_settings):
    async with client(plain_settings, "http://127.0.0.1:4200") as http:
        for headers in ({}, {"origin": "http://127.0.0.1:4200"}, {"origin": "HTTP://127.0.0.1:4200/"}):
            response = await http.post("/", json={"query": "{ hello }"}, headers=headers)
            assert response.status_code == 200 and response.json()["data"] == {"hello": "👋"}, headers
            assert "access-control-allow-origin" not in response.headers
        # Same host but another port is another origin (the scheme is not compared: behind a TLS
        # proxy the page is https while headwater sees plain http).
        for origin in ("http://127.0.0.1:4201", "http://localhost:4200"):
            assert (await http.post("/", json={"query": "{ hello }"}, headers={"origin": origin})).status_code == 403
    async with client(plain_settings.replace(allowed_hosts="headwater.example.com"), "http://headwater.example.com") as http:
        response = await http.post("/", json={"query": "{ hello }"}, headers={"origin": "http://headwater.example.com"})
        assert response.status_code == 200, "default ports compare equal"


async def test_listed_origins_get_cors_answers(plain_settings, db, tenant_id):
    ui = "http://ui.example:8080"
    async with client(plain_settings.replace(cors_origins=f" {ui}/ , https://other.example")) as http:
        preflight = await http.options("/graphql", headers={
            "origin": ui,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, authorization, x-prefect-tenant-id, x-custom",
        })
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == ui
        assert "POST" in preflight.headers["access-control-allow-methods"]
        allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "x-prefect-tenant-id", "x-custom"} <= allowed
        assert int(preflight.headers["access-control-max-age"]) > 0
        assert "origin" in preflight.headers["vary"].lower()

        response = await http.post("/", json={"query": CREATE_PROJECT % (tenant_id, "from-ui")}, headers={"origin": ui})
        assert response.status_code == 200 and "errors" not in response.json()
        assert response.headers["access-control-allow-origin"] == ui
        assert "origin" in response.headers["vary"].lower()
        # Listing is exact: another port of the same host is not the listed origin.
        assert (await http.post("/", json={"query": "{ hello }"}, headers={"origin": "http://ui.example"})).status_code == 403
    assert await project_count(db) == 1


async def test_a_wildcard_origin_list_is_refused_at_start(plain_settings):
    with pytest.raises(SettingsError, match="HEADWATER_CORS_ORIGINS"):
        create_app(plain_settings.replace(cors_origins="*"))
    with pytest.raises(SettingsError, match="not an origin"):
        create_app(plain_settings.replace(cors_origins="ui.example.com"))


def test_the_lists_are_read_from_the_environment():
    settings = Settings.from_env({"HEADWATER_CORS_ORIGINS": "https://a.example,https://b.example",
                                  "HEADWATER_ALLOWED_HOSTS": "hw.internal", "HEADWATER_MAX_JSON_DEPTH": "32"})
    assert settings.cors_origins == "https://a.example,https://b.example"
    assert settings.allowed_hosts == "hw.internal" and settings.max_json_depth == 32


# Item 3: hosts (DNS rebinding) ----------------------------------------------------------------


async def test_a_foreign_host_is_refused_on_loopback(plain_settings, db, tenant_id):
    # DNS rebinding: evil.example now resolves to 127.0.0.1, so the page is "same-origin".
    async with client(plain_settings, "http://evil.example:4200") as http:
        response = await http.post(
            "/", json={"query": CREATE_PROJECT % (tenant_id, "rebound")}, headers={"origin": "http://evil.example:4200"}
        )
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "HOST_NOT_ALLOWED"
        assert "evil.example" in error["message"] and "HEADWATER_ALLOWED_HOSTS" in error["message"]
        assert (await http.get("/")).status_code == 400, "the console page too"
        # Probes are exempt: supervisors use whatever Host they like.
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/ready")).status_code == 200
    assert await project_count(db) == 0


@pytest.mark.parametrize("base_url", ["http://localhost:4200", "http://127.0.0.1:9999", "http://[::1]:4200", "http://localhost"])
async def test_loopback_names_are_served_on_any_port(plain_settings, base_url):
    async with client(plain_settings, base_url) as http:
        assert (await http.post("/", json={"query": "{ hello }"})).json() == {"data": {"hello": "👋"}}


async def test_allowed_hosts_extend_the_loopback_names(plain_settings):
    settings = plain_settings.replace(allowed_hosts="hw.internal, proxy.example:8443")
    for base_url, status in [("http://hw.internal:1234", 200), ("http://proxy.example:8443", 200),
                             ("http://proxy.example:8444", 400), ("http://localhost:4200", 200),
                             ("http://evil.example", 400)]:
        async with client(settings, base_url) as http:
            assert (await http.post("/", json={"query": "{ hello }"})).status_code == status, base_url
    async with client(plain_settings.replace(allowed_hosts="*"), "http://anything.example") as http:
        assert (await http.post("/", json={"query": "{ hello }"})).status_code == 200, "* turns the check off"


async def test_hosts_are_checked_on_other_interfaces_only_when_listed(plain_settings):
    async with client(plain_settings.replace(host="0.0.0.0"), "http://10.1.2.3:4200") as http:
        assert (await http.post("/", json={"query": "{ hello }"})).status_code == 200
    listed = plain_settings.replace(host="0.0.0.0", allowed_hosts="headwater.example.com")
    async with client(listed, "http://10.1.2.3:4200") as http:
        response = await http.post("/", json={"query": "{ hello }"})
        assert response.status_code == 400 and "HEADWATER_ALLOWED_HOSTS" in response.json()["errors"][0]["message"]
    async with client(listed, "http://headwater.example.com") as http:
        assert (await http.post("/", json={"query": "{ hello }"})).status_code == 200


# Item 4: the key first, and nesting depth -----------------------------------------------------


def nested(levels: int, leaf: object = 1) -> str:
    """JSON text nested `levels` deep (lists; objects with `{"a": ...}` every other level)."""
    opening = "".join('{"a":' if i % 2 else "[" for i in range(levels))
    closing = "".join("}" if i % 2 else "]" for i in reversed(range(levels)))
    return opening + json.dumps(leaf) + closing


async def test_the_api_key_is_checked_before_the_body_is_parsed(settings):
    async with client(settings.replace(api_key="s3cret")) as http:
        deep = '{"query": "{ hello }", "variables": ' + nested(100_000) + "}"
        for body in (deep, "{not json", json.dumps({"query": "{ hello }"})):
            response = await http.post("/", content=body, headers={"content-type": "application/json"})
            assert response.status_code == 200
            assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        # With the key, the same deep body is a depth error.
        response = await http.post(
            "/", content=deep, headers={"content-type": "application/json", "authorization": "Bearer s3cret"}
        )
        assert "nested" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("as_string", [True, False], ids=["variables-as-string", "variables-as-object"])
async def test_100000_levels_in_variables_is_a_clear_error(http, as_string, caplog):
    variables = nested(100_000)
    body = json.dumps({"query": "{ hello }", "variables": variables}) if as_string else (
        '{"query": "{ hello }", "variables": {"x": ' + variables + "}}"
    )
    with caplog.at_level(logging.WARNING):
        response = await http.post("/", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    levels = 100_001 if as_string else 100_002  # counted from the body's outer object
    assert f"nested {levels} levels deep; the limit is 64" in error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
async def flow_id(gql, tenant_id) -> str:
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "deep"}))["id"]
    return (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow("deep")}))["id"]


async def test_5000_levels_in_parameters_or_a_state_are_refused(gql, db, flow_id, caplog):
    with caplog.at_level(logging.WARNING):
        for levels in (5_000, 100):
            variables = '{"input": {"flow_id": "%s", "parameters": %s}}' % (flow_id, nested(levels))
            response = await gql.http.post("/", json={
                "query": "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }",
                "variables": variables,
            })
            assert response.status_code == 200
            assert f"nested {levels + 3} levels deep" in response.json()["errors"][0]["message"]
        run_id = await gql.mutate("create_flow_run", {"flow_id": flow_id})
        state = '{"type": "Running", "__version__": "1.4.1", "message": %s}' % nested(5_000)
        variables = '{"input": {"states": [{"flow_run_id": "%s", "version": null, "state": %s}]}}' % (
            run_id["id"], state)
        response = await gql.http.post("/", json={
            "query": "mutation($input: set_flow_run_states_input!) { set_flow_run_states(input: $input) { states { id } } }",
            "variables": variables,
        })
        assert "nested 5006 levels deep" in response.json()["errors"][0]["message"]
    assert await db.scalar(text("SELECT count(*) FROM flow_run")) == 1
    assert await db.scalar(text("SELECT state FROM flow_run")) == "Scheduled"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_nesting_within_the_limit_is_stored(gql, db, flow_id):
    parameters = json.loads(nested(60))
    run = await gql.mutate("create_flow_run", {"flow_id": flow_id, "parameters": {"p": parameters}})
    stored = await db.scalar(text("SELECT parameters FROM flow_run WHERE id = :id"), {"id": run["id"]})
    assert stored["p"] == parameters


async def test_the_depth_limit_is_a_setting(settings):
    async with client(settings.replace(max_json_depth=8)) as http:
        body = json.dumps({"query": "{ hello }", "variables": {"x": json.loads(nested(7))}})
        response = await http.post("/", content=body, headers={"content-type": "application/json"})
        assert "nested 9 levels deep; the limit is 8" in response.json()["errors"][0]["message"]


async def test_brackets_inside_strings_do_not_count(gql, flow_id):
    message = '[[[[{{{{"' * 200 + "\\" + '"' * 10
    run = await gql.mutate("create_flow_run", {"flow_id": flow_id, "flow_run_name": message[:200],
                                               "parameters": {"text": message}})
    assert run["id"]
