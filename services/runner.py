"""Starts the enabled services as asyncio tasks and stops them gracefully.

Used by the API's lifespan (every replica runs the services; the domain functions coordinate
through Postgres) and by `headwater services` (services without the API).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from headwater.server.domain.hook_delivery import DeliveryPolicy
from headwater.server.settings import Settings
from headwater.services.hook_delivery import HookDelivery
from headwater.services.lazarus import Lazarus
from headwater.services.loop import LoopService
from headwater.services.retention import Retention
from headwater.services.scheduler import Scheduler
from headwater.services.zombie_killer import ZombieKiller

logger = logging.getLogger("headwater.services")


def build_services(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> list[LoopService]:
    cutoff = dt.timedelta(seconds=settings.heartbeat_cutoff_seconds)
    services: list[LoopService] = []
    if settings.scheduler_enabled:
        services.append(
            Scheduler(
                sessions,
                interval=settings.scheduler_interval_seconds,
                batch_size=settings.service_batch_size,
                max_runs=settings.scheduler_max_runs_per_flow,
            )
        )
    if settings.zombie_killer_enabled:
        services.append(
            ZombieKiller(
                sessions,
                interval=settings.zombie_killer_interval_seconds,
                batch_size=settings.service_batch_size,
                heartbeat_cutoff=cutoff,
            )
        )
    if settings.lazarus_enabled:
        services.append(
            Lazarus(
                sessions,
                interval=settings.lazarus_interval_seconds,
                batch_size=settings.service_batch_size,
                heartbeat_cutoff=cutoff,
                max_attempts=settings.lazarus_resurrection_limit,
            )
        )
    if settings.retention_days > 0:
        services.append(
            Retention(
                sessions,
                interval=settings.retention_interval_seconds,
                batch_size=settings.service_batch_size,
                keep=dt.timedelta(days=settings.retention_days),
            )
        )
    if settings.hook_delivery_enabled:
        services.append(HookDelivery(sessions, interval=settings.hook_delivery_interval_seconds,
                                     batch_size=settings.service_batch_size, policy=DeliveryPolicy.from_settings(settings)))
    return services


class ServiceRunner:
    def __init__(self, services: list[LoopService]):
        self.services = services
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        for service in self.services:
            task = asyncio.create_task(service.run(), name=f"headwater-{service.name}")
            task.add_done_callback(self._report_exit)
            self.tasks.append(task)

    @staticmethod
    def _report_exit(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("service %s crashed", task.get_name(), exc_info=task.exception())

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask every service to stop; cancel those still busy after `timeout` seconds."""
        for service in self.services:
            service.stop()
        if not self.tasks:
            return
        done, pending = await asyncio.wait(self.tasks, timeout=timeout)
        for task in pending:
            logger.warning("%s did not finish its pass in %.0f s; abandoning it", task.get_name(), timeout)
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.tasks.clear()
