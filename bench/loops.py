"""Small bounded asyncio loops, for what wrk does not fit: asyncpg straight to the database (the
database limit), and sequential HTTP requests at a fixed count (the agent's queue poll).

Every loop stops at `count` operations or at `seconds`, whichever comes first.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx


@dataclass
class Sample:
    """Latencies of a loop's operations and how long the loop ran."""

    latencies_ms: list[float]
    seconds: float
    errors: int = 0
    first_error: str = ""

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


async def database_load(url: str, operation: Callable[[asyncpg.Connection, int], Awaitable[Any]], *,
                        concurrency: int, seconds: float, count: int) -> Sample:
    """`operation(connection, i)` from `concurrency` connections, each its own asyncpg connection."""
    pool = await asyncpg.create_pool(url, min_size=concurrency, max_size=concurrency)
    latencies: list[float] = []
    issued = 0
    try:
        async with pool.acquire() as connection:  # prepare once, outside the clock
            await operation(connection, 0)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal issued
            async with pool.acquire() as connection:
                while issued < count and time.perf_counter() < deadline:
                    issued += 1
                    started = time.perf_counter()
                    await operation(connection, issued)
                    latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Sample(latencies, time.perf_counter() - started)
    finally:
        await pool.close()


async def sequential_http(url: str, bodies: list[str], *, seconds: float, count: int) -> Sample:
    """One request at a time (as one agent polls), cycling over `bodies`."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"the benchmark targets 127.0.0.1 only, not {url}")
    latencies: list[float] = []
    errors, first_error = 0, ""
    headers = {"Content-Type": "application/json", "X-PREFECT-CORE-VERSION": "1.4.1"}
    async with httpx.AsyncClient(timeout=30) as http:
        await http.post(url + "/", content=bodies[0], headers=headers)  # connect outside the clock
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        for i in range(count):
            if time.perf_counter() >= deadline:
                break
            sent = time.perf_counter()
            response = await http.post(url + "/", content=bodies[i % len(bodies)], headers=headers)
            latencies.append((time.perf_counter() - sent) * 1000)
            if response.status_code != 200 or "errors" in response.json():
                errors += 1
                first_error = first_error or response.text[:300]
        return Sample(latencies, time.perf_counter() - started, errors, first_error)


def graphql(url: str, query: str, variables: Any = None) -> dict:
    """One GraphQL request for set-up; raises on any error."""
    response = httpx.post(url + "/", json={"query": query, "variables": json.dumps(variables)}, timeout=60)
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"{query[:80]}...: {body}")
    return body["data"]
