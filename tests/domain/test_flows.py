"""Flow registration, versioning, archiving, schedule activation and the flow settings."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests import factories as f

CREATE = "create_flow"


@pytest.fixture
async def project_id(gql, tenant_id) -> str:
    return (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "etl"}))["id"]


async def register(gql, project_id: str, flow: dict | None = None, **extra) -> str:
    payload = {"project_id": project_id, "serialized_flow": flow or f.flow(), **extra}
    return (await gql.mutate(CREATE, payload))["id"]


async def rows(db, sql: str, **params) -> list:
    return (await db.execute(text(sql), params)).mappings().all()


async def count(db, table: str) -> int:
    return await db.scalar(text(f"SELECT count(*) FROM {table}"))


async def test_create_flow_stores_flow_tasks_and_edges(gql, db, project_id):
    flow_id = await register(gql, project_id, description="nightly load")
    [flow] = await rows(db, "SELECT * FROM flow WHERE id = :id", id=flow_id)
    assert flow["name"] == "etl" and flow["version"] == 1 and not flow["archived"]
    assert flow["core_version"] == "1.4.1" and flow["description"] == "nightly load"
    assert flow["storage"]["type"] == "Local" and flow["run_config"]["type"] == "UniversalRun"
    assert flow["settings"] == {} and flow["serialized_flow"]["name"] == "etl"
    assert flow["version_group_id"] and flow["flow_group_id"]
    tasks = {r["slug"]: r for r in await rows(db, "SELECT * FROM task WHERE flow_id = :id", id=flow_id)}
    assert set(tasks) == {"extract-1", "load-1"}
    assert tasks["extract-1"]["is_root_task"] and not tasks["extract-1"]["is_terminal_task"]
    assert tasks["load-1"]["is_terminal_task"] and tasks["load-1"]["is_reference_task"]
    assert tasks["extract-1"]["trigger"] == "prefect.triggers.all_successful"
    [edge] = await rows(db, "SELECT * FROM edge WHERE flow_id = :id", id=flow_id)
    assert edge["upstream_task_id"] == tasks["extract-1"]["id"] and edge["key"] == "rows"
    [group] = await rows(db, "SELECT * FROM flow_group WHERE id = :id", id=flow["flow_group_id"])
    assert group["name"] == flow["version_group_id"]
    assert group["settings"]["heartbeat_enabled"] is True and group["settings"]["lazarus_enabled"] is True
    assert group["settings"]["version_locking_enabled"] is False


async def test_compressed_flow_registers_like_plain(gql, db, project_id):
    payload = {"project_id": project_id, "serialized_flow": f.compress(f.flow("zipped")), "set_schedule_active": False}
    flow_id = (await gql.mutate("create_flow_from_compressed_string", payload))["id"]
    assert await db.scalar(text("SELECT name FROM flow WHERE id = :id"), {"id": flow_id}) == "zipped"
    assert await db.scalar(text("SELECT count(*) FROM task WHERE flow_id = :id"), {"id": flow_id}) == 2


async def test_three_registrations_version_and_archive(gql, db, project_id):
    ids = [await register(gql, project_id) for _ in range(3)]
    assert len(set(ids)) == 3
    flows = await rows(db, "SELECT id, version, archived, version_group_id, flow_group_id FROM flow ORDER BY version")
    assert [r["version"] for r in flows] == [1, 2, 3]
    assert [r["archived"] for r in flows] == [True, True, False]
    assert str(flows[2]["id"]) == ids[2]
    assert len({r["version_group_id"] for r in flows}) == 1 and len({r["flow_group_id"] for r in flows}) == 1
    assert await count(db, "flow_group") == 1


async def test_same_name_in_another_project_is_another_group(gql, db, project_id, tenant_id):
    other = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "other"}))["id"]
    await register(gql, project_id)
    await register(gql, other)
    flows = await rows(db, "SELECT version, archived, flow_group_id FROM flow")
    assert [r["version"] for r in flows] == [1, 1] and not any(r["archived"] for r in flows)
    assert len({r["flow_group_id"] for r in flows}) == 2


async def test_explicit_version_group_id_joins_flows_across_names(gql, db, project_id):
    first = await register(gql, project_id, f.flow("a"), version_group_id="shared")
    second = await register(gql, project_id, f.flow("b"), version_group_id="shared")
    versions = await rows(db, "SELECT id, version, archived FROM flow ORDER BY version")
    assert [(str(r["id"]), r["version"], r["archived"]) for r in versions] == [(first, 1, True), (second, 2, False)]


async def test_idempotency_key_returns_existing_flow(gql, db, project_id):
    first = await register(gql, project_id, idempotency_key="hash-1")
    again = await register(gql, project_id, idempotency_key="hash-1")
    assert again == first and await count(db, "flow") == 1
    changed = await register(gql, project_id, idempotency_key="hash-2")
    assert changed != first
    back = await register(gql, project_id, idempotency_key="hash-1")
    assert back not in (first, changed), "only the group's last key deduplicates"
    assert await count(db, "flow") == 3


async def test_register_tasks_and_edges_in_batches(gql, db, project_id):
    flow = f.flow("batched")
    tasks, edges = flow.pop("tasks"), flow.pop("edges")
    flow_id = await register(gql, project_id, flow, set_schedule_active=False)
    assert await count(db, "task") == 0
    for batch in ([tasks[0]], [tasks[1]], []):
        assert (await gql.mutate("register_tasks", {"flow_id": flow_id, "serialized_tasks": batch}, "success"))[
            "success"
        ]
    await gql.mutate("register_tasks", {"flow_id": flow_id, "serialized_tasks": tasks}, "success")
    assert await count(db, "task") == 2, "a slug registered twice is kept once"
    await gql.mutate("register_edges", {"flow_id": flow_id, "serialized_edges": edges}, "success")
    await gql.mutate("register_edges", {"flow_id": flow_id, "serialized_edges": []}, "success")
    assert await count(db, "edge") == 1
    flags = dict((await db.execute(text("SELECT slug, is_root_task FROM task"))).all())
    assert flags == {"extract-1": True, "load-1": False}
    stored = await db.scalar(text("SELECT serialized_flow FROM flow WHERE id = :id"), {"id": flow_id})
    assert [t["slug"] for t in stored["tasks"]] == ["extract-1", "load-1"]


async def test_register_edges_with_unknown_slug_changes_nothing(gql, db, project_id):
    flow_id = await register(gql, project_id)
    message = await gql.mutate_error(
        "register_edges",
        {"flow_id": flow_id, "serialized_edges": [f.edge("load-1", "nope-1"), f.edge("extract-1", "load-1")]},
        "success",
    )
    assert "do not exist within this flow" in message and "nope-1" in message
    assert await count(db, "edge") == 1


async def test_archive_unarchive_delete_and_move(gql, db, project_id, tenant_id):
    v1 = await register(gql, project_id)
    v2 = await register(gql, project_id)
    assert (await gql.mutate("archive_flow", {"flow_id": v2}, "success"))["success"]
    await gql.mutate("archive_flow", {"flow_id": v2}, "success")  # archiving twice is fine
    assert [r["archived"] for r in await rows(db, "SELECT archived FROM flow ORDER BY version")] == [True, True]
    await gql.mutate("unarchive_flow", {"flow_id": v1}, "success")
    assert [r["archived"] for r in await rows(db, "SELECT archived FROM flow ORDER BY version")] == [False, True]
    await gql.mutate("unarchive_flow", {"flow_id": v2}, "success")
    assert [r["archived"] for r in await rows(db, "SELECT archived FROM flow ORDER BY version")] == [True, False]

    other = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "moved"}))["id"]
    assert (await gql.mutate("update_flow_project", {"flow_id": v2, "project_id": other}))["id"] == v2
    assert str(await db.scalar(text("SELECT project_id FROM flow WHERE id = :id"), {"id": v2})) == other

    await gql.mutate("delete_flow", {"flow_id": v1}, "success")
    assert await count(db, "flow") == 1 and await count(db, "flow_group") == 1
    assert await db.scalar(text("SELECT count(*) FROM task WHERE flow_id = :id"), {"id": v1}) == 0


async def is_schedule_active(gql, flow_id: str) -> bool:
    """What clients read (`headwater flow list`, the Prefect UI)."""
    return (await gql('query { flow_by_pk(id: "%s") { is_schedule_active } }' % flow_id))["flow_by_pk"][
        "is_schedule_active"
    ]


async def test_a_flow_without_a_schedule_reports_it_inactive(gql, db, project_id):
    # As Prefect Server: registration (set_schedule_active defaults to true) leaves a flow with
    # no schedule inactive, and a later group schedule does not switch it on by itself.
    plain = await register(gql, project_id, f.flow("plain"))
    assert await is_schedule_active(gql, plain) is False
    group_id = await db.scalar(text("SELECT flow_group_id FROM flow WHERE id = :id"), {"id": plain})
    await gql.mutate("set_flow_group_schedule", {"flow_group_id": str(group_id), "interval_clocks": [{"interval": 3600}]},
                     "success")
    assert await is_schedule_active(gql, plain) is False
    assert await db.scalar(text("SELECT count(*) FROM flow_run WHERE flow_id = :id"), {"id": plain}) == 0
    # A new version in a group that has a schedule is active at once.
    v2 = await register(gql, project_id, f.flow("plain"))
    assert await is_schedule_active(gql, v2) is True


async def test_schedule_activation(gql, db, project_id):
    no_schedule = await register(gql, project_id, f.flow("plain"), set_schedule_active=False)
    result = await gql.mutate("set_schedule_active", {"flow_id": no_schedule}, "success error")
    assert result == {"success": True, "error": None}, "on before a schedule exists: runs come with one"
    assert await is_schedule_active(gql, no_schedule) is False, "no schedule yet: reported inactive"
    group_id = await db.scalar(text("SELECT flow_group_id FROM flow WHERE id = :id"), {"id": no_schedule})
    await gql.mutate("set_flow_group_schedule", {"flow_group_id": str(group_id), "interval_clocks": [{"interval": 3600}]},
                     "success")
    assert await is_schedule_active(gql, no_schedule) is True
    assert await db.scalar(text("SELECT count(*) FROM flow_run WHERE flow_id = :id AND auto_scheduled"),
                           {"id": no_schedule}) == 10
    # The group's schedule goes: inactive, runs removed; it comes back: active again, with runs.
    await gql.mutate("delete_flow_group_schedule", {"flow_group_id": str(group_id)}, "success")
    assert await is_schedule_active(gql, no_schedule) is False
    assert await db.scalar(text("SELECT count(*) FROM flow_run WHERE flow_id = :id"), {"id": no_schedule}) == 0
    await gql.mutate("set_flow_group_schedule", {"flow_group_id": str(group_id), "interval_clocks": [{"interval": 60}]},
                     "success")
    assert await is_schedule_active(gql, no_schedule) is True
    assert await db.scalar(text("SELECT count(*) FROM flow_run WHERE flow_id = :id"), {"id": no_schedule}) == 10
    # Turned off while waiting for a schedule: a schedule arriving later leaves it off.
    await gql.mutate("delete_flow_group_schedule", {"flow_group_id": str(group_id)}, "success")
    await gql.mutate("set_schedule_inactive", {"flow_id": no_schedule}, "success")
    await gql.mutate("set_flow_group_schedule", {"flow_group_id": str(group_id), "interval_clocks": [{"interval": 60}]},
                     "success")
    assert await is_schedule_active(gql, no_schedule) is False
    assert await db.scalar(text("SELECT count(*) FROM flow_run WHERE flow_id = :id"), {"id": no_schedule}) == 0

    scheduled = await register(gql, project_id, f.flow("hourly", schedule=f.interval_schedule()))
    assert await db.scalar(text("SELECT is_schedule_active FROM flow WHERE id = :id"), {"id": scheduled})
    await gql.mutate("set_schedule_inactive", {"flow_id": scheduled}, "success")
    assert not await db.scalar(text("SELECT is_schedule_active FROM flow WHERE id = :id"), {"id": scheduled})
    result = await gql.mutate("set_schedule_active", {"flow_id": scheduled}, "success error")
    assert result == {"success": True, "error": None}
    assert await db.scalar(text("SELECT is_schedule_active FROM flow WHERE id = :id"), {"id": scheduled})


async def test_schedule_activation_with_required_parameters(gql, db, project_id):
    needs_x = f.flow("needs-x", parameters=[f.parameter("x", required=True)], schedule=f.interval_schedule())
    flow_id = await register(gql, project_id, needs_x)
    assert not await db.scalar(text("SELECT is_schedule_active FROM flow WHERE id = :id"), {"id": flow_id}), (
        "registration succeeds but leaves the schedule off"
    )
    message = await gql.mutate_error("set_schedule_active", {"flow_id": flow_id}, "success")
    assert message.startswith("Can not schedule a flow that has required parameters.") and "x" in message

    group_id = await db.scalar(text("SELECT flow_group_id FROM flow WHERE id = :id"), {"id": flow_id})
    await gql.mutate(
        "set_flow_group_default_parameters", {"flow_group_id": str(group_id), "parameters": {"x": 1}}, "success"
    )
    assert (await gql.mutate("set_schedule_active", {"flow_id": flow_id}, "success"))["success"]

    with_clock_default = f.flow(
        "clock-x", parameters=[f.parameter("x", required=True)], schedule=f.interval_schedule(parameter_defaults={"x": 2})
    )
    clock_flow = await register(gql, project_id, with_clock_default)
    assert await db.scalar(text("SELECT is_schedule_active FROM flow WHERE id = :id"), {"id": clock_flow})


@pytest.mark.parametrize(
    ("enable", "disable", "key"),
    [
        ("enable_flow_heartbeat", "disable_flow_heartbeat", "heartbeat_enabled"),
        ("enable_flow_lazarus_process", "disable_flow_lazarus_process", "lazarus_enabled"),
        ("enable_flow_version_lock", "disable_flow_version_lock", "version_locking_enabled"),
    ],
)
async def test_flow_setting_toggles(gql, db, project_id, enable, disable, key):
    v1 = await register(gql, project_id)
    v2 = await register(gql, project_id, idempotency_key="k")

    async def group_settings() -> dict:
        return await db.scalar(
            text("SELECT g.settings FROM flow_group g JOIN flow f ON f.flow_group_id = g.id WHERE f.id = :id"),
            {"id": v1},
        )

    assert (await gql.mutate(disable, {"flow_id": v1}, "success"))["success"]
    settings = await group_settings()
    assert settings[key] is False and settings["idempotency_key"] == "k", "other keys are kept"
    if key == "heartbeat_enabled":
        assert settings["disable_heartbeat"] is True
    await gql.mutate(enable, {"flow_id": v2}, "success")
    assert (await group_settings())[key] is True, "a toggle acts on the whole flow group"


async def test_bad_input_is_a_clear_error_and_writes_nothing(gql, db, project_id):
    missing = str(uuid.uuid4())
    cases = [
        ({"project_id": missing, "serialized_flow": f.flow()}, f"Project {missing} not found."),
        ({"project_id": project_id, "serialized_flow": {"tasks": []}}, "The serialized flow has no `name`."),
        ({"project_id": project_id, "serialized_flow": "not a flow"}, "must be a JSON object"),
        ({"project_id": project_id, "serialized_flow": f.flow(tasks=[{"name": "no slug"}])}, "missing its `slug`"),
        (
            {"project_id": project_id, "serialized_flow": f.flow(tasks=[f.task("a-1", retry_delay="soon")])},
            "`retry_delay` must be a number of seconds",
        ),
        (
            {"project_id": project_id, "serialized_flow": f.flow(edges=[f.edge("extract-1", "ghost-1")])},
            "ghost-1",
        ),
        ({"project_id": project_id, "serialized_flow": {**f.flow(), "__version__": "0.5.0"}}, "Prefect 0.6.1+"),
        ({"project_id": "not-a-uuid", "serialized_flow": f.flow()}, "Could not parse UUID: not-a-uuid"),
    ]
    for payload, expected in cases:
        assert expected in await gql.mutate_error(CREATE, payload)
    compressed = {"project_id": project_id, "serialized_flow": "%%% not base64 gzip"}
    assert "Unable to decompress serialized flow" in await gql.mutate_error(
        "create_flow_from_compressed_string", compressed
    )
    for table in ("flow", "flow_group", "task", "edge"):
        assert await count(db, table) == 0, table


@pytest.mark.parametrize(
    "mutation",
    [
        "archive_flow",
        "unarchive_flow",
        "delete_flow",
        "set_schedule_active",
        "set_schedule_inactive",
        "enable_flow_heartbeat",
        "disable_flow_lazarus_process",
        "enable_flow_version_lock",
    ],
)
async def test_unknown_flow_id(gql, mutation):
    missing = str(uuid.uuid4())
    assert await gql.mutate_error(mutation, {"flow_id": missing}, "success") == f"Flow {missing} not found."


async def test_compressed_bomb_is_refused(gql, db, project_id, settings):
    import base64
    import gzip

    bomb = base64.b64encode(gzip.compress(b"[" + b"0," * (settings.max_request_bytes * 5) + b"0]")).decode()
    message = await gql.mutate_error(
        "create_flow_from_compressed_string", {"project_id": project_id, "serialized_flow": bomb}
    )
    assert "exceeds the limit" in message
    assert await count(db, "flow") == 0


async def test_concurrent_registrations_get_distinct_versions(gql, db, project_id):
    import asyncio

    ids = await asyncio.gather(*(register(gql, project_id) for _ in range(8)))
    assert len(set(ids)) == 8
    versions = [r["version"] for r in await rows(db, "SELECT version FROM flow ORDER BY version")]
    assert versions == list(range(1, 9))
    assert await db.scalar(text("SELECT count(*) FROM flow WHERE NOT archived")) == 1
