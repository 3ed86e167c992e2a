"""Which web pages and which host names may talk to the server: the HTTP boundary.

Without it, any page a developer visits could drive a headwater on their laptop: a cross-site
POST needs no CORS permission to be *sent*, and DNS rebinding makes `evil.example` resolve to
127.0.0.1 so that the page even counts as same-origin. Two checks stop both:

* `Origin` (sent by browsers, never by the Prefect client, agents or the `headwater` CLI): a
  request from a page is served only when the page is same-origin (its host:port is the
  request's `Host`) or listed in HEADWATER_CORS_ORIGINS. Listed origins get CORS answers,
  preflights included, so a UI served elsewhere can call the API.
* `Host`: while listening on a loopback address, only loopback names (and
  HEADWATER_ALLOWED_HOSTS) are answered, which is what defeats DNS rebinding. On other
  interfaces the Host is checked only when HEADWATER_ALLOWED_HOSTS is set.

`/health` and `/ready` are exempt: supervisors and load balancers probe them with whatever Host
they like (a pod IP, a container name), and they reveal nothing but the version.

A pure ASGI middleware: one pass over the header list per request, nothing else.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Awaitable, Callable, Iterable

from headwater.server.graphql.errors import request_error
from headwater.server.settings import Settings, SettingsError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

EXEMPT_PATHS = frozenset({"/health", "/ready"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
DEFAULT_PORTS = {"http": "80", "https": "443"}
# What a browser may send cross-origin once the origin is allowed: the Prefect UI's headers
# (`x-prefect-ui`, `x-backend`, the tenant and user ids; `authorization-expiry` beside its token)
# and the client's, plus whatever else the preflight asks for (the origin is trusted by then).
ALLOWED_METHODS = "GET, POST, OPTIONS"
BASE_ALLOWED_HEADERS = ("authorization", "content-type", "x-prefect-ui", "x-backend", "x-prefect-tenant-id",
                        "x-prefect-user-id", "authorization-expiry", "x-prefect-agent-id", "x-prefect-core-version",
                        "x-prefect-user-agent", "x-backend-version")
PREFLIGHT_MAX_AGE = "600"


def split_host(value: str) -> tuple[str, str | None]:
    """("name", "port" or None) from a Host value; IPv6 literals keep their brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else None
    name, colon, port = value.rpartition(":")
    return (name, port) if colon else (value, None)


def is_loopback(bind_host: str) -> bool:
    """Whether the server listens on a loopback address only (127.x, ::1, localhost)."""
    host = bind_host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_origin(origin: str) -> str:
    """scheme://host[:port], lower-cased, without a default port or a trailing slash."""
    scheme, sep, netloc = origin.strip().rstrip("/").lower().partition("://")
    if not sep:
        return origin.strip().lower()
    name, port = split_host(netloc)
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{name}"
    return f"{scheme}://{name}:{port}"


def parse_cors_origins(raw: str) -> frozenset[str]:
    """HEADWATER_CORS_ORIGINS as a set; `*` is refused, since it would let every page drive the API."""
    origins = {item.strip() for item in raw.split(",") if item.strip()}
    if "*" in origins:
        raise SettingsError(
            "HEADWATER_CORS_ORIGINS does not accept '*': it would let any web page send mutations. "
            "List the origins of the UIs that may call headwater, e.g. https://ui.example.com,http://localhost:8080"
        )
    for origin in origins:
        if "://" not in origin:
            raise SettingsError(f"HEADWATER_CORS_ORIGINS: {origin!r} is not an origin like https://ui.example.com")
    return frozenset(normalize_origin(origin) for origin in origins)


def parse_allowed_hosts(raw: str) -> frozenset[tuple[str, str | None]] | None:
    """HEADWATER_ALLOWED_HOSTS as (name, port or None for any) pairs; None for `*` (no check)."""
    items = {item.strip() for item in raw.split(",") if item.strip()}
    if "*" in items:
        return None
    return frozenset(split_host(item) for item in items)


