"""The Client's deployment methods against a real headwater server."""

from __future__ import annotations

import pytest

from headwater.client import AsyncClient, BadRequest, Client, Conflict, NotFound
from tests import factories as f

pytestmark = pytest.mark.slow


@pytest.fixture
def hw(live_server):
    with Client(live_server.url, retries=1, backoff=0.05) as client:
        yield client


def test_deployment_lifecycle(hw):
    hw.create_project("dp")
    flow_id = hw.register_flow(f.flow("Addition Machine", parameters=[f.parameter("nums", required=True)]), "dp")
    group = hw.get_flow(flow_id)["flow_group_id"]
    deployment_id = hw.create_deployment(group, "my-first-deployment", parameters={"nums": [1, 2, 3, 4]},
                                         tags=["demo"], schedule={"interval": 3600})
    with pytest.raises(Conflict, match="already exists"):
        hw.create_deployment(group, "my-first-deployment")
    with pytest.raises(BadRequest, match=r"schedule\[0\].cron: invalid cron '61 \* \* \* \*'"):
        hw.create_deployment(group, "bad", schedule=[{"cron": "61 * * * *"}])
    with pytest.raises(NotFound):
        hw.delete_deployment("00000000-0000-0000-0000-000000000000")

    [row] = hw.get_deployments(flow_group_id=group)
    assert row["id"] == deployment_id and row["name"] == "my-first-deployment"
    assert row["flow_name"] == "Addition Machine" and row["project_name"] == "dp"
    assert row["flow_group_name"] and row["schedule"] == [{"interval": 3600}] and row["is_schedule_active"] is True
    assert hw.get_deployments(name="nope") == []

    assert hw.update_deployment(deployment_id, description="sums", labels=None) == deployment_id
    assert hw.get_deployments(name="my-first-deployment")[0]["description"] == "sums"
    assert hw.set_deployment_schedule_active(deployment_id, False) is True
    assert hw.get_deployments()[0]["is_schedule_active"] is False
    assert hw.set_deployment_schedule_active(deployment_id, True) is True

    run_id = hw.run_deployment(deployment_id, parameters={"nums": [5]}, run_name="quick", idempotency_key="k1")
    assert hw.run_deployment(deployment_id, idempotency_key="k1") == run_id, "idempotent"
    run = hw.get_flow_run(run_id)
    assert run["name"] == "quick" and run["parameters"] == {"nums": [5]}

    items = [{"flow_group_id": group, "name": "my-first-deployment", "description": "sums",
              "parameters": {"nums": [1, 2, 3, 4]}, "tags": ["demo"], "schedule": {"interval": 3600}},
             {"flow_group_id": group, "name": "second", "parameters": {"nums": [1]}}]
    assert [o["outcome"] for o in hw.apply_deployment_items(items, dry_run=True)] == ["unchanged", "created"]
    assert len(hw.get_deployments()) == 1
    outcomes = hw.apply_deployment_items(items)
    assert [(o["name"], o["outcome"]) for o in outcomes] == [("my-first-deployment", "unchanged"), ("second", "created")]
    assert outcomes[0]["id"] == deployment_id
    assert hw.delete_deployment(outcomes[1]["id"]) is True


async def test_async_client(live_server):
    async with AsyncClient(live_server.url, retries=1, backoff=0.05) as hw:
        await hw.create_project("adp")
        flow_id = await hw.register_flow(f.flow("async-flow"), "adp")
        group = (await hw.get_flow(flow_id))["flow_group_id"]
        deployment_id = await hw.create_deployment(group, "a")
        assert (await hw.get_deployments(flow_group_id=group))[0]["id"] == deployment_id
        run_id = await hw.run_deployment(deployment_id)
        assert (await hw.get_flow_run(run_id))["id"] == run_id
