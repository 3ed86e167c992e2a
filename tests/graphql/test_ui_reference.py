"""What the Prefect web UI reads besides tables: `api`, `reference_data`, the tenant it works in,
the tenant updates it sends (without `tenant_id`), and `utility_downstream_tasks` with Hasura's
`_uuid` array scalar (its Restart dialog). The documents are written here in the UI's shapes."""

from __future__ import annotations

import uuid

import pytest

from tests import factories as f

API = "query Api { api { backend mode version core_version release_timestamp } }"
REFERENCE = "query { reference_data { state_hierarchy state_info } }"
DOWNSTREAM = """
query Downstream($flowRunId: uuid, $taskIds: _uuid) {
  utility_downstream_tasks(args: { start_task_ids: $taskIds }) {
    depth
    task_id
    task { slug task_runs(where: { flow_run_id: { _eq: $flowRunId } }) { id map_index version } }
  }
}
"""


async def test_api_answers_what_the_ui_start_up_expects(gql):
    api = (await gql(API))["api"]
    assert api["backend"] == "SERVER" and api["mode"] == "normal"
    assert api["version"] and api["core_version"] == "1.4.1" and api["release_timestamp"] is None


async def test_reference_data_has_core_state_families_and_colours(gql):
    data = (await gql(REFERENCE))["reference_data"]
    hierarchy, info = data["state_hierarchy"], data["state_info"]
    assert hierarchy["Success"] == ["Cached", "Mapped", "Skipped", "Success"]
    assert hierarchy["Failed"] == ["Failed", "TimedOut", "TriggerFailed", "ValidationFailed"]
    assert hierarchy["Running"] == ["Cancelling", "Running"] and hierarchy["Cached"] == ["Cached"]
    assert hierarchy["_MetaState"] == ["ClientFailed", "Queued", "Submitted", "_MetaState"]
    assert len(hierarchy["State"]) == 23 and set(hierarchy["State"]) == set(info)
    assert info["Success"] == {"color": "#28a745"} and info["Failed"] == {"color": "#eb0000"}
    assert info["Cancelling"] == {"color": "#E8E8E8"} and info["Scheduled"] == {"color": "#ffab00"}


async def test_the_ui_sees_a_tenant_and_updates_it_without_tenant_id(gql, tenant_id):
    [tenant] = (await gql("query { tenant { id created name info settings slug } }"))["tenant"]
    assert tenant["id"] == tenant_id and tenant["settings"] == {}
    updated = await gql("mutation($settings: JSON!) { update_tenant_settings(input: {settings: $settings}) { id } }",
                        {"settings": {"hello": True}})
    assert updated["update_tenant_settings"]["id"] == tenant_id
    await gql("mutation($settings: JSON!) { update_tenant_settings(input: {settings: $settings}) { id } }",
              {"settings": {"other": 1}})
    renamed = await gql("""mutation($name: String!, $slug: String!) {
        update_tenant_name(input: {name: $name}) { id }
        update_tenant_slug(input: {slug: $slug}) { id } }""", {"name": "Team", "slug": "team"})
    assert renamed == {"update_tenant_name": {"id": tenant_id}, "update_tenant_slug": {"id": tenant_id}}
    [tenant] = (await gql("query { tenant { name slug settings } }"))["tenant"]
    assert tenant == {"name": "Team", "slug": "team", "settings": {"hello": True, "other": 1}}


async def test_tenant_updates_without_id_follow_the_ui_header_when_there_are_several(gql, tenant_id):
    other = (await gql.mutate("create_tenant", {"name": "Other", "slug": "other"}))["id"]
    settings = "mutation($s: JSON!) { update_tenant_settings(input: {settings: $s}) { id } }"
    message = await gql.error(settings, {"s": {"a": 1}})
    assert "`tenant_id` is required" in message
    done = await gql(settings, {"s": {"a": 1}}, **{"X-Prefect-Tenant-Id": other})
    assert done["update_tenant_settings"]["id"] == other
    assert "not a UUID" in await gql.error(settings, {"s": {}}, **{"X-Prefect-Tenant-Id": "nope"})
    explicit = await gql("mutation($s: JSON!, $t: UUID) { update_tenant_settings(input: {settings: $s, tenant_id: $t}) { id } }",
                         {"s": {"b": 2}, "t": tenant_id}, **{"X-Prefect-Tenant-Id": other})
    assert explicit["update_tenant_settings"]["id"] == tenant_id
    rows = (await gql("query { tenant(order_by: {slug: asc}) { slug settings } }"))["tenant"]
    assert rows == [{"slug": "default", "settings": {"b": 2}}, {"slug": "other", "settings": {"a": 1}}]


