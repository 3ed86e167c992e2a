"""The Prefect web UI's two ways in: from its own origin (the `prefecthq/ui` image on port 8080,
by CORS) and from headwater's port (`--ui-dir`: its files, its settings.json, no CORS needed)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from headwater.server.app import create_app
from headwater.server.settings import Settings

UI_HEADERS = "content-type, x-prefect-ui, x-backend, x-prefect-tenant-id, x-prefect-user-id"


@asynccontextmanager
async def client(settings: Settings, base_url: str = "http://127.0.0.1:4200") -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            yield http


@pytest.fixture
def defaults(settings: Settings) -> Settings:
    """The CORS and Host settings a developer runs with (the test fixture's Host list aside)."""
    return settings.replace(allowed_hosts="", cors_origins=Settings().cors_origins)


async def test_the_prefect_ui_origins_are_allowed_by_default(defaults, tenant_id):
    assert Settings().cors_origins == "http://localhost:8080,http://127.0.0.1:8080"
    async with client(defaults) as http:
        for origin in ("http://localhost:8080", "http://127.0.0.1:8080"):
            preflight = await http.options("/graphql", headers={
                "origin": origin, "access-control-request-method": "POST", "access-control-request-headers": UI_HEADERS,
            })
            assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == origin
            allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
            assert {"content-type", "authorization", "x-prefect-ui", "x-backend", "x-prefect-tenant-id",
                    "x-prefect-user-id"} <= allowed
            batch = [{"query": "{ api { mode } }"}, {"query": "{ tenant { id } }"}]
            headers = {"origin": origin, "x-prefect-ui": "true", "x-backend": "SERVER", "x-prefect-tenant-id": tenant_id}
            response = await http.post("/graphql", json=batch, headers=headers)
            assert response.status_code == 200 and response.headers["access-control-allow-origin"] == origin
            assert response.json() == [{"data": {"api": {"mode": "normal"}}}, {"data": {"tenant": [{"id": tenant_id}]}}]


async def test_other_origins_stay_refused(defaults):
    async with client(defaults) as http:
        for origin in ("http://localhost:8081", "https://localhost:8080", "http://evil.example:8080", "null"):
            preflight = await http.options("/graphql", headers={
                "origin": origin, "access-control-request-method": "POST", "access-control-request-headers": UI_HEADERS,
            })
            assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers, origin
            response = await http.post("/graphql", json=[{"query": "{ hello }"}], headers={"origin": origin})
            assert response.status_code == 403 and response.json()["errors"][0]["extensions"]["code"] == "ORIGIN_NOT_ALLOWED"
    async with client(defaults.replace(cors_origins="https://ui.example")) as http:
        # The setting replaces the default list: listing origins is explicit.
        denied = await http.post("/", json={"query": "{ hello }"}, headers={"origin": "http://localhost:8080"})
        assert denied.status_code == 403
        allowed = await http.post("/", json={"query": "{ hello }"}, headers={"origin": "https://ui.example"})
        assert allowed.status_code == 200
    # Pages served from the same host:port (headwater's own) are same-origin, listed or not.
    async with client(defaults.replace(cors_origins=""), "http://127.0.0.1:8080") as http:
        response = await http.post("/", json={"query": "{ hello }"}, headers={"origin": "http://127.0.0.1:8080"})
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


@pytest.fixture
def ui_dir(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "js").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>ui</title><script src=/js/app.js></script>")
    (dist / "js" / "app.js").write_text("console.log('app')")
    (dist / "settings.json").write_text('{"server_url": "http://localhost:4200/graphql", "base_url": "/"}')
    (tmp_path / "secret.txt").write_text("outside")
    (dist / "link.txt").symlink_to(tmp_path / "secret.txt")
    return dist


async def test_ui_dir_serves_the_files_the_settings_and_falls_back_to_index(settings, ui_dir):
    html = {"accept": "text/html,application/xhtml+xml"}
    async with client(settings.replace(ui_dir=ui_dir, allowed_hosts="ui.local:9000"), "http://ui.local:9000") as http:
        index = await http.get("/", headers=html)
        assert index.status_code == 200 and "<title>ui</title>" in index.text
        assert index.headers["content-type"].startswith("text/html") and index.headers["cache-control"] == "no-cache"
        script = await http.get("/js/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        # headwater's own settings.json, not the build's: the browser's way to this server's GraphQL.
        assert (await http.get("/settings.json")).json() == {"server_url": "http://ui.local:9000/graphql", "base_url": "/"}
        for page in ("/default/flow-run/123", "/flow/abc?tab=runs"):
            routed = await http.get(page, headers=html)
            assert routed.status_code == 200 and "<title>ui</title>" in routed.text, page
        assert (await http.get("/js/missing.js")).status_code == 404, "a missing asset is no page"
        # The API keeps its paths: GraphQL by POST on / and /graphql, the console at GET /graphql.
        assert (await http.post("/", json={"query": "{ hello }"})).json() == {"data": {"hello": "👋"}}
        assert (await http.post("/graphql", json=[{"query": "{ hello }"}])).json() == [{"data": {"hello": "👋"}}]
        assert "Interactive API · headwater" in (await http.get("/graphql", headers=html)).text
        assert (await http.get("/health")).json()["status"]


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/js/..%2f..%2fsecret.txt", "/link.txt",
                                  "/..%5csecret.txt", "/js/%00app.js", "/js"])
async def test_ui_dir_paths_cannot_leave_the_folder(settings, ui_dir, path):
    async with client(settings.replace(ui_dir=ui_dir), "http://headwater.test") as http:
        response = await http.get(path)
        assert response.status_code == 404 and "outside" not in response.text, path
        fallback = await http.get(path, headers={"accept": "text/html"})
        assert "outside" not in fallback.text and ("<title>ui</title>" in fallback.text or fallback.status_code == 404)


def test_ui_dir_must_be_a_built_ui(settings, tmp_path):
    with pytest.raises(ValueError, match="has no index.html"):
        create_app(settings.replace(ui_dir=tmp_path))
    with pytest.raises(ValueError, match="not a folder"):
        create_app(settings.replace(ui_dir=tmp_path / "nope"))


async def test_without_ui_dir_nothing_else_is_served(http):
    assert (await http.get("/settings.json")).status_code in (404, 405)
    assert "Dashboard · headwater" in (await http.get("/", headers={"accept": "text/html"})).text, "headwater's own UI"
