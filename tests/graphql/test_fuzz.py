"""Schemathesis fuzzes every query and mutation of schema.graphql against a live headwater.

No generated document, valid or not, may get a 5xx, the generic internal error or a slow answer,
and the process must stay healthy throughout. The run is bounded (examples per operation and a
total time budget) and derandomized, so with the same code a failure reproduces with the same
documents. Each document is sent as generated and again with its arguments as variables.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import graphql
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.graphql import nodes
from schemathesis.specs.graphql import scalars as schemathesis_scalars

from headwater.client import Client
from tests import factories as f
from tests.server_process import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.fuzz]

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
# Bounds of the run: examples per operation and generation mode, and the wall-clock budget of the
# fuzzing. Each operation and mode gets MIN_EXAMPLES cases whatever the clock says, then more up to
# EXAMPLES within its fair share of the time left (the runs cut short are listed in the summary).
EXAMPLES = int(os.environ.get("HEADWATER_FUZZ_EXAMPLES", "15"))
MIN_EXAMPLES = 3
BUDGET_SECONDS = float(os.environ.get("HEADWATER_FUZZ_BUDGET", "180"))
# One answer slower than this is a failure; the client gives up a little later so a stall is seen.
SLOW_SECONDS = 5.0
REQUEST_TIMEOUT = 30.0
INTERNAL_CODE = "INTERNAL_SERVER_ERROR"


# --- scalar strategies: the custom scalars of the schema, as GraphQL literals ------------------
def _object(fields: dict[str, graphql.ValueNode]) -> graphql.ObjectValueNode:
    return nodes.Object(
        [graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=value) for key, value in fields.items()]
    )


_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,12}\Z")
_json_leaves = st.one_of(
    st.none().map(lambda _: nodes.Null),
    st.booleans().map(nodes.Boolean),
    st.integers().map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    st.text(max_size=20).map(nodes.String),
)
json_literals = st.recursive(
    _json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(nodes.List),
        st.dictionaries(_names, children, max_size=4).map(_object),
    ),
    max_leaves=12,
)
_timestamps = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.none() | st.timezones()
).map(lambda value: value.isoformat())
timestamp_literals = st.one_of(_timestamps, st.text(max_size=30)).map(nodes.String)
interval_literals = st.one_of(
    st.integers().map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    st.text(max_size=20).map(nodes.String),
)


def uuid_literals(known: list[str]) -> st.SearchStrategy[graphql.ValueNode]:
    """Mostly ids of the seeded rows, so mutations reach past "not found"; some random or malformed."""
    return st.one_of(
        st.sampled_from(known),
        st.sampled_from(known),
        st.uuids().map(str),
        st.text(max_size=40),
    ).map(nodes.String)


@pytest.fixture
def custom_scalars() -> Iterator[dict[str, Any]]:
    """Registers strategies for the schema's own scalars, and removes them afterwards."""
    registry = schemathesis_scalars.CUSTOM_SCALARS
    saved = dict(registry)
    yield registry
    registry.clear()
    registry.update(saved)


# --- the server under test --------------------------------------------------------------------
@pytest.fixture
def fuzz_server(engine, database_url: str, tmp_path) -> Iterator[ServerProcess]:
    """A headwater process of its own, so whatever the fuzzing does to it cannot reach other tests."""
    env = {
        "HEADWATER_DATABASE_URL": database_url, "HEADWATER_LOG_LEVEL": "WARNING",
        # A generated test_cloud_hook may reach for a real URL: answer well inside the slow limit.
        "HEADWATER_HOOK_CONNECT_TIMEOUT_SECONDS": "1", "HEADWATER_HOOK_READ_TIMEOUT_SECONDS": "1",
    }
    with ServerProcess("--no-services", "--no-migrate", env=env, log_path=tmp_path / "headwater.log") as server:
        yield server


SEEDED_IDS = (
    "{ tenant { id } project { id } flow { id flow_group_id version_group_id }"
    " flow_run { id } task { id } task_run { id } edge { id } }"
)


def seed(server: ServerProcess) -> list[str]:
    """A project, a flow with tasks, and a run with task runs; returns their ids, for the uuid pool."""
    with Client(server.url) as hw:
        hw.create_project("fuzz", "seeded for fuzzing")
        flow_id = hw.register_flow(f.flow("fuzzed", parameters=[f.parameter("n", default=1)]), "fuzz")
        hw.create_flow_run(flow_id, parameters={"n": 2})
    data = server.query(SEEDED_IDS)["data"]
    return sorted({value for rows in data.values() for row in rows for value in row.values() if value})


