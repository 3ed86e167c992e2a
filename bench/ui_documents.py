"""Run the real Prefect UI's read documents against a seeded headwater (an operator's check).

    python -m bench.ui_documents PATH/prefect-ui-documents.json [-v]

The file lists the UI's operations ({name, file, kind, roots, users, text}, as extracted from
PrefectHQ/legacy-ui); it is read here and never copied into the repository. The tool seeds a
temporary embedded Postgres (HEADWATER_BENCH_DATABASE_URL to use another) with tests/ui_seed.py,
the seed of tests/graphql/test_ui_read_documents.py, then sends every query and subscription (as
a query) with variables filled from the seed: a variable, or a placeholder id the UI writes into
a document, gets the seeded id of the object its position names (`flow_run_by_pk(id:)`,
`agent_id: {_eq:}`, `flow: {project_id: {_eq:}}`, `task_run_id:`), timestamps a day back (a day
ahead for the end of a range), limits 10, offsets 0, name patterns `%`. It prints OK or the
GraphQL error per operation, then `N of M read documents answered without error`; exit 1 if
any failed. `-v` prints each operation's variables.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx
from graphql import (
    ArgumentNode,
    DocumentNode,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectFieldNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    TypeNode,
    VariableNode,
    Visitor,
    parse,
    print_ast,
    visit,
)
from headwater.server.app import create_app
from headwater.server.db import migrate
from headwater.server.db.engine import create_engine
from headwater.server.settings import Settings

from bench.common import database_url
from tests.ui_seed import Seed, seed

PLACEHOLDER = re.compile(r"^0{8}-0{4}-0{4}-0{4}-0{11}\d$")
STRUCTURAL = {"where", "args", "_and", "_or", "_not", "order_by", "distinct_on"}


def read_operations(documents: list[dict[str, Any]]) -> list[tuple[dict[str, Any], DocumentNode]]:
    """The queries and subscriptions of the file, each subscription turned into a query."""
    reads = []
    for entry in documents:
        text = entry["text"]
        operations = [d for d in parse(text).definitions if isinstance(d, OperationDefinitionNode)]
        if not operations or any(op.operation == OperationType.MUTATION for op in operations):
            continue
        for op in reversed(operations):  # from the end, so earlier offsets stay right
            if op.operation == OperationType.SUBSCRIPTION:
                start = op.loc.start
                text = text[:start] + "query" + text[start + len("subscription"):]
        reads.append((entry, parse(text)))
    return reads


def table_of(name: str) -> str:
    return name.removesuffix("_by_pk").removesuffix("_aggregate")


def object_at(path: list[str]) -> str | None:
    """Which seeded object a value at `path` (root field, argument and input-field names, the
    last one nearest the value) identifies: `x_id` names x; `id` names the nearest table."""
    names = [p for p in path if not p.startswith("_") and p not in STRUCTURAL]
    if not names:
        return None
    column = names[-1]
    if column == "start_task_ids":
        return "task_ids"
    if column == "version_group_id":
        return "version_group"
    if column.endswith("_id") and column not in ("agent_config_id",):
        return column.removesuffix("_id")
    if column == "id":
        return table_of(names[-2]) if len(names) >= 2 else None
    return None


def seeded_id(seed: Seed, kind: str | None) -> Any:
    ids = {
        "flow": seed.flow_id, "flow_group": seed.flow_group_id, "version_group": seed.version_group_id,
        "project": seed.project_id, "tenant": seed.tenant_id, "agent": seed.agent_id,
        "flow_run": seed.failed_run_id, "task": seed.mapped_task_id,
        "task_run": seed.task_runs["failed"]["square-1"],  # the mapped parent: it has children
        "cloud_hook": seed.cloud_hook_id, "message": seed.message_id, "task_run_artifact": seed.artifact_id,
        "task_ids": "{" + seed.mapped_task_id + "}",
    }
    return ids.get(kind or "")


class Positions(Visitor):
    """Where each variable and each placeholder id sits in the document."""

    def __init__(self) -> None:
        super().__init__()
        self.variables: dict[str, list[str]] = {}
        self.placeholders: list[tuple[StringValueNode, list[str]]] = []

    @staticmethod
    def path(ancestors) -> list[str]:
        names = []
        for node in ancestors:
            if hasattr(node, "kind") and node.kind in ("field", "argument", "object_field"):
                names.append(node.name.value)
        return names

    def enter_variable(self, node: VariableNode, key, parent, path, ancestors) -> None:
        if isinstance(parent, (ArgumentNode, ObjectFieldNode, list)):
            self.variables.setdefault(node.name.value, self.path([*ancestors, parent]))

    def enter_string_value(self, node: StringValueNode, key, parent, path, ancestors) -> None:
        if PLACEHOLDER.match(node.value):
            self.placeholders.append((node, self.path([*ancestors, parent])))


def named(type_node: TypeNode) -> tuple[str, bool, bool]:
    """(type name, non-null, list)."""
    non_null = isinstance(type_node, NonNullTypeNode)
    inner = type_node.type if non_null else type_node
    is_list = isinstance(inner, ListTypeNode)
    while not isinstance(inner, NamedTypeNode):
        inner = inner.type
    return inner.name.value, non_null, is_list


def value_for(name: str, type_name: str, is_list: bool, position: list[str], seed: Seed) -> Any:
    lowered = name.lower().replace("_", "")
    now = dt.datetime.now(dt.UTC)
    if type_name in ("uuid", "UUID", "_uuid"):
        kind = object_at(position)
        if kind is None:
            for candidate in ("flowgroup", "flowrun", "taskrun", "versiongroup", "agent", "project", "tenant",
                              "task", "flow", "log"):
                if candidate in lowered:
                    kind = {"flowgroup": "flow_group", "flowrun": "flow_run", "taskrun": "task_run",
                            "versiongroup": "version_group"}.get(candidate, candidate)
                    break
        if kind == "log":
            return None
        if is_list:
            if kind == "task_run":  # the finished run's: its artifact is there
                return list(seed.task_runs["success"].values())
            return [seeded_id(seed, kind)]
        return seeded_id(seed, kind)
    if type_name == "timestamptz":
        ending = any(word in lowered for word in ("end", "to", "until"))
        return (now + dt.timedelta(days=1) if ending else now - dt.timedelta(days=1)).isoformat()
    if type_name == "timestamptz_comparison_exp":
        return {"_gte": (now - dt.timedelta(days=1)).isoformat()}
    if type_name == "Int":
        if "limit" in lowered:
            return 10
        if "offset" in lowered:
            return 0
        if "parentmapindex" in lowered:
            return -1
        if "mapindex" in lowered:
            return 0
        return None
    if type_name == "String":
        if is_list:
            if "level" in lowered:
                return ["INFO", "ERROR"]
            if "filterout" in lowered:
                return ["Scheduled"]
            return ["Success", "Failed", "TriggerFailed", "Mapped"]
        kind = object_at(position)
        if kind == "version_group" or lowered in ("vgi", "versiongroupid"):
            return seed.version_group_id
        if "slug" in lowered:
            return seed.tenant_slug
        if lowered == "projectname":
            return seed.project_name
        if "name" in lowered or "search" in lowered:
            return "%"
        return None
    if type_name.endswith("_bool_exp"):
        return [{}] if is_list else {}
    return None


def fill(document: DocumentNode, seed: Seed) -> tuple[str, dict[str, Any], list[str]]:
    """The text to send (the placeholder ids the UI writes into documents replaced by seeded
    ids), its variables, and the names of required variables no value was found for."""
    positions = Positions()
    visit(document, positions)
    text = print_ast(document)
    for node, path in positions.placeholders:
        text = text.replace(f'"{node.value}"', f'"{seeded_id(seed, object_at(path)) or node.value}"')
    variables, missing = {}, []
    for op in document.definitions:
        if not isinstance(op, OperationDefinitionNode):
            continue
        for definition in op.variable_definitions or ():
            name = definition.variable.name.value
            type_name, required, is_list = named(definition.type)
            value = value_for(name, type_name, is_list, positions.variables.get(name, []), seed)
            if value is not None:
                variables[name] = value
            elif required:
                missing.append(name)
    return text, variables, missing


async def run(path: Path, verbose: bool) -> int:
    reads = read_operations(json.loads(path.read_text()))
    with database_url() as url:
        engine = create_engine(url, pool_size=2)
        await migrate.upgrade(engine)
        settings = Settings(database_url=url, services_enabled=False, migrate_on_start=False, allowed_hosts="bench.test")
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:

                async def post(query: str, variables: Any = None, **headers: str) -> dict:
                    body = await send(client, query, variables, headers)
                    if body.get("errors"):
                        raise RuntimeError(f"seeding failed: {body['errors']}")
                    return body["data"]

                seeded = await seed(post, engine)
                answered, failures = 0, []
                for entry, document in reads:
                    text, variables, missing = fill(document, seeded)
                    body = await send(client, text, variables, {})
                    label = f"{entry['name']:32s} {entry['file']}"
                    errors = body.get("errors") or []
                    if errors:
                        message = "; ".join(e.get("message", str(e)) for e in errors)
                        if missing:
                            message += f" (no value found for ${', $'.join(missing)})"
                        failures.append((label, message))
                        print(f"ERROR {label}\n      {message}")
                    else:
                        answered += 1
                        print(f"OK    {label} {rows(body.get('data') or {})}")
                    if verbose:
                        print(f"      variables: {json.dumps(variables)}")
        await engine.dispose()
    print(f"\n{answered} of {len(reads)} read documents answered without error")
    return 0 if not failures else 1


def rows(data: dict[str, Any]) -> str:
    """What each root field answered: a row count, `1` for an object, `null`: a seed the
    heuristics missed shows as empty answers."""
    def size(value: Any) -> str:
        return str(len(value)) if isinstance(value, list) else "null" if value is None else "1"
    return " ".join(f"{key}={size(value)}" for key, value in data.items())


async def send(client: httpx.AsyncClient, query: str, variables: Any, headers: dict[str, str]) -> dict:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    try:
        return response.json()
    except ValueError:
        return {"errors": [{"message": f"HTTP {response.status_code}: {response.text[:200]}"}]}


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    if len(args) != 1:
        sys.exit(__doc__)
    sys.exit(asyncio.run(run(Path(args[0]), "-v" in sys.argv)))


if __name__ == "__main__":
    main()
