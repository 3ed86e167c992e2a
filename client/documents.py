"""Every GraphQL document the client sends, in one place, so tests validate them all against
schema.graphql and a server change cannot silently break the client."""

from __future__ import annotations


def mutation(name: str, selection: str = "id") -> str:
    return f"mutation($input: {name}_input!) {{ {name}(input: $input) {{ {selection} }} }}"


HELLO = "query { hello }"
TENANT_ID = "query { tenant(order_by: {created: asc}, limit: 1) { id } }"

CREATE_PROJECT = mutation("create_project")
DELETE_PROJECT = mutation("delete_project", "success")
SET_PROJECT_NAME = mutation("set_project_name")
SET_PROJECT_DESCRIPTION = mutation("set_project_description")
PROJECTS = """
query($where: project_bool_exp) {
  project(where: $where, order_by: {name: asc}) {
    id name description created
    flows_aggregate(where: {archived: {_eq: false}}) { aggregate { count } }
  }
}"""

CREATE_FLOW = mutation("create_flow")
CREATE_FLOW_COMPRESSED = mutation("create_flow_from_compressed_string")
ARCHIVE_FLOW = mutation("archive_flow", "success")
UNARCHIVE_FLOW = mutation("unarchive_flow", "success")
DELETE_FLOW = mutation("delete_flow", "success")
UPDATE_FLOW_PROJECT = mutation("update_flow_project")
SET_SCHEDULE_ACTIVE = mutation("set_schedule_active", "success error")
SET_SCHEDULE_INACTIVE = mutation("set_schedule_inactive", "success")
FLOW_TOGGLES = {
    name: mutation(name, "success")
    for name in (
        "enable_flow_heartbeat",
        "disable_flow_heartbeat",
        "enable_flow_lazarus_process",
        "disable_flow_lazarus_process",
        "enable_flow_version_lock",
        "disable_flow_version_lock",
    )
}
SET_FLOW_GROUP_DEFAULT_PARAMETERS = mutation("set_flow_group_default_parameters", "success")
SET_FLOW_GROUP_LABELS = mutation("set_flow_group_labels", "success")

_FLOW_SELECTION = """
    id name version archived created description core_version is_schedule_active
    version_group_id flow_group_id parameters schedule storage run_config
    project { id name }
    flow_group { id labels settings default_parameters schedule }
"""
FLOWS = f"""
query($where: flow_bool_exp, $limit: Int) {{
  flow(where: $where, order_by: [{{name: asc}}, {{version: desc}}], limit: $limit) {{ {_FLOW_SELECTION} }}
}}"""
FLOW = f"""query($id: uuid!) {{ flow_by_pk(id: $id) {{ {_FLOW_SELECTION} }} }}"""

CREATE_FLOW_RUN = mutation("create_flow_run")
CANCEL_FLOW_RUN = mutation("cancel_flow_run", "state")
DELETE_FLOW_RUN = mutation("delete_flow_run", "success")
SET_FLOW_RUN_NAME = mutation("set_flow_run_name", "success")

_FLOW_RUN_SELECTION = """
    id name state state_message version labels parameters context auto_scheduled
    scheduled_start_time start_time end_time heartbeat created updated
    flow { id name version project { name } }
"""
FLOW_RUN = f"""query($id: uuid!) {{ flow_run_by_pk(id: $id) {{ {_FLOW_RUN_SELECTION} }} }}"""
FLOW_RUNS = f"""
query($where: flow_run_bool_exp, $limit: Int) {{
  flow_run(where: $where, order_by: {{scheduled_start_time: desc}}, limit: $limit) {{ {_FLOW_RUN_SELECTION} }}
}}"""
FLOW_RUN_STATES = """
query($id: uuid!) {
  flow_run_state(where: {flow_run_id: {_eq: $id}}, order_by: {version: asc}) {
    state message timestamp version start_time
  }
}"""
TASK_RUNS = """
query($id: uuid!) {
  task_run(where: {flow_run_id: {_eq: $id}}, order_by: [{task: {slug: asc}}, {map_index: asc}]) {
    id name map_index state state_message version start_time end_time task { id name slug }
  }
}"""
LOGS = """
query($id: uuid!, $limit: Int) {
  log(where: {flow_run_id: {_eq: $id}}, order_by: {timestamp: asc}, limit: $limit) {
    timestamp level name message task_run_id
  }
}"""

# Logs the server stored at or after `since` (its insert time), for a watcher to page through
# without missing a line that arrived late with an earlier timestamp.
LOGS_SINCE = """
query($id: uuid!, $since: timestamptz, $limit: Int, $offset: Int) {
  log(where: {flow_run_id: {_eq: $id}, created: {_gte: $since}},
      order_by: [{created: asc}, {id: asc}], limit: $limit, offset: $offset) {
    id created timestamp level name message task_run_id
  }
}"""
FLOW_RUN_STATE_HISTORY = """
query($id: uuid!) {
  flow_run_state(where: {flow_run_id: {_eq: $id}}, order_by: [{version: asc}, {timestamp: asc}]) {
    id state message timestamp version
  }
}"""
FLOW_RUN_REFS = """
query($where: flow_run_bool_exp, $limit: Int) {
  flow_run(where: $where, order_by: {created: desc}, limit: $limit) { id name state flow { name } }
}"""
AGENTS = """
query {
  agent(order_by: {last_queried: desc_nulls_last}) { id name type labels last_queried }
}"""

CREATE_DEPLOYMENT = mutation("create_deployment")
UPDATE_DEPLOYMENT = mutation("update_deployment")
DELETE_DEPLOYMENT = mutation("delete_deployment", "success")
SET_DEPLOYMENT_SCHEDULE_ACTIVE = mutation("set_deployment_schedule_active", "success")
SET_DEPLOYMENT_SCHEDULE_INACTIVE = mutation("set_deployment_schedule_inactive", "success")
APPLY_DEPLOYMENTS = mutation("apply_deployments", "deployments { id name flow_group_id outcome }")
DEPLOYMENTS = """
query($where: deployment_bool_exp) {
  deployment(where: $where, order_by: [{flow_group_id: asc}, {name: asc}]) {
    id name description flow_group_id flow_id parameters tags labels schedule is_schedule_active created updated
    flow_group {
      id name
      flows(where: {archived: {_eq: false}}, order_by: {version: desc}, limit: 1) { id name version project { name } }
    }
  }
}"""

ALL = {
    name: value
    for name, value in dict(globals()).items()
    if name.isupper() and not name.startswith("_") and isinstance(value, str)
}
ALL.update({f"FLOW_TOGGLES.{k}": v for k, v in FLOW_TOGGLES.items()})
