"""The Interactive API: GraphiQL's files come from the installed package, nothing from the internet."""

from __future__ import annotations

import re

from tests.ui.conftest import HTML


async def test_graphiql_page_and_every_asset_it_loads_are_served(http):
    for path in ("/api", "/graphql"):
        page = await http.get(path, headers=HTML)
        assert page.status_code == 200 and "graphiql" in page.text.lower()
    assets = re.findall(r'(?:src|href)="(/_ui/[^"]+)"', (await http.get("/api")).text)
    assert any(a.endswith("graphiql.min.js") for a in assets)
    for asset in assets:
        response = await http.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset
    assert (await http.get("/_ui/graphiql/models.py")).status_code == 404, "only the listed files are served"


async def test_pages_and_graphiql_send_a_strict_content_security_policy(http):
    page = (await http.get("/default", headers={"accept": "text/html"})).headers["content-security-policy"]
    assert "script-src 'self';" in page and "style-src 'self';" in page and "unsafe" not in page
    assert "frame-ancestors 'none'" in page and "object-src 'none'" in page
    graphiql = (await http.get("/api")).headers["content-security-policy"]
    assert "script-src 'self';" in graphiql and "unsafe" not in graphiql and "font-src 'self' data:" in graphiql
