"""HTTP responses by route and status: a pure ASGI middleware, one counter increment a request.

The route is the matched route's path template (`/{tenant}/flow-run/{id}`, never the path
itself), so the label stays bounded; a request refused before routing (Host or Origin, see
server/http_guard.py) or matching no route is `_unrouted`.
"""

from __future__ import annotations

from typing import Any

from headwater.server.metrics.families import HTTP_REQUESTS

UNROUTED = "_unrouted"


class ResponseCounter:
    def __init__(self, app: Any):
        self.app = app
        self._children: dict[tuple[str, int], Any] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counted_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                key = (getattr(route, "path", UNROUTED), message["status"])
                child = self._children.get(key)
                if child is None:
                    child = self._children[key] = HTTP_REQUESTS.labels(key[0], str(key[1]))
                child.inc()
            await send(message)

        await self.app(scope, receive, counted_send)
