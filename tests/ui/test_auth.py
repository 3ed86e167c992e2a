"""With API keys configured the UI asks for one, keeps it for the browser session only, and the
key's role limits what the pages' scripts may do, exactly as for any API client."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.app import create_app
from headwater.server.domain import api_keys
from tests.ui.conftest import HTML

QUICK_RUN = "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"


@pytest.fixture
async def keyed(settings, engine, hello_flow):
    """An app whose server has the admin key `s3cret` and a named `read` key."""
    async with engine.begin() as connection:
        _, read_key = await api_keys.create_key(AsyncSession(bind=connection), "viewer", "read")
    application = create_app(settings.replace(api_key="s3cret", api_key_cache_seconds=0.0))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080") as client:
            yield client, read_key, hello_flow


async def test_pages_ask_for_a_key_and_keep_it_for_the_session_only(keyed):
    http, _, flow = keyed
    page = f"/default/flow/{flow['group_id']}"
    refused = await http.get(page, headers=HTML)
    assert refused.status_code == 303 and refused.headers["location"] == "/login?next=%2Fdefault%2Fflow%2F" + flow["group_id"]
    login = await http.get(refused.headers["location"], headers=HTML)
    assert 'name="key"' in login.text and 'type="password"' in login.text
    wrong = await http.post("/login", data={"key": "nope", "next": page})
    assert wrong.status_code == 401 and "not valid" in wrong.text and "set-cookie" not in wrong.headers
    signed_in = await http.post("/login", data={"key": "s3cret", "next": page})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == page
    cookie = signed_in.headers["set-cookie"].lower()
    assert cookie.startswith("headwater_key=s3cret") and "httponly" in cookie and "samesite=strict" in cookie
    assert "max-age" not in cookie and "expires" not in cookie, "a session cookie: gone when the browser closes"
    assert (await http.get(page, headers=HTML)).status_code == 200
    logged_out = await http.post("/logout")
    assert logged_out.status_code == 303 and "headwater_key=" in logged_out.headers["set-cookie"]
    http.cookies.clear()
    assert (await http.get(page, headers=HTML)).status_code == 303


async def test_login_only_follows_local_paths(keyed):
    http, _, _ = keyed
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = await http.post("/login", data={"key": "s3cret", "next": target})
        assert response.headers["location"] == "/", target


async def test_a_read_key_browses_but_cannot_quick_run(keyed):
    http, read_key, flow = keyed
    await http.post("/login", data={"key": read_key, "next": "/"})
    for path in ("/", "/default/flows", f"/default/flow/{flow['group_id']}", "/default/agents"):
        response = await http.get(path, headers=HTML)
        assert response.status_code == 200, path
    assert "key role: read" in response.text
    # What the Quick Run button posts: the same document, authenticated by the session cookie.
    answer = await http.post("/graphql", json={"query": QUICK_RUN, "variables": {"input": {"flow_id": flow["flow_id"]}}},
                             headers={"origin": "http://localhost:8080"})
    error = answer.json()["errors"][0]
    assert error["extensions"]["code"] == "FORBIDDEN" and "role 'read'" in error["message"]
    assert "create_flow_run" in error["message"]


async def test_the_graphql_endpoint_takes_the_session_cookie_but_not_a_bad_one(keyed):
    http, _, _ = keyed
    http.cookies.set("headwater_key", "forged")
    answer = (await http.post("/graphql", json={"query": "{ hello }"})).json()
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    http.cookies.set("headwater_key", "s3cret")
    assert (await http.post("/graphql", json={"query": "{ hello }"})).json() == {"data": {"hello": "👋"}}


async def test_an_open_server_needs_no_sign_in(http, hello_flow):
    assert (await http.get("/default/flows", headers=HTML)).status_code == 200
    page = await http.get("/login", headers=HTML)
    assert "no API keys" in page.text