def _json_response(status: int, body: dict) -> tuple[dict, dict]:
    payload = json.dumps(body).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
    }
    return start, {"type": "http.response.body", "body": payload}


class HttpGuard:
    """ASGI middleware refusing foreign `Host` and `Origin` headers and answering CORS."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.cors_origins = parse_cors_origins(settings.cors_origins)
        hosts = parse_allowed_hosts(settings.allowed_hosts)
        self.loopback = is_loopback(settings.host)
        self.check_host = hosts is not None and (self.loopback or bool(hosts))
        bind = settings.host.strip().lower()
        bind_name = f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind
        names = {name for name, port in hosts or () if port is None} | LOOPBACK_HOSTS | {bind_name}
        self.allowed_names = frozenset(names)
        self.allowed_host_ports = frozenset(f"{name}:{port}" for name, port in hosts or () if port is not None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        host = origin = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
        if self.check_host and host is not None and not self.host_allowed(host):
            await self.refuse(send, 400, "HOST_NOT_ALLOWED", (
                f"The Host header {host!r} is not allowed: headwater listens on a loopback address and "
                "answers only localhost, 127.0.0.1 and [::1] (a defence against DNS rebinding). To reach it "
                "under another name, add that name to HEADWATER_ALLOWED_HOSTS."
            ) if self.loopback else (
                f"The Host header {host!r} is not in HEADWATER_ALLOWED_HOSTS."
            ))
            return
        if origin is None:
            await self.app(scope, receive, send)
            return
        cross_origin = not self.same_origin(origin, host)
        if cross_origin and normalize_origin(origin) not in self.cors_origins:
            await self.refuse(send, 403, "ORIGIN_NOT_ALLOWED", (
                f"Requests from the web page at {origin} are not allowed. headwater answers pages served "
                "from its own address and the origins listed in HEADWATER_CORS_ORIGINS."
            ))
            return
        if not cross_origin:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and _has_header(scope, b"access-control-request-method"):
            await self.preflight(scope, origin, send)
            return
        cors_headers = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]

        async def send_with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *cors_headers]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def host_allowed(self, host: str) -> bool:
        name, port = split_host(host)
        return name in self.allowed_names or f"{name}:{port}" in self.allowed_host_ports

    @staticmethod
    def same_origin(origin: str, host: str | None) -> bool:
        """The page's host:port is the request's Host (default ports compared as such)."""
        if host is None:
            return False
        scheme, sep, _ = origin.strip().lower().partition("://")
        if not sep:
            return False
        name, port = split_host(host)
        if port is None or port == DEFAULT_PORTS.get(scheme):
            expected = f"{scheme}://{name}"
        else:
            expected = f"{scheme}://{name}:{port}"
        return normalize_origin(origin) == expected

    async def preflight(self, scope: Scope, origin: str, send: Send) -> None:
        requested = _header(scope, b"access-control-request-headers") or ""
        headers = _merge_header_names(BASE_ALLOWED_HEADERS, requested.split(","))
        await send({
            "type": "http.response.start",
            "status": 204,
            "headers": [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                (b"access-control-allow-headers", headers.encode("latin-1")),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
                (b"vary", b"Origin"),
            ],
        })
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def refuse(send: Send, status: int, code: str, message: str) -> None:
        start, body = _json_response(status, request_error(message, code))
        await send(start)
        await send(body)


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return value.decode("latin-1")
    return None


def _has_header(scope: Scope, wanted: bytes) -> bool:
    return _header(scope, wanted) is not None


def _merge_header_names(base: Iterable[str], extra: Iterable[str]) -> str:
    """The base header names plus the requested ones that are valid tokens, without repeats."""
    names = list(base)
    for name in (item.strip().lower() for item in extra):
        if name and name not in names and all(c.isalnum() or c in "-_" for c in name):
            names.append(name)
    return ", ".join(names)
