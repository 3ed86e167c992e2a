"""Hook delivery across real server processes: a delivery queued by a process killed with -9
is sent after a restart, and two replicas draining one outbox send every delivery once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from contextlib import ExitStack

import pytest
from sqlalchemy import text

from tests import factories as f
from tests.hook_receiver import Receiver
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow

ENV = {"HEADWATER_LOG_LEVEL": "WARNING", "HEADWATER_SCHEDULER_ENABLED": "false",
       "HEADWATER_ZOMBIE_KILLER_ENABLED": "false", "HEADWATER_LAZARUS_ENABLED": "false",
       "HEADWATER_HOOK_DELIVERY_INTERVAL_SECONDS": "0.2", "HEADWATER_HOOK_RETRY_BASE_SECONDS": "0.2",
       "HEADWATER_HOOK_RETRY_MAX_SECONDS": "0.5"}


def mutate(server: ServerProcess, name: str, payload: dict, selection: str = "id") -> dict:
    body = server.query(f"mutation($input: {name}_input!) {{ {name}(input: $input) {{ {selection} }} }}", {"input": payload})
    assert "errors" not in body, body
    return body["data"][name]


def set_state(server: ServerProcess, run_id: str, state: str) -> None:
    mutate(server, "set_flow_run_states", {"states": [
        {"flow_run_id": run_id, "state": {"type": state, "__version__": "1.4.1"}}]}, "states { status }")


def seed_flow(server: ServerProcess, tenant_id: str) -> str:
    project = mutate(server, "create_project", {"tenant_id": tenant_id, "name": "hooks"})["id"]
    return mutate(server, "create_flow", {"project_id": project, "serialized_flow": f.flow("notify")})["id"]


async def wait_until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not reached in time")


async def test_a_delivery_queued_before_a_kill_9_is_sent_after_the_restart(db, tenant_id, database_url, tmp_path):
    env = {"HEADWATER_DATABASE_URL": database_url, **ENV}
    with Receiver() as receiver:
        # This process queues deliveries but never sends them (its delivery service is off).
        with ServerProcess("--no-migrate", env={**env, "HEADWATER_HOOK_DELIVERY_ENABLED": "false"},
                           log_path=tmp_path / "first.log") as first:
            flow_id = seed_flow(first, tenant_id)
            mutate(first, "create_cloud_hook", {"tenant_id": tenant_id, "type": "WEBHOOK", "states": ["RUNNING"],
                                                "config": {"url": receiver.url + "/w"}})
            run_id = mutate(first, "create_flow_run", {"flow_id": flow_id})["id"]
            set_state(first, run_id, "Running")
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait(10)
        await db.commit()
        assert await db.scalar(text("SELECT count(*) FROM cloud_hook_delivery WHERE status = 'pending'")) == 1
        assert receiver.received == []

        with ServerProcess("--no-migrate", env=env, log_path=tmp_path / "second.log"):
            async def delivered() -> bool:
                await db.commit()
                return await db.scalar(text("SELECT count(*) FROM cloud_hook_delivery WHERE status = 'delivered'")) == 1
            await wait_until(delivered)
        assert len(receiver.received) == 1
        assert receiver.received[0].json()["event"]["flow_run"]["id"] == run_id


async def test_two_replicas_deliver_every_hook_once(db, tenant_id, database_url, tmp_path):
    env = {"HEADWATER_DATABASE_URL": database_url, **ENV}
    with Receiver() as receiver, ExitStack() as stack:
        replicas = [stack.enter_context(ServerProcess("--no-migrate", env=env, log_path=tmp_path / f"replica-{i}.log"))
                    for i in range(2)]
        flow_id = seed_flow(replicas[0], tenant_id)
        for i in range(3):
            mutate(replicas[0], "create_cloud_hook", {"tenant_id": tenant_id, "type": "WEBHOOK",
                                                      "states": ["RUNNING", "SUCCESS"], "config": {"url": receiver.url + f"/h{i}"}})
        receiver.fail_next = 5  # a few retries in the mix
        runs = []
        for i in range(20):
            replica = replicas[i % 2]
            run_id = mutate(replica, "create_flow_run", {"flow_id": flow_id})["id"]
            set_state(replica, run_id, "Running")
            set_state(replicas[(i + 1) % 2], run_id, "Success")
            runs.append(run_id)
        expected = 20 * 2 * 3

        async def all_delivered() -> bool:
            await db.commit()
            return await db.scalar(text("SELECT count(*) FROM cloud_hook_delivery WHERE status = 'delivered'")) == expected
        await wait_until(all_delivered)
        await asyncio.sleep(1.5)  # several more passes on both replicas: nothing may be sent again

    succeeded = [r for r in receiver.received[5:]]
    assert len(receiver.received) == expected + 5
    per_delivery = Counter(r.headers["x-headwater-delivery-id"] for r in succeeded)
    assert len(per_delivery) == expected and set(per_delivery.values()) == {1}
    per_event = Counter((r.path, r.json()["event"]["id"]) for r in succeeded)
    assert len(per_event) == expected and set(per_event.values()) == {1}
    attempts = await db.scalar(text("SELECT sum(attempts) FROM cloud_hook_delivery"))
    assert attempts == expected + 5