# --- the run ------------------------------------------------------------------------------------
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", re.MULTILINE)
NOT_A_CAUSE = ("Traceback", "The above exception", "During handling", "HINT", "DETAIL", " ", "\t")


def root_causes(log: str) -> list[str]:
    """The innermost exception of each logged traceback, literals blurred, so causes group."""
    causes = []
    for record in LOG_RECORD.split(log):
        lines = record.splitlines()
        if not any(line.startswith("Traceback") for line in lines):
            continue
        exceptions = [line for line in lines[1:] if line and not line.startswith(NOT_A_CAUSE)]
        if exceptions:
            cause = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", exceptions[0])
            causes.append(re.sub(r"\d+", "N", cause)[:240])
    return causes


@dataclass
class Failure:
    kind: str
    cause: str
    document: str
    status: int | None
    body: str
    seconds: float
    operations: set[str] = field(default_factory=set)

    def describe(self) -> str:
        return (
            f"[{self.kind}] {self.cause}\n  operations: {', '.join(sorted(self.operations))}\n"
            f"  first: HTTP {self.status} after {self.seconds:.2f} s\n  document: {self.document}\n"
            f"  response: {self.body[:600]}"
        )


@dataclass
class Run:
    url: str
    log_path: Path
    deadline: float
    session: requests.Session = field(default_factory=requests.Session)
    requests_sent: int = 0
    requests_accepted: int = 0
    failures: dict[tuple[str, str], Failure] = field(default_factory=dict)
    runs_left: int = 0
    cut_short: list[str] = field(default_factory=list)
    log_offset: int = 0
    request_seconds: float = 0.0
    operation_seconds: dict[str, float] = field(default_factory=dict)
    # Set when a request got no answer: the rest of the run is skipped rather than waiting out
    # REQUEST_TIMEOUT on every remaining case of a stalled or dead server.
    stalled: bool = False

    def new_log(self) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(self.log_offset)
            text = log.read()
        self.log_offset += len(text)
        return text.decode(errors="replace")

    def record(self, operation: str, failure: Failure) -> None:
        """Keeps the first (simplest, as Hypothesis generates them) document of each distinct failure."""
        kept = self.failures.setdefault((failure.kind, failure.cause), failure)
        kept.operations.add(operation)

    def check(self, case: Any, schema: graphql.GraphQLSchema) -> None:
        """The document as generated (arguments inline), then with its arguments as variables."""
        operation = case.operation.label
        self.examine(operation, case.body, lambda: case.call(base_url=self.url, session=self.session,
                                                             timeout=REQUEST_TIMEOUT))
        body = as_variables(case.body, schema)
        if body is not None:
            shown = f"{body['query']}\n  variables: {json.dumps(body['variables'])}"
            self.examine(operation, shown, lambda: self.session.post(self.url, json=body, timeout=REQUEST_TIMEOUT))

    def examine(self, operation: str, document: str, send: Any) -> None:
        started = time.monotonic()
        self.requests_sent += 1
        try:
            response = send()
        except requests.RequestException as error:
            failure = Failure("no answer", type(error).__name__, document, None, str(error), time.monotonic() - started)
            self.record(operation, failure)
            self.stalled = True
            return
        seconds = time.monotonic() - started
        self.request_seconds += seconds
        found: list[tuple[str, str]] = []
        if response.status_code >= 500:
            found.append(("5xx", str(response.status_code)))
        if seconds > SLOW_SECONDS:
            found.append(("slow", f"over {SLOW_SECONDS:g} s"))
        try:
            payload = response.json()
        except ValueError:
            payload = None
            found.append(("not JSON", str(response.headers.get("content-type"))))
        errors = (payload.get("errors") or []) if isinstance(payload, dict) else []
        if isinstance(payload, dict) and payload.get("data") and not errors:
            self.requests_accepted += 1
        if any(
            (error.get("extensions") or {}).get("code") == INTERNAL_CODE
            or str(error.get("message", "")).startswith("An internal error")
            for error in errors
            if isinstance(error, dict)
        ):
            found.append(("internal error", ""))
        if not found:
            return
        causes = root_causes(self.new_log()) or ["(nothing logged)"]
        for kind, detail in found:
            for cause in causes if kind in ("5xx", "internal error") else [detail]:
                self.record(operation, Failure(kind, cause, document, response.status_code, response.text, seconds))

    def fuzz(self, operation: Any, mode: GenerationMode) -> None:
        """Up to EXAMPLES cases, within a few times this run's fair share of the time left (most
        runs take far less than their share, so a slow one may take more)."""
        started = time.monotonic()
        deadline = min(self.deadline, started + 4 * max(self.deadline - started, 0) / max(self.runs_left, 1))
        self.runs_left -= 1
        name = f"{operation.label} ({mode.value})"

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        def send(case: Any) -> None:
            nonlocal sent
            if self.stalled or (sent >= MIN_EXAMPLES and time.monotonic() > deadline):
                raise OutOfTime
            sent += 1
            self.check(case, operation.schema.client_schema)

        sent = 0
        try:
            send()
        except OutOfTime:
            self.cut_short.append(name)
        self.operation_seconds[name] = time.monotonic() - started


