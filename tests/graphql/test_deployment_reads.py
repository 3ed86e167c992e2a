"""Deployments through the Hasura-style read layer, and who may write them."""

from __future__ import annotations

from sqlalchemy import text

from tests import factories as f
from tests.domain.test_api_keys import as_role, keys, sessions, world  # noqa: F401 (fixtures)


async def seed(gql, tenant_id) -> dict:
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "reads"}))["id"]
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow("reader")}))["id"]
    group = (await gql(f'{{ flow_by_pk(id: "{flow_id}") {{ flow_group_id }} }}'))["flow_by_pk"]["flow_group_id"]
    ids = {}
    for name, tags in (("b", ["x"]), ("a", ["x", "y"]), ("c", [])):
        ids[name] = (await gql.mutate("create_deployment", {"flow_group_id": group, "name": name, "tags": tags,
                                                            "flow_id": flow_id if name == "c" else None}))["id"]
    return {"flow_id": flow_id, "flow_group_id": group, "ids": ids}


async def test_where_order_limit_offset_distinct_and_aggregate(gql, tenant_id):
    seeded = await seed(gql, tenant_id)
    page = await gql("{ deployment(order_by: {name: asc}, limit: 2, offset: 1) { name } }")
    assert [d["name"] for d in page["deployment"]] == ["b", "c"]
    tagged = await gql('{ deployment(where: {tags: {_contains: ["x"]}}, order_by: {name: desc}) { name } }')
    assert [d["name"] for d in tagged["deployment"]] == ["b", "a"]
    distinct = await gql("{ deployment(distinct_on: [flow_group_id], order_by: [{flow_group_id: asc}, {name: asc}]) { name } }")
    assert [d["name"] for d in distinct["deployment"]] == ["a"]
    count = await gql('{ deployment_aggregate(where: {flow_id: {_is_null: true}}) { aggregate { count } } }')
    assert count["deployment_aggregate"]["aggregate"]["count"] == 2
    pinned = await gql(f'{{ deployment_by_pk(id: "{seeded["ids"]["c"]}") {{ flow {{ id name }} flow_group {{ id }} }} }}')
    assert pinned["deployment_by_pk"] == {"flow": {"id": seeded["flow_id"], "name": "reader"},
                                          "flow_group": {"id": seeded["flow_group_id"]}}


async def test_flow_run_deployment_and_tag_filters(gql, tenant_id):
    seeded = await seed(gql, tenant_id)
    run_id = (await gql.mutate("create_flow_run", {"deployment_id": seeded["ids"]["a"], "tags": ["z"]}))["id"]
    plain = (await gql.mutate("create_flow_run", {"flow_id": seeded["flow_id"]}))["id"]
    data = await gql("{ flow_run(order_by: {created: asc}) { id tags deployment_id deployment { name } } }")
    assert data["flow_run"] == [
        {"id": run_id, "tags": ["x", "y", "z"], "deployment_id": seeded["ids"]["a"], "deployment": {"name": "a"}},
        {"id": plain, "tags": [], "deployment_id": None, "deployment": None},
    ]
    for where, expected in (('{tags: {_contains: ["y", "z"]}}', [run_id]), ('{tags: {_contains: "x"}}', [run_id]),
                            ('{deployment: {name: {_eq: "a"}}}', [run_id]), ("{deployment_id: {_is_null: true}}", [plain])):
        found = await gql(f"{{ flow_run(where: {where}) {{ id }} }}")
        assert [r["id"] for r in found["flow_run"]] == expected, where
    nested = await gql('{ flow_group { deployments(where: {name: {_eq: "a"}}) { flow_runs { id } } } }')
    assert nested["flow_group"][0]["deployments"] == [{"flow_runs": [{"id": run_id}]}]


async def test_writes_need_the_admin_role_and_runs_need_run(world, db):  # noqa: F811
    admin, runner = as_role(world, "admin"), as_role(world, "run")
    group = await db.scalar(text("SELECT flow_group_id::text FROM flow"))
    message = await runner.mutate_error("create_deployment", {"flow_group_id": group, "name": "d"})
    assert message == "The API key 'run-key' has role 'run', which may not run mutation create_deployment."
    deployment_id = (await admin.mutate("create_deployment", {"flow_group_id": group, "name": "d"}))["id"]
    for name, input in (
        ("update_deployment", {"deployment_id": deployment_id, "name": "e"}),
        ("delete_deployment", {"deployment_id": deployment_id}),
        ("set_deployment_schedule_active", {"deployment_id": deployment_id}),
        ("set_deployment_schedule_inactive", {"deployment_id": deployment_id}),
        ("apply_deployments", {"deployments": []}),
    ):
        assert "may not run mutation " + name in await runner.mutate_error(name, input, "__typename")
    assert (await runner.mutate("create_flow_run", {"deployment_id": deployment_id}))["id"], "running is a run-role act"