@pytest.fixture
async def graph(gql, tenant_id) -> dict[str, str]:
    """A diamond with a tail, a -> b -> d, a -> c -> d -> e, plus a lone task z; slug -> task id."""
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "ui"}))["id"]
    tasks = [f.task(slug) for slug in ("a", "b", "c", "d", "e", "z")]
    edges = [f.edge("a", "b"), f.edge("a", "c"), f.edge("b", "d"), f.edge("c", "d"), f.edge("d", "e")]
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow("g", tasks, edges)}))["id"]
    rows = (await gql("query($f: uuid) { task(where: {flow_id: {_eq: $f}}) { id slug } }", {"f": flow_id}))["task"]
    return {row["slug"]: row["id"] for row in rows} | {"flow": flow_id}


def array(*ids: str) -> str:
    return "{" + ",".join(ids) + "}"


async def test_downstream_tasks_walk_the_edges_with_their_greatest_depth(gql, graph):
    run = (await gql.mutate("create_flow_run", {"flow_id": graph["flow"]}))["id"]
    rows = (await gql(DOWNSTREAM, {"flowRunId": run, "taskIds": array(graph["b"])}))["utility_downstream_tasks"]
    assert [(r["task"]["slug"], r["depth"]) for r in rows] == [("b", 0), ("d", 1), ("e", 2)]
    assert all(len(r["task"]["task_runs"]) == 1 and r["task"]["task_runs"][0]["map_index"] == -1 for r in rows)
    rows = (await gql(DOWNSTREAM, {"taskIds": array(graph["a"], graph["z"])}))["utility_downstream_tasks"]
    depths = {r["task"]["slug"]: r["depth"] for r in rows}
    assert depths == {"a": 0, "z": 0, "b": 1, "c": 1, "d": 2, "e": 3}
    assert [r["depth"] for r in rows] == sorted(r["depth"] for r in rows)  # by depth without order_by


async def test_downstream_tasks_take_depth_limit_where_order_limit_and_aggregate(gql, graph):
    query = """query($ids: _uuid, $limit: Int) {
      near: utility_downstream_tasks(args: {start_task_ids: $ids, depth_limit: $limit}) { task { slug } depth }
      deep: utility_downstream_tasks(args: {start_task_ids: $ids}, where: {depth: {_gte: 2}, task: {slug: {_neq: "e"}}},
                                     order_by: {depth: desc}) { task { slug } }
      paged: utility_downstream_tasks(args: {start_task_ids: $ids}, order_by: [{depth: desc}], limit: 2, offset: 1) { depth }
      utility_downstream_tasks_aggregate(args: {start_task_ids: $ids}) { aggregate { count max { depth } } }
      none: utility_downstream_tasks(args: {start_task_ids: "{}"}) { task_id }
    }"""
    data = await gql(query, {"ids": array(graph["a"]), "limit": 1})
    assert sorted((r["task"]["slug"], r["depth"]) for r in data["near"]) == [("a", 0), ("b", 1), ("c", 1)]
    assert [r["task"]["slug"] for r in data["deep"]] == ["d"]
    assert [r["depth"] for r in data["paged"]] == [2, 1]
    assert data["utility_downstream_tasks_aggregate"]["aggregate"] == {"count": 5, "max": {"depth": 3}}
    assert data["none"] == []


async def test_uuid_array_literals_inline_quoted_and_refused(gql, graph):
    inline = f'query {{ utility_downstream_tasks(args: {{start_task_ids: "{{ \\"{graph["d"].upper()}\\" }}"}}) {{ task_id depth }} }}'
    rows = (await gql(inline))["utility_downstream_tasks"]
    assert [(r["task_id"], r["depth"]) for r in rows] == [(graph["d"], 0), (graph["e"], 1)]
    unknown = str(uuid.uuid4())
    rows = (await gql(DOWNSTREAM, {"taskIds": array(unknown)}))["utility_downstream_tasks"]
    assert rows == [{"depth": 0, "task_id": unknown, "task": None}]  # as Prefect's SQL function did
    for bad in ("not-an-array", "{nope}", "[1]"):
        message = await gql.error(DOWNSTREAM, {"taskIds": bad})
        assert "_uuid" in message or "UUID" in message, message
