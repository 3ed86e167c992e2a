"""The Interactive API: GraphiQL (docs explorer, history, variables) served from the installed
`graphene-django-graphiql-static` package, read with importlib.resources, so it works offline
and nothing of it is copied into this repository."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from headwater.server.ui.rendering import PAGE_CSP, render

PACKAGE = "graphene_django_graphiql_static"
FOLDER = "static/graphene_django_graphiql_static"
# The files the page loads, and their types; nothing else of the package is served.
ASSETS = {
    "graphiql.min.css": "text/css",
    "style.css": "text/css",
    "react.production.min.js": "text/javascript",
    "react-dom.production.min.js": "text/javascript",
    "graphiql.min.js": "text/javascript",
    "graphiql-plugin-explorer.umd.js": "text/javascript",
}


@lru_cache(maxsize=None)
def asset_bytes(name: str) -> bytes:
    return resources.files(PACKAGE).joinpath(FOLDER, name).read_bytes()


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(asset_bytes(name), media_type=ASSETS[name], headers={"cache-control": "public, max-age=86400"})


# GraphiQL's policy is the pages' one plus fonts from data: URLs (its CSS embeds its fonts). It
# needs no 'unsafe-eval' (its one `new Function` is a fallback for a missing globalThis) and no
# inline script or style (React sets styles through the CSSOM); the browser test fails on any
# violation it reports.
GRAPHIQL_CSP = PAGE_CSP.replace("font-src 'self'", "font-src 'self' data:")


async def graphiql_page(request: Request) -> Response:
    return render(request, "graphiql.html", csp=GRAPHIQL_CSP)
