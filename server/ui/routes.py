"""The UI's routes. Paths match the links the Prefect client prints
(`/<tenant slug>/flow/<flow group id>`, `/<tenant slug>/flow-run/<id>`, `/<tenant slug>/task-run/<id>`);
fixed paths come first, so `/api`, `/login`... are never read as a tenant slug.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from headwater.server.graphql.errors import request_error
from headwater.server.ui import pages
from headwater.server.ui.graphiql import asset, graphiql_page
from headwater.server.ui.session import login_page, logout


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def root(request: Request) -> Response:
    """GET /: the dashboard for a browser; POST / stays the GraphQL endpoint the Prefect client uses."""
    if wants_html(request):
        return await pages.dashboard(request)
    return JSONResponse(request_error(
        "Send GraphQL queries with POST; the web UI answers browsers here, the interactive API is at /api."),
        status_code=405)


def ui_routes(with_pages: bool = True) -> list[BaseRoute]:
    """The web UI's routes; without `with_pages` only the interactive API and what it needs (when a
    built Prefect UI serves the pages, `--ui-dir`)."""
    interactive = [
        Route("/api", graphiql_page, methods=["GET"]),
        Route("/graphql", graphiql_page, methods=["GET"]),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/_ui/static", app=StaticFiles(packages=[("headwater.server.ui", "static")]), name="ui-static"),
        Route("/_ui/graphiql/{name}", asset, methods=["GET"]),
    ]
    if not with_pages:
        return interactive
    return [
        Route("/", root, methods=["GET"]),
        *interactive,
        Route("/{tenant}", pages.dashboard, methods=["GET"]),
        Route("/{tenant}/flows", pages.flows, methods=["GET"]),
        Route("/{tenant}/flow/{id}", pages.flow, methods=["GET"]),
        Route("/{tenant}/flow-run/{id}", pages.flow_run, methods=["GET"]),
        Route("/{tenant}/task-run/{id}", pages.task_run, methods=["GET"]),
        Route("/{tenant}/deployments", pages.deployments, methods=["GET"]),
        Route("/{tenant}/agents", pages.agents, methods=["GET"]),
    ]
