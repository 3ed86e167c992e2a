"""What each API key role may do, in one place, and the check that enforces it.

- `read`: queries only, no mutation at all.
- `run`: what agents and flow runners send (queue, states, heartbeats, logs, artifacts, run
  creation and naming, task-run lookup), plus every query. Registering flows, projects,
  schedules and deletions are not in it.
- `admin`: everything, cloud hooks and messages included (marking a message read changes what
  every caller sees, so it is no more a `read` action than deleting one).

Reads are open to every role, except the columns in ADMIN_ONLY_COLUMNS, which the read layer
(headwater.server.graphql.hasura.selection) refuses to select, filter, order or count by for
other roles.

The check walks the root fields of the mutation being executed (fragments and aliases
included) and refuses the whole request, before anything runs, if one is outside the role.
"""

from __future__ import annotations

from typing import Iterator

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_operation_ast,
)
from strawberry.extensions import SchemaExtension

from headwater.server.domain.api_keys import Principal
from headwater.server.domain.errors import Forbidden

# The mutations a `run` key may send: every one the Prefect 1.4.1 agent, flow runner, heartbeat
# process and its built-in tasks (StartFlowRun, RenameFlowRun, CancelFlowRun) call.
RUN_MUTATIONS = frozenset({
    # agent
    "register_agent",
    "get_runs_in_queue",
    # flow and task runs
    "create_flow_run",
    "set_flow_run_name",
    "cancel_flow_run",
    "set_flow_run_states",
    "set_task_run_states",
    "get_or_create_task_run",
    "get_or_create_task_run_info",
    "set_task_run_name",
    "update_flow_run_heartbeat",
    "update_task_run_heartbeat",
    # logs and artifacts
    "write_run_logs",
    "create_task_run_artifact",
    "update_task_run_artifact",
    "delete_task_run_artifact",
})

# Role -> the mutations it may run; None means all of them.
ALLOWED_MUTATIONS: dict[str, frozenset[str] | None] = {
    "read": frozenset(),
    "run": RUN_MUTATIONS,
    "admin": None,
}


# Columns only an admin key may read, filter, order or count by: a hook's config holds its
# receiver's credentials (a Slack webhook URL is one, so is a signing secret or a Twilio token).
ADMIN_ONLY_COLUMNS: dict[str, frozenset[str]] = {
    "cloud_hook": frozenset({"config"}),
}


def may_read_column(principal: Principal | None, table: str, column: str) -> bool:
    return column not in ADMIN_ONLY_COLUMNS.get(table, ()) or principal is None or principal.role == "admin"


def may_run(role: str, mutation: str) -> bool:
    allowed = ALLOWED_MUTATIONS.get(role, frozenset())
    return allowed is None or mutation in allowed or mutation == "__typename"


def root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> Iterator[str]:
    """The names (not aliases) of the operation's root fields, through fragments, each fragment
    visited once: a document whose fragments spread each other twice, level after level, names
    its fields in linear time (a walk per spread would take 2^levels steps)."""
    fragments = {d.name.value: d for d in document.definitions if hasattr(d, "type_condition")}
    visited: set[str] = set()
    stack: list[SelectionSetNode] = [operation.selection_set]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                yield selection.name.value
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in visited:
                visited.add(selection.name.value)
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    stack.append(fragment.selection_set)


def refusal(principal: Principal, document: DocumentNode, operation_name: str | None) -> str | None:
    """Why `principal` may not execute this document, or None when it may."""
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation != OperationType.MUTATION:
        return None
    for name in root_fields(document, operation):
        if not may_run(principal.role, name):
            who = f"The API key {principal.name!r}" if principal.name else "This API key"
            return f"{who} has role {principal.role!r}, which may not run mutation {name}."
    return None


class RoleCheck(SchemaExtension):
    """Refuses a mutation outside the caller's role (`Context.principal`) before it executes."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        principal = getattr(context.context, "principal", None)
        document = context.graphql_document
        # Admin (and an open server) may run anything: no walk on the hot path.
        if principal is not None and principal.role != "admin" and document is not None:
            reason = refusal(principal, document, context.operation_name)
            if reason is not None:
                # A result set here is returned instead of executing the document.
                context.result = ExecutionResult(
                    data=None, errors=[GraphQLError(reason, original_error=Forbidden(reason))]
                )
        yield