def as_variables(document: str, schema: graphql.GraphQLSchema) -> dict[str, Any] | None:
    """The same request with the root field's arguments sent as variables, the way the Prefect client
    sends them (so values go through the scalars' parse_value, not parse_literal); None when the
    document is not valid enough to rewrite."""
    try:
        definition = graphql.parse(document).definitions[0]
        root = schema.mutation_type if definition.operation == graphql.OperationType.MUTATION else schema.query_type
        field_node = definition.selection_set.selections[0]
        arguments = root.fields[field_node.name.value].args
        definitions, variables = [], {}
        for argument in field_node.arguments:
            name = argument.name.value
            variables[name] = graphql.value_from_ast_untyped(argument.value)
            definitions.append(f"${name}: {arguments[name].type}")
    except (graphql.GraphQLError, KeyError, AttributeError, IndexError, TypeError):
        return None
    if not definitions:
        return None
    uses = ", ".join(f"{argument.name.value}: ${argument.name.value}" for argument in field_node.arguments)
    selection = graphql.print_ast(field_node.selection_set) if field_node.selection_set else ""
    query = f"{definition.operation.value}({', '.join(definitions)}) {{ {field_node.name.value}({uses}) {selection} }}"
    return {"query": query, "variables": variables}


class OutOfTime(Exception):
    """The run's time budget is spent."""


def operations(schema: Any) -> list[Any]:
    """Every operation: the mutations first (cheap to generate, so the expensive Hasura queries after
    them get the time they leave), and the deleting ones last, so the seeded rows live long."""
    found = [result.ok() for result in schema.get_all_operations()]

    def order(operation: Any) -> int:
        if operation.definition.field_name.startswith("delete"):
            return 2
        return 0 if operation.definition.is_mutation else 1

    return sorted(found, key=order)


def test_fuzz_every_operation(fuzz_server: ServerProcess, custom_scalars: dict[str, Any]) -> None:
    known = seed(fuzz_server)
    uuids = uuid_literals(known)
    custom_scalars.update(
        {
            "UUID": uuids,
            "uuid": uuids,
            "JSON": json_literals,
            "jsonb": json_literals,
            "DateTime": timestamp_literals,
            "timestamptz": timestamp_literals,
            "interval": interval_literals,
        }
    )
    schema = schemathesis.graphql.from_path(SCHEMA_FILE)
    run = Run(url=fuzz_server.url + "/", log_path=fuzz_server.log_path, deadline=time.monotonic() + BUDGET_SECONDS)
    started = time.monotonic()
    all_operations = operations(schema)
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    run.runs_left = len(all_operations) * len(modes)
    for operation in all_operations:
        for mode in modes:
            run.fuzz(operation, mode)
    for cause in root_causes(run.new_log()):
        run.record("(no request)", Failure("logged traceback", cause, "", None, "", 0.0))

    assert fuzz_server.process is not None and fuzz_server.process.poll() is None, "headwater died"
    try:
        health = requests.get(fuzz_server.url + "/health", timeout=10)
        if health.status_code != 200:
            run.record("/health", Failure("unhealthy after the run", str(health.status_code), "", None, health.text, 0))
    except requests.RequestException as error:
        run.record("/health", Failure("unhealthy after the run", type(error).__name__, "", None, str(error), 0))
    summary = (
        f"{len(all_operations)} operations, {run.requests_sent} requests ({run.requests_accepted} answered without"
        f" errors) in {time.monotonic() - started:.0f} s;"
        f" {run.request_seconds:.0f} s waiting for answers;"
        f" {len(run.cut_short)} operation runs cut short for time: {run.cut_short}"
    )
    slowest = sorted(run.operation_seconds.items(), key=lambda item: -item[1])[:15]
    summary += "\nslowest: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in slowest)
    print(summary)
    report = "\n\n".join(failure.describe() for failure in run.failures.values())
    if os.environ.get("HEADWATER_FUZZ_REPORT"):
        Path(os.environ["HEADWATER_FUZZ_REPORT"]).write_text(f"{summary}\n\n{report}\n")
    if run.failures:
        pytest.fail(f"{len(run.failures)} distinct failures ({summary}):\n\n{report}", pytrace=False)
