"""Every UI page rendered in-process (httpx against the app), with data made through the API."""

from __future__ import annotations

import re
import uuid

import pytest

from tests import factories
from tests.ui.conftest import HTML, register

CREATE_RUN = "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"


async def test_get_root_is_the_dashboard_for_browsers_and_post_root_stays_graphql(http, gql, hello_flow):
    page = await http.get("/", headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Dashboard" in page.text and 'id="create-project"' in page.text
    assert "tutorial" in page.text, "the project filter lists the projects"
    assert (await gql("{ hello }")) == {"hello": "👋"}
    plain = await http.get("/")
    assert plain.status_code == 405 and "POST" in plain.json()["errors"][0]["message"]


async def test_dashboard_counts_and_lists_runs_by_state(http, gql, hello_flow, project_id):
    await gql(CREATE_RUN, {"input": {"flow_id": hello_flow["flow_id"], "flow_run_name": "soon"}})
    late = await gql(CREATE_RUN, {"input": {"flow_id": hello_flow["flow_id"], "flow_run_name": "overdue",
                                            "scheduled_start_time": "2020-01-01T00:00:00+00:00"}})
    done = (await gql(CREATE_RUN, {"input": {"flow_id": hello_flow["flow_id"], "flow_run_name": "done"}}))["create_flow_run"]["id"]
    for state, version in (("Running", 1), ("Success", 2)):
        await gql.mutate("set_flow_run_states", {"states": [{"flow_run_id": done, "version": version, "state": {"type": state}}]},
                         "states { status }")
    page = (await http.get("/default", headers=HTML)).text
    assert re.search(r'data-count="scheduled">2<', page) and re.search(r'data-count="success">1<', page)
    late_section = page[page.index("<caption>Late</caption>"):]
    assert f'/default/flow-run/{late["create_flow_run"]["id"]}' in late_section[:2000]
    filtered = (await http.get(f"/default?project={project_id}&window=7d", headers=HTML)).text
    assert "Dashboard: tutorial" in filtered and re.search(r'data-count="scheduled">2<', filtered)
    other = await gql.mutate("create_project", {"tenant_id": (await gql("{ tenant { id } }"))["tenant"][0]["id"], "name": "empty"})
    empty = (await http.get(f"/default?project={other['id']}", headers=HTML)).text
    assert re.search(r'data-count="scheduled">0<', empty)


async def test_dashboard_counts_stop_at_the_cap_and_say_so(http, gql, hello_flow, monkeypatch):
    from headwater.server.ui import pages

    monkeypatch.setattr(pages, "COUNT_CAP", 2)
    for name in ("a", "b", "c"):
        await gql(CREATE_RUN, {"input": {"flow_id": hello_flow["flow_id"], "flow_run_name": name}})
    page = (await http.get("/default", headers=HTML)).text
    assert re.search(r'data-count="scheduled">2\+<', page), "three runs, counted up to the cap of two"
    assert re.search(r'data-count="running">0<', page)


async def test_flows_page_lists_searches_and_filters_by_project(http, gql, hello_flow, project_id, tenant_id):
    other = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "other"}))["id"]
    await register(gql, other, name="etl")
    page = (await http.get("/default/flows", headers=HTML)).text
    assert f'/default/flow/{hello_flow["group_id"]}' in page and ">etl<" in page
    searched = (await http.get("/default/flows?q=HELLO", headers=HTML)).text
    assert "hello-flow" in searched and ">etl<" not in searched
    by_project = (await http.get(f"/default/flows?project={other}", headers=HTML)).text
    assert ">etl<" in by_project and "hello-flow" not in by_project
    nothing = (await http.get("/default/flows?q=%25", headers=HTML)).text
    assert "No flow matches" in nothing, "% in a search is a literal, not a wildcard"


