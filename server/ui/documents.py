"""The GraphQL documents the UI sends, in one place: pages run them in-process and the browser's
scripts post the very same text to /graphql (pages embed the ones their scripts need).

Each is written to stay on an index at any size (see the notes): runs are always found through
`flow_id` / `state` / `scheduled_start_time` / `start_time` (ix_flow_run_flow_id_scheduled_start_time,
ix_flow_run_state, ix_flow_run_start_time), logs through (flow_run_id, timestamp), and every list
has a `limit`.
"""

TENANT = """
query Tenant($slug: String!) {
  tenant(where: {slug: {_eq: $slug}}, limit: 1) { id name slug }
}"""

RUN_FIELDS = "id name state state_message scheduled_start_time start_time end_time state_timestamp flow { id name flow_group_id }"

# Dashboard. `$scope` narrows every run list to the tenant (and a project). Finished states count
# the runs that *started* in the window (ix_flow_run_start_time: a range scan of the window, not
# of every Success ever; a finished state's own start time is null); current ones (Scheduled,
# Submitted, Running) whatever their age (ix_flow_run_state). `history` feeds the run-history chart:
# the window's runs by scheduled start (ix_flow_run_scheduled_start_time), capped (ui/charts.py).
DASHBOARD = """
query Dashboard($tenant: uuid!, $scope: flow_run_bool_exp!, $since: timestamptz!, $now: timestamptz!, $chart_since: timestamptz!, $history_limit: Int!, $count_cap: Int!) {
  project(where: {tenant_id: {_eq: $tenant}}, order_by: {name: asc}, limit: 500) { id name }
  scheduled: flow_run_aggregate(where: {_and: [$scope, {state: {_eq: "Scheduled"}}]}, limit: $count_cap) { aggregate { count } }
  submitted: flow_run_aggregate(where: {_and: [$scope, {state: {_eq: "Submitted"}}]}, limit: $count_cap) { aggregate { count } }
  running: flow_run_aggregate(where: {_and: [$scope, {state: {_eq: "Running"}}]}, limit: $count_cap) { aggregate { count } }
  success: flow_run_aggregate(where: {_and: [$scope, {state: {_eq: "Success"}, start_time: {_gte: $since}}]}, limit: $count_cap) { aggregate { count } }
  failed: flow_run_aggregate(where: {_and: [$scope, {state: {_eq: "Failed"}, start_time: {_gte: $since}}]}, limit: $count_cap) { aggregate { count } }
  cancelled: flow_run_aggregate(where: {_and: [$scope, {state: {_eq: "Cancelled"}, start_time: {_gte: $since}}]}, limit: $count_cap) { aggregate { count } }
  in_progress: flow_run(where: {_and: [$scope, {state: {_in: ["Running", "Submitted", "Cancelling"]}}]}, order_by: {state_timestamp: desc}, limit: 10) { %(run)s }
  failed_runs: flow_run(where: {_and: [$scope, {state: {_eq: "Failed"}, start_time: {_gte: $since}}]}, order_by: {start_time: desc}, limit: 10) { %(run)s }
  upcoming: flow_run(where: {_and: [$scope, {state: {_eq: "Scheduled"}, scheduled_start_time: {_gte: $now}}]}, order_by: {scheduled_start_time: asc}, limit: 10) { %(run)s }
  late: flow_run(where: {_and: [$scope, {state: {_eq: "Scheduled"}, scheduled_start_time: {_lt: $now}}]}, order_by: {scheduled_start_time: asc}, limit: 10) { %(run)s }
  agent(where: {tenant_id: {_eq: $tenant}}, order_by: {last_queried: desc_nulls_last}, limit: 10) { id name type labels last_queried }
  history: flow_run(where: {_and: [$scope, {scheduled_start_time: {_gte: $chart_since, _lte: $now}}]},
                    order_by: {scheduled_start_time: desc}, limit: $history_limit) { scheduled_start_time state }
}""" % {"run": RUN_FIELDS}

CREATE_PROJECT = """
mutation CreateProject($input: create_project_input!) { create_project(input: $input) { id } }"""

