"""API keys with the unchanged prefect==1.4.1 client, CLI and agent against a real headwater.

The Prefect client sends `Authorization: Bearer <key>` whenever it has a key, in server mode
too: from PREFECT__CLOUD__API_KEY (config `cloud.api_key`), `--key` on `prefect agent ... start`,
or ~/.prefect/auth.toml. The agent hands its key to each flow-run process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from headwater.server.db.engine import create_sessionmaker, transaction
from headwater.server.domain import api_keys
from tests.prefect_cli import Prefect
from tests.server_process import ServerProcess

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

FLOW = """
import prefect
from prefect import Flow, task
from prefect.backend.artifacts import create_markdown_artifact

@task(task_run_name="greet-{who}")
def greet(who):
    prefect.context.get("logger").info("hello %s", who)
    create_markdown_artifact(f"# hello {who}")
    return who

with Flow("keyed") as flow:
    greet("keys")
"""


@pytest.fixture
async def keys(engine) -> dict[str, str]:
    """One key per role, created before the server starts (so it never saw itself open)."""
    made = {}
    async with transaction(create_sessionmaker(engine)) as session:
        for role in api_keys.ROLES:
            _, made[role] = await api_keys.create_key(session, role, role)
    return made


@pytest.fixture
def server(keys, database_url, tmp_path):
    env = {"HEADWATER_DATABASE_URL": database_url, "HEADWATER_LOG_LEVEL": "WARNING",
           "HEADWATER_API_KEY_CACHE_SECONDS": "1"}
    with ServerProcess("--no-services", "--no-migrate", env=env, log_path=tmp_path / "headwater.log") as process:
        yield process


def prefect_with(server, tmp_path, name: str, key: str | None) -> Prefect:
    client = Prefect(server.url, tmp_path / name)
    if key is not None:
        client.env["PREFECT__CLOUD__API_KEY"] = key
    return client


async def test_a_key_is_needed_and_reported_clearly(server, keys, tmp_path, db):
    admin = prefect_with(server, tmp_path, "admin", keys["admin"])
    assert "keys created" in admin.cli("create", "project", "keys").stdout

    for name, key in (("none", None), ("wrong", "hw_not-a-real-key")):
        refused = prefect_with(server, tmp_path, name, key).cli("create", "project", "other", check=False)
        output = refused.stdout + refused.stderr
        # `prefect create project` prints the error and "Error creating project" (exit code 0).
        assert "Error creating project" in output and "other created" not in output, output
        assert "AuthorizationError" in output and "Unauthenticated" in output, output
        assert "PREFECT__CLOUD__API_KEY" in output, output

    runner = prefect_with(server, tmp_path, "run", keys["run"])
    forbidden = runner.python(
        """
from prefect import Client
try:
    Client().create_project("nope")
except Exception as exc:
    print(type(exc).__name__, exc)
""")
    assert "ClientError" in forbidden.stdout
    assert "The API key 'run' has role 'run', which may not run mutation create_project." in forbidden.stdout
    assert await db.scalar(text("SELECT array_agg(name) FROM project")) == ["keys"]


async def test_an_agent_with_a_run_key_runs_a_flow_to_success(server, keys, tmp_path, db):
    admin = prefect_with(server, tmp_path, "admin", keys["admin"])
    admin.cli("create", "project", "keys")
    admin.cli("register", "--project", "keys", "-p", str(admin.write("keyed.py", FLOW)))

    runner = prefect_with(server, tmp_path, "run", keys["run"])
    agent = runner.agent(log=tmp_path / "agent.log")
    try:
        watched = runner.cli("run", "--name", "keyed", "--project", "keys", "--watch", timeout=240)
    finally:
        agent.terminate()
        try:
            agent.wait(timeout=15)
        except subprocess.TimeoutExpired:
            agent.kill()
    assert "Success" in watched.stdout, watched.stdout + (tmp_path / "agent.log").read_text()
    run = (await db.execute(text("SELECT state, heartbeat, agent_id FROM flow_run"))).mappings().one()
    assert run["state"] == "Success" and run["heartbeat"] is not None and run["agent_id"] is not None
    assert await db.scalar(text("SELECT name FROM task_run")) == "greet-keys"
    assert await db.scalar(text("SELECT data FROM task_run_artifact")) == {"markdown": "# hello keys"}
    messages = (await db.execute(text("SELECT message FROM log"))).scalars().all()
    assert any("hello keys" in m for m in messages)
    used = await db.scalar(text("SELECT last_used FROM api_key WHERE name = 'run'"))
    assert used is not None


async def test_revoking_with_the_cli_takes_effect_without_a_restart(server, keys, tmp_path, database_url):
    admin = prefect_with(server, tmp_path, "admin", keys["admin"])
    assert "first created" in admin.cli("create", "project", "first").stdout
    revoked = subprocess.run(
        [sys.executable, "-m", "headwater.server.cli", "key", "revoke", "admin"],
        env={**os.environ, "HEADWATER_DATABASE_URL": database_url, "HEADWATER_LOG_LEVEL": "WARNING"},
        capture_output=True, text=True, timeout=120,
    )
    assert revoked.returncode == 0, revoked.stderr
    await asyncio.sleep(1.5)  # the server's cache lasts HEADWATER_API_KEY_CACHE_SECONDS=1
    refused = admin.cli("create", "project", "second", check=False)
    assert "AuthorizationError" in refused.stdout and "Unauthenticated" in refused.stdout, refused.stdout
    assert server.process.poll() is None, "the same server process, never restarted"