async def test_flow_page_overview_tabs_and_quick_run_hooks(http, gql, project_id):
    flow = await register(
        gql, project_id, name="scheduled", schedule=factories.interval_schedule(3600),
        parameters=[factories.parameter("n", default=3), factories.parameter("who", required=True)],
    )
    page = (await http.get(f"/default/flow/{flow['group_id']}", headers=HTML)).text
    assert "<h1>scheduled <small>v1" in page
    assert f'id="quick-run" data-flow="{flow["flow_id"]}"' in page
    assert re.search(r'data-parameter="who" required', page), "a required parameter without default is required"
    assert re.search(r'data-parameter="n"\s+value="3"', page)
    assert 'id="toggle-schedule"' in page and "IntervalClock" in page and "every 3600 s" in page
    assert '<span class="label">dev</span>' in page, "the run config's labels, when the group sets none"
    assert '"QUICK_RUN"' in page, "the scripts' documents are embedded"
    for tab, marker in (("runs", "0 runs"), ("versions", "1 version"), ("tasks", "task")):
        response = await http.get(f"/default/flow/{flow['group_id']}?tab={tab}", headers=HTML)
        assert response.status_code == 200 and marker in response.text, tab
    assert "extract" in (await http.get(f"/default/flow/{flow['group_id']}?tab=tasks", headers=HTML)).text


async def test_runs_tab_paginates_and_filters_by_state(http, gql, hello_flow):
    for index in range(27):
        await gql(CREATE_RUN, {"input": {"flow_id": hello_flow["flow_id"], "flow_run_name": f"run-{index:02}"}})
    base = f"/default/flow/{hello_flow['group_id']}?tab=runs"
    first = (await http.get(base, headers=HTML)).text
    assert "27 runs" in first and "Page 1 of 2" in first and first.count("/default/flow-run/") == 25
    second = (await http.get(base + "&page=2", headers=HTML)).text
    assert second.count("/default/flow-run/") == 2
    failed = (await http.get(base + "&state=Failed", headers=HTML)).text
    assert "0 runs" in failed and "No runs in state Failed" in failed


async def test_a_runs_count_that_reaches_the_cap_shows_a_plus_and_pages_on_while_full(http, gql, hello_flow, monkeypatch):
    from headwater.server.ui import pages

    monkeypatch.setattr(pages, "COUNT_CAP", 30)  # counted with this limit, as 10,000 is in production
    for index in range(55):
        await gql(CREATE_RUN, {"input": {"flow_id": hello_flow["flow_id"], "flow_run_name": f"run-{index:02}"}})
    base = f"/default/flow/{hello_flow['group_id']}?tab=runs"
    first = (await http.get(base, headers=HTML)).text
    assert "30+ runs" in first and "Page 1 (30+)" in first and 'rel="next"' in first
    third = (await http.get(base + "&page=3", headers=HTML)).text
    assert third.count("/default/flow-run/") == 5 and 'rel="next"' not in third and 'rel="prev"' in third
    overview = (await http.get(f"/default/flow/{hello_flow['group_id']}", headers=HTML)).text
    assert "All 30+ runs" in overview


async def test_a_missing_or_foreign_flow_is_a_404_page(http, gql, hello_flow):
    assert (await http.get(f"/default/flow/{uuid.uuid4()}", headers=HTML)).status_code == 404
    assert (await http.get("/default/flow/not-a-uuid", headers=HTML)).status_code == 404
    missing_tenant = await http.get(f"/elsewhere/flow/{hello_flow['group_id']}", headers=HTML)
    assert missing_tenant.status_code == 404 and "tenant" in missing_tenant.text
    assert (await http.get(f"/default/flow-run/{uuid.uuid4()}", headers=HTML)).status_code == 404
    assert (await http.get(f"/default/task-run/{uuid.uuid4()}", headers=HTML)).status_code == 404