# Flows: the active (unarchived) version of each flow, by name (ix_flow_tenant_id, ix_flow_name).
FLOWS = """
query Flows($where: flow_bool_exp!, $limit: Int!, $offset: Int!, $tenant: uuid!) {
  flow(where: $where, order_by: [{name: asc}, {version: desc}], limit: $limit, offset: $offset) {
    id name version flow_group_id created is_schedule_active schedule project { id name }
  }
  flow_aggregate(where: $where) { aggregate { count } }
  project(where: {tenant_id: {_eq: $tenant}}, order_by: {name: asc}, limit: 500) { id name }
}"""

# Flow page: the group (by primary key) with every version; runs are then read by flow id.
FLOW_GROUP = """
query FlowGroup($id: uuid!) {
  flow_group_by_pk(id: $id) {
    id name tenant_id labels schedule settings default_parameters description
    flows(order_by: {version: desc}, limit: 200) {
      id name version archived created core_version is_schedule_active parameters schedule run_config
      project { id name }
    }
  }
}"""

FLOW_RUNS = """
query FlowRuns($where: flow_run_bool_exp!, $limit: Int!, $offset: Int!, $next: flow_run_bool_exp!, $count_cap: Int!) {
  flow_run(where: $where, order_by: {scheduled_start_time: desc}, limit: $limit, offset: $offset) {
    id name state scheduled_start_time start_time end_time state_start_time labels flow { version }
  }
  flow_run_aggregate(where: $where, limit: $count_cap) { aggregate { count } }
  next_runs: flow_run(where: $next, order_by: {scheduled_start_time: asc}, limit: 5) { id name scheduled_start_time state }
}"""

FLOW_TASKS = """
query FlowTasks($flow: uuid!) {
  task(where: {flow_id: {_eq: $flow}}, order_by: {name: asc}, limit: 1000) {
    id name slug type mapped max_retries tags is_reference_task
  }
}"""

QUICK_RUN = """
mutation QuickRun($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"""

# Flow settings toggles: each one a mutation taking the active version's id.
SET_SCHEDULE_ACTIVE = "mutation($input: set_schedule_active_input!) { set_schedule_active(input: $input) { success error } }"
SET_SCHEDULE_INACTIVE = "mutation($input: set_schedule_inactive_input!) { set_schedule_inactive(input: $input) { success error } }"
ENABLE_HEARTBEAT = "mutation($input: enable_flow_heartbeat_input!) { enable_flow_heartbeat(input: $input) { success error } }"
DISABLE_HEARTBEAT = "mutation($input: disable_flow_heartbeat_input!) { disable_flow_heartbeat(input: $input) { success error } }"
ENABLE_LAZARUS = "mutation($input: enable_flow_lazarus_process_input!) { enable_flow_lazarus_process(input: $input) { success error } }"
DISABLE_LAZARUS = "mutation($input: disable_flow_lazarus_process_input!) { disable_flow_lazarus_process(input: $input) { success error } }"
ENABLE_VERSION_LOCK = "mutation($input: enable_flow_version_lock_input!) { enable_flow_version_lock(input: $input) { success error } }"
DISABLE_VERSION_LOCK = "mutation($input: disable_flow_version_lock_input!) { disable_flow_version_lock(input: $input) { success error } }"

# Flow-run page and its live poll: the run (by primary key), its history and task runs, and the
# logs after a timestamp (ix_log_flow_run_id_timestamp). The first load reads the newest logs.
FLOW_RUN = """
query FlowRun($id: uuid!, $since: timestamptz!, $log_order: order_by!, $log_limit: Int!) {
  flow_run_by_pk(id: $id) {
    id name tenant_id state state_message version parameters labels context
    scheduled_start_time start_time end_time state_start_time created agent_id
    flow { id name version flow_group_id parameters }
    states(order_by: [{timestamp: asc}, {version: asc}], limit: 200) { state message timestamp }
    task_runs(order_by: [{task: {name: asc}}, {map_index: asc}], limit: 5000) {
      id name map_index state state_message start_time end_time version task { id name slug mapped }
    }
  }
  log(where: {flow_run_id: {_eq: $id}, timestamp: {_gte: $since}}, order_by: [{timestamp: $log_order}, {id: $log_order}], limit: $log_limit) {
    id timestamp level name message task_run_id
  }
}"""

