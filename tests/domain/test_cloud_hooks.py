"""Cloud hooks end to end in one process: created through GraphQL, queued by flow-run state
changes in the same transaction, sent by the delivery service to a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
from sqlalchemy import text

from headwater.server.domain.hook_delivery import DeliveryPolicy
from headwater.server.domain.hook_requests import verify_signature
from headwater.services.hook_delivery import HookDelivery
from tests import factories as f
from tests.hook_receiver import Receiver

STATES = "states { id status message }"


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def service(app, **policy) -> HookDelivery:
    policy = {"retry_base": 0.05, "retry_cap": 0.2, "connect_timeout": 2.0, "read_timeout": 2.0, **policy}
    return HookDelivery(app.state.sessions, interval=0.05, batch_size=50, policy=DeliveryPolicy(**policy))


async def drain(app, **policy) -> int:
    """Passes until nothing is due any more (retries included)."""
    hooks = service(app, **policy)
    total = 0
    for _ in range(200):
        handled = await hooks.run_once()
        total += handled
        pending = await pending_count(app)
        if not pending:
            break
        await asyncio.sleep(0.05)
    return total


async def pending_count(app) -> int:
    async with app.state.sessions() as session:
        return await session.scalar(text("SELECT count(*) FROM cloud_hook_delivery WHERE status = 'pending'"))


async def create_flow(gql, tenant_id, name="notify") -> dict:
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": f"p-{name}"}))["id"]
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow(name)}))["id"]
    data = await gql("query($id: uuid!) { flow_by_pk(id: $id) { version_group_id } }", {"id": flow_id})
    return {"id": flow_id, "version_group_id": data["flow_by_pk"]["version_group_id"]}


async def create_run(gql, flow_id) -> str:
    return (await gql.mutate("create_flow_run", {"flow_id": flow_id}))["id"]


async def set_state(gql, run_id, state_type, message=None) -> None:
    state = {"type": state_type, "message": message or f"now {state_type}", "__version__": "1.4.1"}
    await gql(
        f"mutation($input: set_flow_run_states_input!) {{ set_flow_run_states(input: $input) {{ {STATES} }} }}",
        {"input": {"states": [{"flow_run_id": run_id, "state": state}]}},
    )


async def create_hook(gql, tenant_id, hook_type, states, config=None, **extra) -> str:
    payload = {"tenant_id": tenant_id, "type": hook_type, "states": states, "config": config, **extra}
    return (await gql.mutate("create_cloud_hook", payload))["id"]


# --- creating hooks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hook_type", "states", "config", "message"),
    [
        ("WEBHOOK", [], {"url": "http://x"}, "Invalid states"),
        ("WEBHOOK", ["Nope"], {"url": "http://x"}, "Invalid states"),
        ("WEBHOOK", ["FAILED"], {}, "Invalid config; expected `url`"),
        ("WEBHOOK", ["FAILED"], {"url": "http://x", "extra": 1}, "Invalid config; expected `url`"),
        ("WEBHOOK", ["FAILED"], {"url": "file:///etc/passwd"}, "Invalid config; `url` must be an http:// or https:// URL"),
        ("SLACK_WEBHOOK", ["FAILED"], {"url": "ftp://host/x"}, "Invalid config; `url` must be an http:// or https:// URL"),
        ("TWILIO", ["FAILED"], {"account_sid": "a", "auth_token": "b", "messaging_service_sid": "c"},
         "Invalid config; expected `account_sid`, `auth_token`, `messaging_service_sid`, and `to`"),
        ("TWILIO", ["FAILED"], {"account_sid": "a", "auth_token": "b", "messaging_service_sid": "c", "to": []},
         "Invalid config; expected `account_sid`, `auth_token`, `messaging_service_sid`, and `to`"),
        ("PAGERDUTY", ["FAILED"], {"api_token": "a", "routing_key": "b"},
         "Invalid config; expected `api_token`, `routing_key`, & `severity`"),
        ("PAGERDUTY", ["FAILED"], {"api_token": "a", "routing_key": "b", "severity": "loud"},
         "Invalid config; severity must be one of {info, warning, error, critical}"),
        ("PAGERDUTY", ["FAILED"], {"api_token": "a", "routing_key": "b", "severity": "info", "api_url": "gopher://x"},
         "Invalid config; `api_url` must be an http:// or https:// URL"),
    ],
)
async def test_create_cloud_hook_refuses_what_prefect_server_refused(gql, tenant_id, hook_type, states, config, message):
    payload = {"tenant_id": tenant_id, "type": hook_type, "states": states, "config": config}
    assert await gql.mutate_error("create_cloud_hook", payload) == message


async def test_create_cloud_hook_stores_upper_cased_states_and_an_unknown_tenant_is_a_foreign_key_violation(gql, tenant_id):
    hook_id = await create_hook(gql, tenant_id, "PREFECT_MESSAGE", ["failed", "Failed", "success"], name="bell")
    data = await gql("query($id: uuid!) { cloud_hook_by_pk(id: $id) { name type states active config } }", {"id": hook_id})
    assert data["cloud_hook_by_pk"] == {"name": "bell", "type": "PREFECT_MESSAGE", "states": ["FAILED", "SUCCESS"],
                                        "active": True, "config": {}}
    payload = {"tenant_id": "00000000-0000-0000-0000-000000000000", "type": "PREFECT_MESSAGE", "states": ["FAILED"]}
    assert await gql.mutate_error("create_cloud_hook", payload) == "Foreign key violation."


async def test_activate_deactivate_and_delete(gql, tenant_id):
    hook_id = await create_hook(gql, tenant_id, "PREFECT_MESSAGE", ["FAILED"])
    for name, active in (("set_cloud_hook_inactive", False), ("set_cloud_hook_inactive", False), ("set_cloud_hook_active", True)):
        assert await gql.mutate(name, {"cloud_hook_id": hook_id}, "success error") == {"success": True, "error": None}
        data = await gql("query($id: uuid!) { cloud_hook_by_pk(id: $id) { active } }", {"id": hook_id})
        assert data["cloud_hook_by_pk"]["active"] is active
    assert (await gql.mutate("delete_cloud_hook", {"cloud_hook_id": hook_id}, "success"))["success"] is True
    assert (await gql.mutate("delete_cloud_hook", {"cloud_hook_id": hook_id}, "success"))["success"] is False
    assert (await gql("{ cloud_hook_aggregate { aggregate { count } } }"))["cloud_hook_aggregate"]["aggregate"]["count"] == 0


# --- firing: each type gets its payload for its states, and only those ---------------------


async def test_each_hook_type_sends_its_payload_for_its_states_only(app, gql, db, tenant_id, receiver):
    flow = await create_flow(gql, tenant_id)
    other = await create_flow(gql, tenant_id, "other")
    await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING"], {"url": receiver.url + "/webhook"})
    await create_hook(gql, tenant_id, "SLACK_WEBHOOK", ["FAILED"], {"url": receiver.url + "/slack"})
    await create_hook(gql, tenant_id, "TWILIO", ["SUCCESS"], {
        "account_sid": "AC1", "auth_token": "tok", "messaging_service_sid": "MG1", "to": ["+100", "+200"],
        "api_url": receiver.url + "/twilio"}, version_group_id=flow["version_group_id"])
    await create_hook(gql, tenant_id, "PAGERDUTY", ["FAILED"], {
        "api_token": "pd-token", "routing_key": "rk", "severity": "error", "api_url": receiver.url + "/pd"})
    await create_hook(gql, tenant_id, "PREFECT_MESSAGE", ["SUCCESS"], version_group_id=flow["version_group_id"])
    # Version groups: one hook only for `other`'s group, one for a group that never runs.
    await create_hook(gql, tenant_id, "WEBHOOK", ["SUCCESS", "FAILED"], {"url": receiver.url + "/other-group"},
                      version_group_id=other["version_group_id"])
    await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING"], {"url": receiver.url + "/nobody"}, version_group_id="nope")
    inactive = await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING"], {"url": receiver.url + "/inactive"})
    await gql.mutate("set_cloud_hook_inactive", {"cloud_hook_id": inactive}, "success")

    good = await create_run(gql, flow["id"])
    for state in ("Submitted", "Running", "Success"):
        await set_state(gql, good, state)
    bad = await create_run(gql, flow["id"])
    await set_state(gql, bad, "Running")
    await set_state(gql, bad, "TimedOut")  # a Failed subclass: exact names only, as in Prefect Server
    await set_state(gql, bad, "Failed", "it broke")
    elsewhere = await create_run(gql, other["id"])
    await set_state(gql, elsewhere, "Success")

    assert await drain(app) == 7
    paths = sorted(r.path for r in receiver.received)
    assert paths == sorted(["/webhook", "/webhook", "/slack", "/twilio/2010-04-01/Accounts/AC1/Messages.json",
                            "/twilio/2010-04-01/Accounts/AC1/Messages.json", "/pd/v2/enqueue", "/other-group"])

    run_names = dict((await db.execute(text("SELECT id::text, name FROM flow_run"))).all())
    webhook = {r.json()["event"]["flow_run"]["id"]: r for r in receiver.on("/webhook")}
    assert set(webhook) == {good, bad}
    event = webhook[good].json()["event"]
    assert event["type"] == "FlowRunStateChange" and event["is_test_event"] is False
    assert event["state"]["state"] == "Running" and event["flow_run"]["state"] == "Running"
    assert event["flow"]["name"] == "notify" and event["flow"]["version_group_id"] == flow["version_group_id"]
    assert event["tenant"]["slug"] == "default"
    assert webhook[good].headers["x-prefect-event-id"] == event["id"]
    assert webhook[good].headers["content-type"] == "application/json"

    slack = receiver.on("/slack")[0].json()
    link = f"http://localhost:4200/default/flow-run/{bad}"
    assert [b["text"]["text"] for b in slack["blocks"]] == [
        f"Run `{run_names[bad]}` of flow `notify` entered a new state:", "*State:* `Failed`",
        "*Message:* it broke", f"*Link:* {link}"]
    assert all(b["type"] == "section" and b["text"]["type"] == "mrkdwn" for b in slack["blocks"])

    twilio = receiver.on("/twilio/2010-04-01/Accounts/AC1/Messages.json")
    assert sorted(r.form()["To"] for r in twilio) == ["+100", "+200"]
    assert twilio[0].form()["From"] == "MG1"
    assert twilio[0].form()["Body"] == (f"Run {run_names[good]} of flow notify entered a new state: Success. \n "
                                        f"Link: http://localhost:4200/default/flow-run/{good}")
    assert twilio[0].headers["authorization"] == "Basic " + base64.b64encode(b"AC1:tok").decode()

    pd = receiver.on("/pd/v2/enqueue")[0]
    assert pd.headers["authorization"] == "Token token=pd-token"
    assert pd.json() == {
        "routing_key": "rk", "event_action": "trigger",
        "payload": {"summary": f"Run {run_names[bad]} entered a new state: Failed", "severity": "error",
                    "source": "cloud.prefect.io/default", "component": "notify", "group": run_names[bad],
                    "class": "State->Failed",
                    "custom_details": {"flow": "notify", "flow_run": run_names[bad], "state": "Failed",
                                       "state_message": "it broke", "tenant_slug": "default"}},
        "links": [{"href": link, "text": f"Flow Run {run_names[bad]}"}],
    }
    assert receiver.on("/other-group")[0].json()["event"]["flow_run"]["id"] == elsewhere

    messages = (await gql("{ message { type read content } }"))["message"]
    assert len(messages) == 1
    assert messages[0]["type"] == "CLOUD_HOOK" and messages[0]["read"] is False
    assert messages[0]["content"]["type"] == "CLOUD_HOOK"
    assert messages[0]["content"]["event"]["flow_run"]["id"] == good
    assert messages[0]["content"]["event"]["state"]["state"] == "Success"

    # Every delivery is recorded, and readable through the generic read layer.
    data = await gql('{ cloud_hook_delivery_aggregate(where: {status: {_eq: "delivered"}}) { aggregate { count } } }')
    assert data["cloud_hook_delivery_aggregate"]["aggregate"]["count"] == 7  # Twilio's two numbers are one delivery
    assert await drain(app) == 0  # delivered rows are never sent again
    assert len(receiver.received) == 7


async def test_a_new_run_fires_its_scheduled_hooks_and_cancel_fires_too(app, gql, tenant_id, receiver):
    flow = await create_flow(gql, tenant_id)
    await create_hook(gql, tenant_id, "WEBHOOK", ["SCHEDULED", "CANCELLED"], {"url": receiver.url + "/w"})
    run_id = await create_run(gql, flow["id"])
    await gql.mutate("cancel_flow_run", {"flow_run_id": run_id}, "state")
    await drain(app)
    states = [r.json()["event"]["state"]["state"] for r in receiver.received]
    assert sorted(states) == ["Cancelled", "Scheduled"]


async def test_the_outbox_row_is_part_of_the_state_change_transaction(app, gql, db, tenant_id, receiver):
    """A state change that rolls back queues nothing (the second state of the batch fails)."""
    flow = await create_flow(gql, tenant_id)
    await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING"], {"url": receiver.url + "/w"})
    run_id = await create_run(gql, flow["id"])
    state = {"type": "Running", "__version__": "1.4.1"}
    payload = {"states": [{"flow_run_id": run_id, "state": state},
                          {"flow_run_id": "00000000-0000-0000-0000-000000000000", "state": state}]}
    await gql.mutate_error("set_flow_run_states", payload, STATES)
    assert await db.scalar(text("SELECT count(*) FROM cloud_hook_delivery")) == 0
    await set_state(gql, run_id, "Running")
    await db.commit()
    assert await db.scalar(text("SELECT count(*) FROM cloud_hook_delivery WHERE status = 'pending'")) == 1


# --- retries, failure, signature, test_cloud_hook -------------------------------------------


async def test_a_receiver_failing_twice_gets_one_successful_delivery_after_three_attempts(app, gql, tenant_id, receiver):
    flow = await create_flow(gql, tenant_id)
    hook_id = await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING"], {"url": receiver.url + "/w"})
    receiver.fail_next = 2
    run_id = await create_run(gql, flow["id"])
    await set_state(gql, run_id, "Running")
    await drain(app)
    assert [r.path for r in receiver.received] == ["/w"] * 3
    assert len({r.headers["x-headwater-delivery-id"] for r in receiver.received}) == 1
    data = await gql(
        "query($id: uuid!) { cloud_hook_by_pk(id: $id) { deliveries { status attempts last_error last_http_status "
        "delivered_at state flow_run_id } } }", {"id": hook_id})
    [delivery] = data["cloud_hook_by_pk"]["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert delivery["last_http_status"] == 200 and delivery["last_error"] is None
    assert delivery["delivered_at"] is not None and delivery["state"] == "Running" and delivery["flow_run_id"] == run_id


async def test_a_delivery_that_keeps_failing_is_marked_failed_with_its_error(app, gql, tenant_id, receiver):
    flow = await create_flow(gql, tenant_id)
    await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING"], {"url": receiver.url + "/w"})
    receiver.fail_next, receiver.fail_status = 100, 503
    await set_state(gql, await create_run(gql, flow["id"]), "Running")
    await drain(app, max_attempts=4)
    assert len(receiver.received) == 4
    rows = (await gql("{ cloud_hook_delivery { status attempts last_error last_http_status delivered_at } }"))["cloud_hook_delivery"]
    assert rows == [{"status": "failed", "attempts": 4, "last_error": "HTTP 503: nope", "last_http_status": 503,
                     "delivered_at": None}]


async def test_an_unreachable_receiver_is_recorded_as_a_connection_error(app, gql, tenant_id, receiver):
    flow = await create_flow(gql, tenant_id)
    await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING"], {"url": "http://127.0.0.1:9/nothing-listens"})
    await set_state(gql, await create_run(gql, flow["id"]), "Running")
    await drain(app, max_attempts=2)
    [row] = (await gql("{ cloud_hook_delivery { status attempts last_error last_http_status } }"))["cloud_hook_delivery"]
    assert row["status"] == "failed" and row["attempts"] == 2 and row["last_http_status"] is None
    assert "ConnectError" in row["last_error"]


async def test_a_webhook_with_a_secret_is_signed(app, gql, tenant_id, receiver):
    flow = await create_flow(gql, tenant_id)
    await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING"], {"url": receiver.url + "/signed", "secret": "s3cret"})
    await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING"], {"url": receiver.url + "/plain"})
    await set_state(gql, await create_run(gql, flow["id"]), "Running")
    await drain(app)
    signed, plain = receiver.on("/signed")[0], receiver.on("/plain")[0]
    timestamp, signature = signed.headers["x-headwater-timestamp"], signed.headers["x-headwater-signature"]
    assert signature.startswith("sha256=")
    assert verify_signature("s3cret", timestamp, signed.body, signature)
    assert not verify_signature("wrong", timestamp, signed.body, signature)
    assert not verify_signature("s3cret", timestamp, signed.body + b" ", signature)
    assert not verify_signature("s3cret", str(int(timestamp) + 1), signed.body, signature)
    assert not verify_signature("s3cret", timestamp, signed.body, signature, now=time.time() + 3600)
    assert "x-headwater-signature" not in plain.headers


async def test_test_cloud_hook_sends_the_test_payload_whatever_the_hooks_states(app, gql, tenant_id, receiver):
    hook_id = await create_hook(gql, tenant_id, "WEBHOOK", ["FAILED"], {"url": receiver.url + "/t"})
    result = await gql.mutate("test_cloud_hook", {"cloud_hook_id": hook_id}, "success error")
    assert result == {"success": True, "error": None}
    event = receiver.received[0].json()["event"]
    assert event["is_test_event"] is True and event["flow"]["name"] == "Cloud Hook Test Flow"
    assert event["tenant"] == {"id": tenant_id, "slug": "test-slug"}
    assert event["state"]["state"] == "Success" and event["state"]["message"] == "Test success state"

    flow = await create_flow(gql, tenant_id)
    run_id = await create_run(gql, flow["id"])
    result = await gql.mutate("test_cloud_hook", {"cloud_hook_id": hook_id, "flow_run_id": run_id, "state_type": "RUNNING"},
                              "success")
    assert result["success"] is True
    event = receiver.received[1].json()["event"]
    assert event["flow_run"]["id"] == run_id and event["flow_run"]["is_test_event"] is True
    assert event["flow_run"]["version"] == 2 and event["is_test_event"] is False
    assert event["state"]["state"] == "Running" and event["state"]["message"] == "Test running state"
    assert event["flow"]["name"] == "notify" and event["tenant"]["slug"] == "default"

    receiver.fail_next = 1
    result = await gql.mutate("test_cloud_hook", {"cloud_hook_id": hook_id}, "success error")
    assert result == {"success": False, "error": "HTTP 500: nope"}
    # A test sends directly: nothing is queued.
    assert (await gql("{ cloud_hook_delivery_aggregate { aggregate { count } } }"))["cloud_hook_delivery_aggregate"]["aggregate"]["count"] == 0
    unknown = {"cloud_hook_id": "00000000-0000-0000-0000-000000000000"}
    assert await gql.mutate_error("test_cloud_hook", unknown, "success") == "Invalid ID"


# --- messages -------------------------------------------------------------------------------


async def test_prefect_message_hooks_create_messages_that_can_be_marked_and_deleted(app, gql, tenant_id):
    flow = await create_flow(gql, tenant_id)
    hook_id = await create_hook(gql, tenant_id, "PREFECT_MESSAGE", ["FAILED"])
    await set_state(gql, await create_run(gql, flow["id"]), "Failed")
    await drain(app)
    await gql.mutate("test_cloud_hook", {"cloud_hook_id": hook_id, "state_type": "FAILED"}, "success")
    rows = (await gql("{ message(order_by: {created: asc}) { id read type content } }"))["message"]
    assert [r["content"]["event"]["state"]["state"] for r in rows] == ["Failed", "Failed"]
    assert [r["content"]["event"]["is_test_event"] for r in rows] == [False, True]
    first = rows[0]["id"]
    for name, read in (("mark_message_as_read", True), ("mark_message_as_unread", False), ("mark_message_as_read", True)):
        assert (await gql.mutate(name, {"message_id": first}, "success"))["success"] is True
        assert (await gql("query($id: uuid!) { message_by_pk(id: $id) { read } }", {"id": first}))["message_by_pk"]["read"] is read
    unread = await gql("{ message_aggregate(where: {read: {_eq: false}}) { aggregate { count } } }")
    assert unread["message_aggregate"]["aggregate"]["count"] == 1
    assert (await gql.mutate("delete_message", {"message_id": first}, "success"))["success"] is True
    assert (await gql.mutate("delete_message", {"message_id": first}, "success"))["success"] is False
    assert (await gql.mutate("mark_message_as_read", {"message_id": first}, "success"))["success"] is False
    assert [r["id"] for r in (await gql("{ message { id } }"))["message"]] == [rows[1]["id"]]


async def test_deleting_a_hook_drops_its_queue_and_deleting_a_run_keeps_the_record(app, gql, db, tenant_id, receiver):
    flow = await create_flow(gql, tenant_id)
    keep = await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING"], {"url": receiver.url + "/keep"})
    drop = await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING"], {"url": receiver.url + "/drop"})
    run_id = await create_run(gql, flow["id"])
    await set_state(gql, run_id, "Running")
    await gql.mutate("delete_cloud_hook", {"cloud_hook_id": drop}, "success")
    await gql.mutate("delete_flow_run", {"flow_run_id": run_id}, "success")
    await drain(app)
    assert [r.path for r in receiver.received] == ["/keep"]
    rows = (await gql("{ cloud_hook_delivery { cloud_hook_id flow_run_id status payload } }"))["cloud_hook_delivery"]
    assert [(r["cloud_hook_id"], r["flow_run_id"], r["status"]) for r in rows] == [(keep, None, "delivered")]
    assert rows[0]["payload"]["flow_run"]["id"] == run_id


# --- a slow receiver never slows a state change ---------------------------------------------


async def test_a_hanging_receiver_does_not_slow_set_flow_run_states(app, gql, tenant_id, receiver):
    flow = await create_flow(gql, tenant_id)
    await create_hook(gql, tenant_id, "WEBHOOK", ["RUNNING", "SUCCESS"], {"url": receiver.url + "/hang"})
    runs = [await create_run(gql, flow["id"]) for _ in range(10)]
    baseline = []
    for run_id in runs[:3]:
        started = time.monotonic()
        await set_state(gql, run_id, "Submitted")
        baseline.append(time.monotonic() - started)

    receiver.hang = True
    hooks = service(app, connect_timeout=1.0, read_timeout=3.0)
    delivering = asyncio.create_task(hooks.run())
    try:
        timings = []
        for run_id in runs:
            for state in ("Running", "Success"):
                started = time.monotonic()
                await set_state(gql, run_id, state)
                timings.append(time.monotonic() - started)
                await asyncio.sleep(0.02)
        receiver.wait_for(1, timeout=5)
        assert receiver.received, "the delivery service never reached the receiver"
        # Generous margins: a state change takes milliseconds; the receiver hangs for seconds.
        assert max(timings) < 1.0, timings
        assert sum(timings) < 5.0, timings
        # The hanging sends time out and are recorded as such.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = (await gql("{ cloud_hook_delivery(where: {attempts: {_gt: 0}}) { last_error } }"))["cloud_hook_delivery"]
            if any(r["last_error"] and "timed out" in r["last_error"] for r in rows):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("no delivery recorded its timeout")
    finally:
        receiver.released.set()
        hooks.stop()
        await asyncio.wait_for(delivering, 30)


# --- roles ----------------------------------------------------------------------------------


async def test_hook_and_message_mutations_need_the_admin_role(settings, engine, tenant_id):
    from tests.domain.test_api_keys import create, server
    from headwater.server.db.engine import create_sessionmaker

    sessions = create_sessionmaker(engine)
    keys = {role: await create(sessions, f"{role}-hooks", role) for role in ("read", "run", "admin")}
    payload = {"tenant_id": tenant_id, "type": "PREFECT_MESSAGE", "states": ["FAILED"]}
    async with server(settings, api_key_cache_seconds=0) as client:
        for role in ("read", "run"):
            message = await client(keys[role]).mutate_error("create_cloud_hook", payload)
            assert message == f"The API key '{role}-hooks' has role '{role}', which may not run mutation create_cloud_hook."
            message = await client(keys[role]).mutate_error(
                "mark_message_as_read", {"message_id": "00000000-0000-0000-0000-000000000001"}, "success")
            assert "may not run mutation mark_message_as_read" in message
        assert (await client(keys["admin"]).mutate("create_cloud_hook", payload))["id"]
        assert (await client(keys["read"])("{ cloud_hook { type } }"))["cloud_hook"] == [{"type": "PREFECT_MESSAGE"}]


async def test_a_hooks_config_is_readable_by_admin_keys_only(settings, engine, tenant_id):
    """A hook's config holds its receiver's credentials: read and run keys may list hooks, but
    neither select, filter, order nor count by `config`, directly or through a relationship."""
    from tests.domain.test_api_keys import create, server
    from headwater.server.db.engine import create_sessionmaker

    sessions = create_sessionmaker(engine)
    keys = {role: await create(sessions, f"{role}-config", role) for role in ("read", "run", "admin")}
    config = {"url": "https://hooks.slack.test/T000/B000/secret-path"}
    payload = {"tenant_id": tenant_id, "type": "SLACK_WEBHOOK", "states": ["FAILED"], "config": config}
    refused = [
        "{ cloud_hook { id config } }",
        '{ cloud_hook(where: {config: {_contains: {url: "x"}}}) { id } }',
        "{ cloud_hook(order_by: {config: asc}) { id } }",
        "{ cloud_hook(distinct_on: config) { id } }",
        '{ cloud_hook(where: {_or: [{name: {_eq: "a"}}, {_not: {config: {_has_key: "url"}}}]}) { id } }',
        '{ cloud_hook_delivery(where: {cloud_hook: {config: {_has_key: "url"}}}) { id } }',
        "{ cloud_hook_delivery { cloud_hook { config } } }",
        "{ cloud_hook_aggregate { aggregate { count(columns: config, distinct: true) } } }",
    ]
    async with server(settings, api_key_cache_seconds=0) as client:
        hook_id = (await client(keys["admin"]).mutate("create_cloud_hook", payload))["id"]
        for role in ("read", "run"):
            assert (await client(keys[role])("{ cloud_hook { id type } }"))["cloud_hook"] == [
                {"id": hook_id, "type": "SLACK_WEBHOOK"}]
            for query in refused:
                message = await client(keys[role]).error(query)
                assert message.startswith("`cloud_hook.config` holds secrets"), (query, message)
                assert f"role '{role}'" in message
        admin = client(keys["admin"])
        assert (await admin("{ cloud_hook { config } }"))["cloud_hook"] == [{"config": config}]
        for query in refused:
            assert "errors" not in await admin.raw(query), query
