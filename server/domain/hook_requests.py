"""What each cloud-hook type sends for an event, and sending it (with timeouts, always).

The bodies are Prefect Server's (`api/cloud_hooks.py`): a WEBHOOK gets `{"event": ...}` as JSON
with `X-PREFECT-EVENT-ID`; a SLACK_WEBHOOK four mrkdwn blocks; TWILIO one form POST per number;
PAGERDUTY an Events API v2 `trigger`. headwater adds `X-Headwater-Delivery-Id` (the outbox row, so
a receiver can drop a repeat) and, when a webhook's config has a `secret`, an HMAC-SHA256
signature of the timestamp and the exact body bytes:

    X-Headwater-Timestamp: <unix seconds>
    X-Headwater-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>." + body)>

A receiver recomputes the HMAC over the raw body it received and compares in constant time
(`verify_signature` below is that check), and rejects old timestamps to stop replays.
PREFECT_MESSAGE sends nothing: its delivery is a `message` row (messages.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:  # httpx (and the rich and pygments it pulls in) loads with the first delivery: ~6 MiB idle
    import httpx

TWILIO_API_URL = "https://api.twilio.com"
PAGERDUTY_API_URL = "https://events.pagerduty.com"
SIGNATURE_HEADER = "X-Headwater-Signature"
TIMESTAMP_HEADER = "X-Headwater-Timestamp"
DELIVERY_HEADER = "X-Headwater-Delivery-Id"
USER_AGENT = "headwater-cloud-hooks"


@dataclass(frozen=True)
class OutboundRequest:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None


class DeliveryFailed(Exception):
    """A send that did not succeed: the receiver's HTTP status when it answered."""

    def __init__(self, message: str, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *, max_age: float = 300.0,
                     now: float | None = None) -> bool:
    """A receiver's check: the signature matches the body and the timestamp is recent."""
    now = time.time() if now is None else now
    try:
        fresh = abs(now - int(timestamp)) <= max_age
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def run_link(link_base: str, event: dict[str, Any]) -> str:
    return f"{link_base.rstrip('/')}/{event['tenant']['slug']}/flow-run/{event['flow_run']['id']}"


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def _names(event: dict[str, Any]) -> tuple[str, str, str]:
    return event["flow_run"].get("name") or "", event["flow"].get("name") or "", event["state"]["state"]


def build_requests(
    hook_type: str, config: dict[str, Any], event: dict[str, Any], *, link_base: str, delivery_id: str | None = None,
) -> list[OutboundRequest]:
    """The HTTP requests a hook of this type makes for the event (none for PREFECT_MESSAGE)."""
    common = {"User-Agent": USER_AGENT, **({DELIVERY_HEADER: delivery_id} if delivery_id else {})}
    run_name, flow_name, state = _names(event)
    link = run_link(link_base, event)
    if hook_type == "WEBHOOK":
        body = _json({"event": event})
        headers = {**common, "Content-Type": "application/json", "X-PREFECT-EVENT-ID": str(event["id"])}
        if config.get("secret"):
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(config["secret"], timestamp, body)
        return [OutboundRequest(config["url"], body, headers)]
    if hook_type == "SLACK_WEBHOOK":
        message = (event["state"].get("serialized_state") or {}).get("message") or event["state"].get("message")
        texts = [
            f"Run `{run_name}` of flow `{flow_name}` entered a new state:",
            f"*State:* `{state}`",
            f"*Message:* {message}",
            f"*Link:* {link}",
        ]
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": t}} for t in texts]
        return [OutboundRequest(config["url"], _json({"blocks": blocks}), {**common, "Content-Type": "application/json"})]
    if hook_type == "TWILIO":
        base = config.get("api_url") or TWILIO_API_URL
        url = f"{base.rstrip('/')}/2010-04-01/Accounts/{config['account_sid']}/Messages.json"
        text = f"Run {run_name} of flow {flow_name} entered a new state: {state}. \n Link: {link}"
        headers = {**common, "Content-Type": "application/x-www-form-urlencoded"}
        return [
            OutboundRequest(
                url,
                urlencode({"To": number, "From": config["messaging_service_sid"], "Body": text}).encode(),
                headers,
                auth=(config["account_sid"], config["auth_token"]),
            )
            for number in config["to"]
        ]
    if hook_type == "PAGERDUTY":
        base = config.get("api_url") or PAGERDUTY_API_URL
        slug = event["tenant"]["slug"]
        body = {
            "routing_key": config["routing_key"],
            "event_action": "trigger",
            "payload": {
                "summary": f"Run {run_name} entered a new state: {state}",
                "severity": config["severity"],
                "source": f"cloud.prefect.io/{slug}",
                "component": flow_name,
                "group": run_name,
                "class": f"State->{state}",
                "custom_details": {
                    "flow": flow_name, "flow_run": run_name, "state": state,
                    "state_message": event["state"].get("message") or "", "tenant_slug": slug,
                },
            },
            "links": [{"href": link, "text": f"Flow Run {run_name}"}],
        }
        headers = {**common, "Content-Type": "application/json", "Authorization": f"Token token={config['api_token']}"}
        return [OutboundRequest(f"{base.rstrip('/')}/v2/enqueue", _json(body), headers)]
    if hook_type == "PREFECT_MESSAGE":
        return []
    raise DeliveryFailed(f"Unknown cloud hook type {hook_type!r}")


def client(connect_timeout: float, read_timeout: float) -> httpx.AsyncClient:
    """The HTTP client deliveries go out on: these timeouts, and no redirects followed."""
    import httpx

    return httpx.AsyncClient(timeout=timeouts(connect_timeout, read_timeout), follow_redirects=False)


def timeouts(connect: float, read: float) -> httpx.Timeout:
    import httpx

    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


async def send(client: httpx.AsyncClient, requests: list[OutboundRequest], *, deadline: float) -> int | None:
    """POST every request (concurrently), within `deadline` seconds in all; the last HTTP status.

    Any non-2xx answer, a timeout or a connection error raises DeliveryFailed. Redirects are not
    followed: a hook's URL is where it goes.
    """
    import httpx

    async def post(request: OutboundRequest) -> int:
        try:
            response = await client.post(request.url, content=request.body, headers=request.headers, auth=request.auth)
        except httpx.TimeoutException as exc:
            raise DeliveryFailed(f"timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            detail = response.text[:300].strip()
            raise DeliveryFailed(f"HTTP {response.status_code}" + (f": {detail}" if detail else ""), response.status_code)
        return response.status_code

    if not requests:
        return None
    try:
        async with asyncio.timeout(deadline):
            statuses = await asyncio.gather(*(post(r) for r in requests))
    except TimeoutError as exc:
        raise DeliveryFailed(f"timed out after {deadline:.0f} s") from exc
    return statuses[-1]