async def test_flow_run_page_shows_state_task_runs_logs_and_parameters(http, gql, hello_flow):
    run_id = (await gql(CREATE_RUN, {"input": {"flow_id": hello_flow["flow_id"], "parameters": {"who": "Cloud"}}}))["create_flow_run"]["id"]
    await gql.mutate("write_run_logs", {"logs": [
        {"flow_run_id": run_id, "level": "INFO", "message": "Hello, Cloud!", "name": "prefect.hello"},
        {"flow_run_id": run_id, "level": "ERROR", "message": "<script>alert(1)</script>", "name": "prefect"},
    ]}, "success")
    page = (await http.get(f"/default/flow-run/{run_id}", headers=HTML))
    assert page.status_code == 200
    text = page.text
    assert 'data-state="Scheduled"' in text and "Hello, Cloud!" in text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text, "log text is escaped"
    assert '&#34;who&#34;: &#34;Cloud&#34;' in text or "&quot;who&quot;" in text
    assert 'data-task="extract-1"' in text, "task runs are created with the run"
    task_run = re.search(r'/default/task-run/([0-9a-f-]{36})', text).group(1)
    assert f'href="/default/flow/{hello_flow["group_id"]}"' in text
    detail = await http.get(f"/default/task-run/{task_run}", headers=HTML)
    assert detail.status_code == 200 and "extract" in detail.text and f"/default/flow-run/{run_id}" in detail.text


async def test_mapped_children_are_grouped_under_their_task(http, gql, hello_flow):
    run_id = (await gql(CREATE_RUN, {"input": {"flow_id": hello_flow["flow_id"]}}))["create_flow_run"]["id"]
    task_id = (await gql('{ task(where: {slug: {_eq: "extract-1"}}) { id } }'))["task"][0]["id"]
    for index in range(3):
        await gql.mutate("get_or_create_task_run", {"flow_run_id": run_id, "task_id": task_id, "map_index": index})
    page = (await http.get(f"/default/flow-run/{run_id}", headers=HTML)).text
    assert page.count('data-task="extract-1"') == 1 and "3 mapped: 3 Pending" in page


async def test_agents_page(http, gql):
    await gql.mutate("register_agent", {"type": "LocalAgent", "name": "laptop", "labels": ["dev"]})
    page = (await http.get("/default/agents", headers=HTML)).text
    assert "laptop" in page and "LocalAgent" in page and "dev" in page


async def test_static_files_and_no_external_resources(http, hello_flow):
    for path in ("/_ui/static/app.js", "/_ui/static/app.css"):
        assert (await http.get(path)).status_code == 200
    css = (await http.get("/_ui/static/app.css")).text
    assert "--state-Scheduled: #ffab00" in css and "--state-Success: #28a745" in css, "Prefect's state colours"
    for path in ("/default", "/default/flows", f"/default/flow/{hello_flow['group_id']}", "/default/agents", "/api"):
        page = (await http.get(path, headers=HTML)).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert sources and all(s.startswith(("/", "#", "data:")) for s in sources), (path, sources)
        assert "https://" not in page and "http://" not in page, path


def test_every_fixed_top_level_path_is_a_reserved_tenant_slug(settings):
    """A tenant slugged like one of the server's own paths would have pages nobody can reach."""
    from dataclasses import replace

    from starlette.routing import Mount, Route

    from headwater.server.app import create_app
    from headwater.server.domain.tenants import RESERVED_SLUGS, _SLUG

    app = create_app(replace(settings, metrics_enabled=True))
    firsts = {route.path.strip("/").split("/")[0] for route in app.routes if isinstance(route, (Route, Mount))}
    fixed = {first for first in firsts if first and "{" not in first and _SLUG.match(first)}
    assert {"api", "graphql", "login", "metrics"} <= fixed
    assert fixed <= RESERVED_SLUGS


async def test_a_reserved_slug_is_refused_with_a_clear_message(gql, tenant_id):
    for mutation, arguments in (("create_tenant", {"name": "API team", "slug": "api"}),
                                ("update_tenant_slug", {"tenant_id": tenant_id, "slug": "login"})):
        message = await gql.mutate_error(mutation, arguments)
        assert "is reserved" in message and "one of the server's own paths" in message, mutation
    plain = await gql.mutate("create_tenant", {"name": "Data team", "slug": "data-team"})
    assert plain["id"]
