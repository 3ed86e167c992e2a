"""`python -m bench.ui_documents`: which operations of a UI documents file it runs, the values it
fills in from the seed, and a run end to end over a small file of our own documents."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from graphql import parse, print_ast

from bench.ui_documents import fill, read_operations
from tests.graphql.ui_read_documents import READS
from tests.ui_seed import Seed

ROOT = Path(__file__).resolve().parent.parent


def entry(text: str, name: str = "Doc") -> dict:
    return {"name": name, "file": f"src/{name}.gql", "kind": "gql-file", "roots": [], "users": [], "text": text}


def fake_seed() -> Seed:
    ids = {name: f"00000000-0000-4000-8000-{index:012d}" for index, name in enumerate(
        ["tenant", "project", "flow", "group", "agent", "ok", "bad", "later", "extract", "square", "load",
         "p_ok", "p_bad", "artifact", "hook", "message"])}
    runs = {run: {"extract-1": ids["extract"] + run, "square-1": ids["p_" + run] if run in ("ok", "bad") else ""}
            for run in ("ok", "bad")}
    return Seed(
        tenant_id=ids["tenant"], tenant_slug="default", project_id=ids["project"], project_name="ui", flow_id=ids["flow"],
        flow_name="f", flow_group_id=ids["group"], version_group_id="vg-1",
        tasks={"extract-1": ids["extract"], "square-1": ids["square"], "load-1": ids["load"]}, agent_id=ids["agent"],
        success_run_id=ids["ok"], failed_run_id=ids["bad"], scheduled_run_id=ids["later"],
        task_runs={"success": runs["ok"], "failed": runs["bad"]}, mapped_children={}, failed_task_run_id="",
        log_ids=[], artifact_id=ids["artifact"], cloud_hook_id=ids["hook"], message_id=ids["message"],
    )


@pytest.mark.pure
def test_only_reads_are_run_and_subscriptions_go_as_queries() -> None:
    documents = [entry("mutation M { delete_project(input: {}) { success } }"), entry("query Q { api { mode } }"),
                 entry("subscription S { flow_run { id } }"), entry("{ tenant { id } }")]
    reads = read_operations(documents)
    assert [print_ast(document).split()[0] for _, document in reads] == ["query", "query", "{"]


@pytest.mark.pure
def test_variables_and_placeholder_ids_get_the_seeded_object_their_position_names() -> None:
    seed = fake_seed()
    document = parse("""query Q($id: uuid!, $agentId: uuid, $project: uuid, $flow_id: uuid, $since: timestamptz,
                                $endTime: timestamptz, $limit: Int, $offset: Int, $name: String, $ids: _uuid,
                                $states: [String!], $VGI: String, $where: task_run_bool_exp!, $runs: [uuid!],
                                $mystery: Boolean!, $logId: uuid) {
      flow_run_by_pk(id: $id) { id logs(where: {id: {_eq: $logId}}) { id } }
      flow_run(where: {agent_id: {_eq: $agentId}, flow: {project_id: {_eq: $project}, id: {_eq: $flow_id}},
                       updated: {_gte: $since, _lte: $endTime}, name: {_ilike: $name}, state: {_in: $states}},
               limit: $limit, offset: $offset) { id }
      utility_downstream_tasks(args: {start_task_ids: $ids}) { depth }
      cloud_hook(where: {version_group_id: {_eq: $VGI}}) { id }
      task_run_artifact(where: {task_run_id: {_in: $runs}}) { id }
      task_run(where: $where) { id }
      tr: task_run(where: {task_id: {_eq: "00000000-0000-0000-0000-000000000002"}, active: $mystery}) { id }
    }""")
    text, variables, missing = fill(document, seed)
    assert variables["id"] == seed.failed_run_id and variables["agentId"] == seed.agent_id
    assert variables["project"] == seed.project_id and variables["flow_id"] == seed.flow_id
    since, end = dt.datetime.fromisoformat(variables["since"]), dt.datetime.fromisoformat(variables["endTime"])
    assert since < dt.datetime.now(dt.UTC) < end
    assert (variables["limit"], variables["offset"], variables["name"]) == (10, 0, "%")
    assert variables["ids"] == "{" + seed.mapped_task_id + "}" and variables["VGI"] == "vg-1"
    assert variables["runs"] == list(seed.task_runs["success"].values()) and variables["where"] == {}
    assert "logId" not in variables and missing == ["mystery"]
    assert f'"{seed.mapped_task_id}"' in text and "000000000002" not in text


@pytest.mark.slow
@pytest.mark.pure  # the command starts its own embedded Postgres
def test_the_command_runs_a_documents_file_and_counts_the_answers(tmp_path: Path) -> None:
    chosen = [read for read in READS if read.id in ("flow-group-page", "flow-run-logs", "mapped-children", "downstream-tasks")]
    documents = [entry(read.document, read.id) for read in chosen]
    documents.append(entry("query Broken { flow_run { no_such_field } }", "broken"))
    documents.append(entry("mutation Skipped { delete_project(input: {project_id: null}) { success } }", "skipped"))
    path = tmp_path / "documents.json"
    path.write_text(json.dumps(documents))
    env = {k: v for k, v in os.environ.items() if k != "HEADWATER_BENCH_DATABASE_URL"}
    done = subprocess.run([sys.executable, "-m", "bench.ui_documents", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("OK ") for line in lines) == 4 and "flow_group_by_pk=1" in done.stdout
    assert any(line.startswith("ERROR broken") for line in lines)
    assert "Cannot query field 'no_such_field'" in done.stdout
    assert lines[-1] == "4 of 5 read documents answered without error"
