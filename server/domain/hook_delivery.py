"""Delivering one cloud-hook event: an outbox row the service claimed, or `test_cloud_hook`'s.

No database transaction is open while a request is in flight: the claim committed before, and
the outcome is written in a new, short transaction after (hook_outbox.py explains the lease).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from headwater.server.db.engine import transaction
from headwater.server.domain import messages
from headwater.server.domain.cloud_hooks import TestDelivery
from headwater.server.domain.hook_outbox import Claimed, mark_attempt_failed, mark_delivered
from headwater.server.settings import Settings
from headwater.server.domain.hook_requests import DeliveryFailed, build_requests, client, send

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("headwater.services")

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class DeliveryPolicy:
    link_base: str = "http://localhost:4200"
    connect_timeout: float = 10.0
    read_timeout: float = 10.0
    max_attempts: int = 8
    retry_base: float = 5.0
    retry_cap: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "DeliveryPolicy":
        return cls(
            link_base=settings.hook_link_url,
            connect_timeout=settings.hook_connect_timeout_seconds,
            read_timeout=settings.hook_read_timeout_seconds,
            max_attempts=settings.hook_max_attempts,
            retry_base=settings.hook_retry_base_seconds,
            retry_cap=settings.hook_retry_max_seconds,
        )

    @property
    def deadline(self) -> float:
        """The most one delivery's requests may take, all included."""
        return self.connect_timeout + self.read_timeout

    @property
    def lease(self) -> dt.timedelta:
        """How long a claim holds a row: well past the deadline, so no other replica re-sends it
        while this one may still be sending."""
        return dt.timedelta(seconds=2 * self.deadline + 30)


def message_content(event: dict[str, Any]) -> dict[str, Any]:
    return {"event": event, "type": "CLOUD_HOOK"}


async def deliver_claimed(
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    delivery: Claimed,
    policy: DeliveryPolicy,
    clock: Clock,
) -> str:
    """Send one claimed delivery and record the outcome: `delivered`, `pending` (retry) or `failed`."""
    if delivery.hook_type == "PREFECT_MESSAGE":
        # The message and the delivered mark commit together: one message per event.
        async with transaction(sessions) as session:
            if await mark_delivered(session, delivery, now=clock(), http_status=None):
                await messages.create_message(session, delivery.tenant_id, "CLOUD_HOOK", message_content(delivery.payload))
        return "delivered"
    http_status: int | None = None
    try:
        requests = build_requests(
            delivery.hook_type, delivery.config, delivery.payload,
            link_base=policy.link_base, delivery_id=str(delivery.id),
        )
        http_status = await send(http, requests, deadline=policy.deadline)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the row and retried
        error = str(exc) if isinstance(exc, DeliveryFailed) else f"{type(exc).__name__}: {exc}"
        status_code = exc.http_status if isinstance(exc, DeliveryFailed) else None
        async with transaction(sessions) as session:
            outcome = await mark_attempt_failed(
                session, delivery, now=clock(), error=error, http_status=status_code,
                max_attempts=policy.max_attempts, retry_base=policy.retry_base, retry_cap=policy.retry_cap,
            )
        log = logger.warning if outcome == "failed" else logger.info
        log("cloud hook %s delivery %s attempt %d failed (%s)%s", delivery.hook_id, delivery.id,
            delivery.attempts, error, "; giving up" if outcome == "failed" else "; will retry")
        return outcome
    async with transaction(sessions) as session:
        await mark_delivered(session, delivery, now=clock(), http_status=http_status)
    return "delivered"


async def send_test(
    sessions: async_sessionmaker[AsyncSession], test: TestDelivery, policy: DeliveryPolicy,
    http: httpx.AsyncClient | None = None,
) -> None:
    """`test_cloud_hook`: send now, whatever the hook's states; raises DeliveryFailed on failure."""
    if test.type == "PREFECT_MESSAGE":
        async with transaction(sessions) as session:
            await messages.create_message(session, test.tenant_id, "CLOUD_HOOK", message_content(test.event))
        return
    try:
        requests = build_requests(test.type, test.config, test.event, link_base=policy.link_base,
                                  delivery_id=f"test-{uuid.uuid4()}")
    except KeyError as exc:
        raise DeliveryFailed(f"Invalid config; missing {exc}") from exc
    if http is not None:
        await send(http, requests, deadline=policy.deadline)
        return
    async with client(policy.connect_timeout, policy.read_timeout) as fresh:
        await send(fresh, requests, deadline=policy.deadline)