CANCEL_FLOW_RUN = "mutation($input: cancel_flow_run_input!) { cancel_flow_run(input: $input) { state } }"
# Restart, as Prefect's UI does it: the unfinished or failed task runs back to Pending, then the
# flow run to Scheduled so that an agent picks it up again.
SET_TASK_RUN_STATES = "mutation($input: set_task_run_states_input!) { set_task_run_states(input: $input) { states { id status } } }"
SET_FLOW_RUN_STATES = "mutation($input: set_flow_run_states_input!) { set_flow_run_states(input: $input) { states { id status } } }"

TASK_RUN = """
query TaskRun($id: uuid!) {
  task_run_by_pk(id: $id) {
    id name tenant_id map_index state state_message start_time end_time version created
    task { id name slug type mapped max_retries }
    flow_run { id name state flow { id name flow_group_id } }
    states(order_by: [{timestamp: asc}, {version: asc}], limit: 200) { state message timestamp }
  }
  log(where: {task_run_id: {_eq: $id}}, order_by: {timestamp: asc}, limit: 1000) { id timestamp level name message }
}"""

# Deployments: a tenant's (or one flow group's) deployments by name (ix_deployment_tenant_id /
# ix_deployment_flow_group_id), each with its next scheduled runs (ix_flow_run_deployment_id).
DEPLOYMENTS = """
query Deployments($where: deployment_bool_exp!, $limit: Int!, $offset: Int!, $now: timestamptz!) {
  deployment(where: $where, order_by: [{name: asc}, {id: asc}], limit: $limit, offset: $offset) {
    id name description parameters tags labels schedule is_schedule_active flow_group_id
    flow_group { id name }
    next_runs: flow_runs(where: {state: {_eq: "Scheduled"}, scheduled_start_time: {_gte: $now}},
                         order_by: {scheduled_start_time: asc}, limit: 3) { id name scheduled_start_time }
  }
  deployment_aggregate(where: $where) { aggregate { count } }
}"""

SET_DEPLOYMENT_SCHEDULE_ACTIVE = ("mutation($input: set_deployment_schedule_active_input!) "
                                  "{ set_deployment_schedule_active(input: $input) { success error } }")
SET_DEPLOYMENT_SCHEDULE_INACTIVE = ("mutation($input: set_deployment_schedule_inactive_input!) "
                                    "{ set_deployment_schedule_inactive(input: $input) { success error } }")

AGENTS = """
query Agents($tenant: uuid!) {
  agent(where: {tenant_id: {_eq: $tenant}}, order_by: {last_queried: desc_nulls_last}, limit: 500) {
    id name type labels core_version last_queried created
  }
}"""

# What the browser's scripts may post, by name (embedded in the pages that use them).
BROWSER = {
    "QUICK_RUN": QUICK_RUN,
    "FLOW_RUN": FLOW_RUN,
    "CANCEL_FLOW_RUN": CANCEL_FLOW_RUN,
    "TASK_RUN": TASK_RUN,
    "SET_TASK_RUN_STATES": SET_TASK_RUN_STATES,
    "SET_FLOW_RUN_STATES": SET_FLOW_RUN_STATES,
    "SET_SCHEDULE_ACTIVE": SET_SCHEDULE_ACTIVE,
    "SET_SCHEDULE_INACTIVE": SET_SCHEDULE_INACTIVE,
    "ENABLE_HEARTBEAT": ENABLE_HEARTBEAT,
    "DISABLE_HEARTBEAT": DISABLE_HEARTBEAT,
    "ENABLE_LAZARUS": ENABLE_LAZARUS,
    "DISABLE_LAZARUS": DISABLE_LAZARUS,
    "ENABLE_VERSION_LOCK": ENABLE_VERSION_LOCK,
    "DISABLE_VERSION_LOCK": DISABLE_VERSION_LOCK,
    "CREATE_PROJECT": CREATE_PROJECT,
    "SET_DEPLOYMENT_SCHEDULE_ACTIVE": SET_DEPLOYMENT_SCHEDULE_ACTIVE,
    "SET_DEPLOYMENT_SCHEDULE_INACTIVE": SET_DEPLOYMENT_SCHEDULE_INACTIVE,
}
