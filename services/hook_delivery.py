"""Hook delivery: sends the cloud-hook outbox (server/domain/hook_outbox.py explains the protocol).

Every replica runs it; `FOR UPDATE SKIP LOCKED` claims and a lease keep them from sending one row
twice. A pass claims due rows in a short transaction, sends them concurrently with no
transaction open, and settles each in its own. It wakes at once when a state change in this
process queues a delivery, so a notification usually leaves within milliseconds of the commit.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from headwater.server.db.engine import transaction
from headwater.server.domain import hook_outbox
from headwater.server.domain.hook_delivery import DeliveryPolicy, deliver_claimed
from headwater.server.domain.hook_requests import client
from headwater.services.loop import LoopService

if TYPE_CHECKING:
    import httpx

# Deliveries claimed (and sent concurrently) per batch.
CLAIM_BATCH = 50


class HookDelivery(LoopService):
    name = "HookDelivery"

    def __init__(self, *args, policy: DeliveryPolicy, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.batch_size = min(self.batch_size, CLAIM_BATCH)
        self._http: httpx.AsyncClient | None = None  # made when the first delivery is claimed
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def _wake_soon(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wake)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = client(self.policy.connect_timeout, self.policy.read_timeout)
        return self._http

    async def _close_client(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def run(self, loops: int | None = None) -> None:
        """The loop keeps one client (and its connections) across passes."""
        self._loop = asyncio.get_running_loop()
        hook_outbox.add_waker(self._wake_soon)
        self._running = True
        try:
            await super().run(loops)
        finally:
            hook_outbox.remove_waker(self._wake_soon)
            self._running = False
            await self._close_client()

    async def run_once(self) -> int:
        try:
            total = 0
            while not self._stopping.is_set():
                async with transaction(self.sessions) as session:
                    claimed = await hook_outbox.claim_due(
                        session, now=self.clock(), lease=self.policy.lease, limit=self.batch_size
                    )
                if claimed:
                    http = self._client()
                    await asyncio.gather(
                        *(deliver_claimed(self.sessions, http, delivery, self.policy, self.clock) for delivery in claimed)
                    )
                total += len(claimed)
                if len(claimed) < self.batch_size:
                    break
            return total
        finally:
            if not self._running:  # a single pass outside the loop (tests) keeps nothing open
                await self._close_client()
