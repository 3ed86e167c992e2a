"""Signing in: with API keys configured, the UI asks for one and keeps it in a cookie for the
browser session only (no Max-Age or Expires, HttpOnly so scripts never read it, SameSite=Strict
so no other site's page sends it). The GraphQL endpoint accepts that cookie in place of an
Authorization header (headwater.server.graphql.authentication.SESSION_COOKIE)."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from headwater.server.graphql.authentication import SESSION_COOKIE, Refused, authenticate_key
from headwater.server.ui.rendering import render

MAX_FORM_BYTES = 16 * 1024


def safe_next(target: str | None) -> str:
    """Only a path on this server (never `//host` or a full URL) is followed after signing in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def keys_required(request: Request) -> bool:
    try:
        await authenticate_key(None, request.app.state)
    except Refused as refused:
        return refused.response.status_code == 200
    return False


async def login_page(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return render(request, "login.html", next=target, error=None, required=await keys_required(request))
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return render(request, "login.html", status=413, next=target, error="That form is too large.", required=True)
    form = parse_qs(body.decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    target = safe_next((form.get("next") or [target])[0])
    try:
        principal = await authenticate_key(key or None, request.app.state)
    except Refused as refused:
        message = ("That key is not valid (unknown or revoked)." if refused.response.status_code == 200
                   else "The database is unavailable; retry shortly.")
        return render(request, "login.html", status=401, next=target, error=message, required=True)
    response = RedirectResponse(target, status_code=303)
    if principal.name is not None:  # an open server needs no cookie
        response.set_cookie(SESSION_COOKIE, key, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
