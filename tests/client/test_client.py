"""The Client and AsyncClient against a real headwater server."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from graphql import build_schema, parse, validate

from headwater.client import AsyncClient, BadRequest, Client, Conflict, NotFound, RunTimeout, ServerUnavailable
from headwater.client import documents
from headwater.server.graphql.export import SCHEMA_FILE
from tests import factories as f

pytestmark = pytest.mark.slow


@pytest.fixture
def hw(live_server):
    with Client(live_server.url, retries=1, backoff=0.05) as client:
        yield client


def test_every_client_document_is_valid_against_schema_graphql():
    schema = build_schema(SCHEMA_FILE.read_text())
    for name, document in documents.ALL.items():
        errors = validate(schema, parse(document))
        assert not errors, f"{name}: {errors}"


def test_projects(hw):
    project_id = hw.create_project("etl", "nightly")
    with pytest.raises(Conflict, match="project 'etl' already exists"):
        hw.create_project("etl")
    hw.set_project_description(project_id, "hourly")
    hw.set_project_name(project_id, "elt")
    [project] = hw.list_projects()
    assert project["name"] == "elt" and project["description"] == "hourly"
    assert hw.delete_project("elt") is True
    with pytest.raises(NotFound, match="Project 'elt' not found."):
        hw.delete_project("elt")


def test_register_run_and_read(hw):
    hw.create_project("p")
    flow = f.flow("etl", parameters=[f.parameter("n", default=1)])
    flow_id = hw.register_flow(flow, "p", idempotency_key="v1")
    assert hw.register_flow(flow, "p", idempotency_key="v1") == flow_id
    plain = hw.register_flow(flow, "p", compressed=False)
    assert plain != flow_id and hw.get_flow(flow_id)["archived"] is True
    found = hw.find_flow("etl", project="p")
    assert found["id"] == plain and found["version"] == 2
    assert [x["version"] for x in hw.list_flows(all_versions=True)] == [2, 1]

    for switch in ("disable_flow_heartbeat", "disable_flow_lazarus_process", "enable_flow_version_lock"):
        assert getattr(hw, switch)(plain) is True
    settings = hw.get_flow(plain)["flow_group"]["settings"]
    assert settings["heartbeat_enabled"] is False and settings["lazarus_enabled"] is False
    assert settings["version_locking_enabled"] is True
    for switch in ("enable_flow_heartbeat", "enable_flow_lazarus_process", "disable_flow_version_lock"):
        assert getattr(hw, switch)(plain) is True
    settings = hw.get_flow(plain)["flow_group"]["settings"]
    assert settings["heartbeat_enabled"] is True and settings["lazarus_enabled"] is True
    assert settings["version_locking_enabled"] is False
    assert hw.set_schedule_inactive(plain) is True
    hw.set_flow_group_default_parameters(found["flow_group_id"], {"n": 7})
    hw.set_flow_group_labels(found["flow_group_id"], ["team"])
    assert hw.set_schedule_active(plain) is True

    run_id = hw.create_flow_run(plain, parameters={"m": 1}, run_name="first", scheduled_start_time="2030-01-01T00:00:00")
    run = hw.get_flow_run(run_id)
    assert run["name"] == "first" and run["state"] == "Scheduled"
    assert run["parameters"] == {"n": 7, "m": 1} and run["labels"] == ["team"]
    assert run["scheduled_start_time"].startswith("2030-01-01T00:00:00")
    assert [s["state"] for s in hw.get_flow_run_states(run_id)] == ["Scheduled"]
    assert {t["task"]["slug"] for t in hw.get_task_runs(run_id)} == {"extract-1", "load-1", "n"}
    assert hw.get_logs(run_id) == []
    assert [r["id"] for r in hw.list_flow_runs(flow_id=plain)] == [run_id]
    assert hw.set_flow_run_name(run_id, "renamed") is True
    with pytest.raises(RunTimeout):
        hw.wait_for_flow_run(run_id, timeout=0.2, poll_interval=0.05)
    assert hw.cancel_flow_run(run_id) == "Cancelled"
    assert hw.wait_for_flow_run(run_id, timeout=5)["state"] == "Cancelled"
    assert hw.delete_flow_run(run_id) is True
    assert hw.archive_flow(plain) is True and hw.unarchive_flow(plain) is True
    assert hw.delete_flow(plain) is True


def test_errors_are_typed(hw):
    with pytest.raises(NotFound, match="not found"):
        hw.create_flow_run("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound, match="No active flow named 'ghost'"):
        hw.find_flow("ghost")
    hw.create_project("p")
    flow_id = hw.register_flow(f.flow("needs", parameters=[f.parameter("x", required=True)]), "p")
    with pytest.raises(BadRequest, match="Required parameters were not supplied: x."):
        hw.create_flow_run(flow_id)
    with pytest.raises(BadRequest, match="Could not parse UUID"):
        hw.get_flow_run("not-a-uuid")


def test_server_down_is_server_unavailable():
    with Client("http://127.0.0.1:9", retries=1, backoff=0.01) as down:
        with pytest.raises(ServerUnavailable, match="Cannot reach headwater"):
            down.hello()


class DropFirstResponse(httpx.HTTPTransport):
    """Forwards every request, but loses the response of the first create_flow_run."""

    dropped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if b"create_flow_run" in request.content and not self.dropped:
            type(self).dropped += 1
            response.close()
            raise httpx.ReadError("connection reset after the server answered")
        return response


def test_retry_after_dropped_connection_makes_one_run(live_server, hw):
    hw.create_project("p")
    flow_id = hw.register_flow(f.flow(), "p")
    with Client(live_server.url, transport=DropFirstResponse(), retries=3, backoff=0.01) as flaky:
        run_id = flaky.create_flow_run(flow_id)
    assert DropFirstResponse.dropped == 1
    assert [r["id"] for r in hw.list_flow_runs(flow_id=flow_id)] == [run_id]


def test_api_key_header_is_sent(live_server):
    seen = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"data": {"hello": "hi"}})

    with Client("http://headwater.test", api_key="s3cret", transport=httpx.MockTransport(record)) as hw:
        assert hw.hello() == "hi"
    assert seen == ["Bearer s3cret"]


async def test_async_client(live_server):
    async with AsyncClient(live_server.url) as hw:
        assert await hw.hello() == "👋"
        await hw.create_project("async")
        flow_id = await hw.register_flow(f.flow(), "async")
        runs = await asyncio.gather(*(hw.create_flow_run(flow_id, idempotency_key="same") for _ in range(5)))
        assert len(set(runs)) == 1
        assert (await hw.cancel_flow_run(runs[0])) == "Cancelled"


def test_create_project_exist_ok_returns_the_existing_project(hw):
    project_id = hw.create_project("etl", "nightly")
    # The README snippet, run a second time: the existing project, unchanged.
    assert hw.create_project("etl", exist_ok=True) == project_id
    assert hw.create_project(" etl ", "other", exist_ok=True) == project_id
    [project] = hw.list_projects()
    assert project["description"] == "nightly"
    assert hw.create_project("new", exist_ok=True) != project_id
    # Other errors still raise.
    with pytest.raises(BadRequest, match="must not be empty"):
        hw.create_project("  ", exist_ok=True)


async def test_async_create_project_exist_ok(live_server):
    async with AsyncClient(live_server.url) as hw:
        project_id = await hw.create_project("again")
        assert await hw.create_project("again", exist_ok=True) == project_id
        with pytest.raises(Conflict, match="project 'again' already exists"):
            await hw.create_project("again")


def test_register_a_prefect_flow_object(hw):
    prefect = pytest.importorskip("prefect")

    @prefect.task
    def add(x, y):
        return x + y

    with prefect.Flow("object-flow") as flow:
        add(prefect.Parameter("x", default=1), 2)
    hw.create_project("objects")
    flow_id = hw.register_flow(flow, "objects", idempotency_key=flow.serialized_hash())
    assert hw.register_flow(flow, "objects", idempotency_key=flow.serialized_hash()) == flow_id
    stored = hw.get_flow(flow_id)
    assert stored["name"] == "object-flow" and [p["name"] for p in stored["parameters"]] == ["x"]
    assert {t["task"]["slug"] for t in hw.get_task_runs(hw.create_flow_run(flow_id))} == {"add-1", "x"}
