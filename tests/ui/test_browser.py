"""The seeds' journey in a real browser: Debian's chromium driven by Playwright (no browser is
downloaded; `playwright install` is never run), against a real `headwater start` and the real
prefect==1.4.1 client and agent.

A screenshot of the page is saved in the test's tmp_path when a test fails; with
HEADWATER_SCREENSHOTS=1 the README's screenshots (docs/screenshots/) are taken too."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterator

import pytest

from tests import factories
from tests.prefect_cli import Prefect
from tests.server_process import ServerProcess, free_port
from tests.ui.conftest import REPORTS

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LOCAL = re.compile(r"^(https?://(127\.0\.0\.1|localhost)(:\d+)?/|data:|about:|blob:)")

HELLO_FLOW = """
import prefect
from prefect import Flow, task

@task
def say_hello():
    prefect.context.get("logger").info("Hello, Cloud!")

with Flow("hello-flow") as flow:
    say_hello()
"""


class UI:
    """The server under test: the API URL and the UI port (a free one standing in for 8080)."""

    def __init__(self, server: ServerProcess, ui_port: int):
        self.server = server
        self.ui_port = ui_port
        self.url = f"http://localhost:{ui_port}"

    def query(self, document: str, variables: dict | None = None) -> dict:
        body = self.server.query(document, variables)
        assert "errors" not in body, body
        return body["data"]


def start_ui_server(database_url: str, log: Path, **env: str) -> tuple[ServerProcess, int]:
    ui_port = free_port()
    server = ServerProcess("--no-services", "--no-migrate", env={
        "HEADWATER_DATABASE_URL": database_url, "HEADWATER_UI_PORT": str(ui_port), **env}, log_path=log)
    return server, ui_port


@pytest.fixture
def ui(database_url, tmp_path) -> Iterator[UI]:
    server, ui_port = start_ui_server(database_url, tmp_path / "headwater.log")
    with server:
        yield UI(server, ui_port)


@pytest.fixture
def browser(request, tmp_path):
    """A chromium page at 1280 px that may reach only this machine; screenshot on failure."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        external: list[str] = []

        def refuse(route) -> None:
            external.append(route.request.url)
            route.abort()

        context.route(lambda url: not LOCAL.match(url), refuse)
        # Every Content-Security-Policy violation a page reports, checked at the end of each test.
        context.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                                "(window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI))")
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.external_requests = external
        violations: list[str] = []
        page.on("console", lambda message: violations.append(message.text[:300]) if "Content Security Policy" in message.text else None)
        page.csp_violations = violations
        yield page
        report = request.node.stash.get(REPORTS, {}).get("call")
        if report is not None and report.failed:
            shot = tmp_path / "failure.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failing page: {shot} ({page.url})")
        context.close()
        chromium.close()
    assert not external, f"the UI tried to reach the internet: {external}"
    assert not violations, f"Content-Security-Policy violations: {violations}"


README_SHOTS = {"dashboard", "flow", "flow-run"}


def keep(page, tmp_path: Path, name: str) -> None:
    """A screenshot of each page reached (kept with a failed test's tmp_path; README's with HEADWATER_SCREENSHOTS)."""
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    if os.environ.get("HEADWATER_SCREENSHOTS") and name in README_SHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.mark.prefect
def test_the_seed_journey_from_project_to_a_green_run(ui, browser, tmp_path):
    page = browser
    # 1. Create the project `tutorial` from the dashboard.
    page.goto(ui.url + "/")
    page.get_by_text("New project").click()
    page.get_by_label("Name").fill("tutorial")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(re.compile(r"\?project="))
    assert page.locator("h1").inner_text() == "Dashboard: tutorial"

    # 2. Register hello-flow with the real Prefect client and open the exact URL it printed.
    prefect = Prefect(ui.server.url, tmp_path / "home")
    printed = prefect.python(HELLO_FLOW + '\nflow.register(project_name="tutorial")\n').stdout
    match = re.search(r"Flow URL: (http://localhost:8080(/default/flow/[0-9a-f-]{36}))", printed)
    assert match, printed
    page.goto(ui.url + match.group(2))  # only host:port differ: our free port stands in for 8080
    assert page.locator("h1").inner_text().startswith("hello-flow")
    keep(page, tmp_path, "flow")

    # 3. Quick Run, then 4. an agent runs it while the page watches, with no reload.
    page.get_by_role("button", name="Quick Run").click()
    page.wait_for_url(re.compile(r"/default/flow-run/[0-9a-f-]{36}$"))
    page.evaluate("window.__not_reloaded = true")
    agent = prefect.agent(log=tmp_path / "agent.log")
    try:
        page.locator('#run-state [data-state="Success"]').wait_for(timeout=180_000)
        page.locator("#logs", has_text="Hello, Cloud!").wait_for(timeout=30_000)
    finally:
        agent.terminate()
        agent.wait(timeout=20)
    states = page.locator("#task-runs [data-state]").evaluate_all("nodes => nodes.map(n => n.dataset.state)")
    assert states and set(states) == {"Success"}, states
    assert page.evaluate("window.__not_reloaded") is True, "the page updated itself"
    assert page.locator('#task-runs .state-Success').first.evaluate("n => getComputedStyle(n).backgroundColor") == "rgb(40, 167, 69)"
    keep(page, tmp_path, "flow-run")
    flow_run_url = page.url
    page.goto(ui.url + "/")
    page.locator('[data-count="success"]', has_text="1").wait_for()
    keep(page, tmp_path, "dashboard")

    # Phone width: nothing sticks out sideways (wide tables scroll inside their section).
    page.set_viewport_size({"width": 390, "height": 844})
    for url in (ui.url + "/", ui.url + match.group(2), flow_run_url):
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
    keep(page, tmp_path, "flow-run-phone")


def test_a_required_parameter_refuses_quick_run_until_the_form_is_filled(ui, browser, tmp_path):
    tenant = ui.query("{ tenant { id } }")["tenant"][0]["id"]
    project = ui.query("mutation($i: create_project_input!) { create_project(input: $i) { id } }",
                       {"i": {"tenant_id": tenant, "name": "params"}})["create_project"]["id"]
    serialized = factories.flow(name="greet", parameters=[factories.parameter("who", required=True)])
    flow_id = ui.query("mutation($i: create_flow_input!) { create_flow(input: $i) { id } }",
                       {"i": {"serialized_flow": serialized, "project_id": project}})["create_flow"]["id"]
    group = ui.query("query($id: uuid!) { flow_by_pk(id: $id) { flow_group_id } }", {"id": flow_id})["flow_by_pk"]["flow_group_id"]
    page = browser
    page.goto(f"{ui.url}/default/flow/{group}")
    page.get_by_role("button", name="Quick Run").click()
    alert = page.locator("#errors")
    alert.filter(has_text="Required parameters were not supplied: who").wait_for()
    assert page.locator("#run-with-details").get_attribute("open") is not None, "the form opens"
    page.locator("#run-with").get_by_role("button", name="Run").click()  # the browser refuses the empty field
    page.wait_for_timeout(500)
    assert ui.query("{ flow_run_aggregate { aggregate { count } } }")["flow_run_aggregate"]["aggregate"]["count"] == 0
    page.get_by_label("who").fill('"Cloud"')
    page.get_by_label("Run name (optional)").fill("greeting")
    page.locator("#run-with").get_by_role("button", name="Run").click()
    page.wait_for_url(re.compile(r"/default/flow-run/"))
    assert json.loads(page.locator("#run-parameters").inner_text()) == {"who": "Cloud"}
    assert page.locator("h1").inner_text().startswith("greeting")


def test_graphiql_loads_the_schema_and_runs_hello_offline(ui, browser):
    page = browser
    page.goto(ui.url + "/api")
    page.locator(".graphiql-container").wait_for()
    page.locator(".graphiql-execute-button").click()
    page.locator(".result-window", has_text="👋").wait_for()
    page.get_by_role("button", name=re.compile("Documentation Explorer", re.I)).click()
    page.locator(".graphiql-doc-explorer", has_text="Query").wait_for()
    assert page.external_requests == []
    assert page.evaluate("window.__csp || []") == [] and page.csp_violations == [], "GraphiQL runs under its CSP"


def test_with_keys_the_ui_asks_for_one_and_a_read_key_cannot_quick_run(database_url, browser, tmp_path):
    import subprocess
    import sys

    made = subprocess.run([sys.executable, "-m", "headwater.server.cli", "key", "create", "viewer", "--role", "read",
                           "--database-url", database_url], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    read_key = made.stdout.strip().splitlines()[-1]
    server, ui_port = start_ui_server(database_url, tmp_path / "keyed.log", HEADWATER_API_KEY="s3cret")
    with server:
        admin = {"Authorization": "Bearer s3cret"}
        ui = UI(server, ui_port)
        import urllib.request

        def admin_query(document: str, variables: dict) -> dict:
            body = json.dumps({"query": document, "variables": variables}).encode()
            request = urllib.request.Request(server.url, body, {"Content-Type": "application/json", **admin})
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())["data"]

        tenant = admin_query("{ tenant { id } }", {})["tenant"][0]["id"]
        project = admin_query("mutation($i: create_project_input!) { create_project(input: $i) { id } }",
                              {"i": {"tenant_id": tenant, "name": "keyed"}})["create_project"]["id"]
        flow_id = admin_query("mutation($i: create_flow_input!) { create_flow(input: $i) { id } }",
                              {"i": {"serialized_flow": factories.flow(name="guarded"), "project_id": project}})["create_flow"]["id"]
        group = admin_query("query($id: uuid!) { flow_by_pk(id: $id) { flow_group_id } }", {"id": flow_id})["flow_by_pk"]["flow_group_id"]
        page = browser
        page.goto(f"{ui.url}/default/flow/{group}")
        page.wait_for_url(re.compile(r"/login\?next="))
        page.get_by_label("API key").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("That key is not valid").wait_for()
        page.get_by_label("API key").fill(read_key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(f"/default/flow/{group}$"))
        assert page.locator("h1").inner_text().startswith("guarded")
        cookie = next(c for c in page.context.cookies() if c["name"] == "headwater_key")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] == -1
        page.get_by_role("button", name="Quick Run").click()
        page.locator("#errors").filter(has_text="role 'read', which may not run mutation create_flow_run").wait_for()
        assert admin_query("{ flow_run_aggregate { aggregate { count } } }", {})["flow_run_aggregate"]["aggregate"]["count"] == 0


def test_cancel_and_restart_from_the_flow_run_page(ui, browser):
    tenant = ui.query("{ tenant { id } }")["tenant"][0]["id"]
    project = ui.query("mutation($i: create_project_input!) { create_project(input: $i) { id } }",
                       {"i": {"tenant_id": tenant, "name": "ops"}})["create_project"]["id"]
    flow_id = ui.query("mutation($i: create_flow_input!) { create_flow(input: $i) { id } }",
                       {"i": {"serialized_flow": factories.flow(name="ops-flow"), "project_id": project}})["create_flow"]["id"]
    run_id = ui.query("mutation($i: create_flow_run_input!) { create_flow_run(input: $i) { id } }",
                      {"i": {"flow_id": flow_id}})["create_flow_run"]["id"]
    page = browser
    page.goto(f"{ui.url}/default/flow-run/{run_id}")
    page.evaluate("window.__not_reloaded = true")
    page.get_by_role("button", name="Cancel").click()
    page.locator('#run-state [data-state="Cancelled"]').wait_for()
    page.get_by_role("button", name="Restart").click()
    page.locator('#run-state [data-state="Scheduled"]').wait_for()
    page.locator("#state-history", has_text="Restarted from the UI").wait_for()
    assert page.evaluate("window.__not_reloaded") is True
    run = ui.query("query($id: uuid!) { flow_run_by_pk(id: $id) { state task_runs { state } } }", {"id": run_id})["flow_run_by_pk"]
    assert run["state"] == "Scheduled" and {t["state"] for t in run["task_runs"]} <= {"Pending"}


def test_the_schedule_toggle_removes_and_restores_future_runs(ui, browser):
    tenant = ui.query("{ tenant { id } }")["tenant"][0]["id"]
    project = ui.query("mutation($i: create_project_input!) { create_project(input: $i) { id } }",
                       {"i": {"tenant_id": tenant, "name": "timed"}})["create_project"]["id"]
    serialized = factories.flow(name="hourly", schedule=factories.interval_schedule(3600))
    flow_id = ui.query("mutation($i: create_flow_input!) { create_flow(input: $i) { id } }",
                       {"i": {"serialized_flow": serialized, "project_id": project, "set_schedule_active": True}})["create_flow"]["id"]
    group = ui.query("query($id: uuid!) { flow_by_pk(id: $id) { flow_group_id } }", {"id": flow_id})["flow_by_pk"]["flow_group_id"]
    count = '{ flow_run_aggregate(where: {state: {_eq: "Scheduled"}}) { aggregate { count } } }'
    scheduled = ui.query(count)["flow_run_aggregate"]["aggregate"]["count"]
    assert scheduled > 0
    page = browser
    page.goto(f"{ui.url}/default/flow/{group}")
    toggle = page.get_by_role("switch", name="Schedule")
    assert toggle.get_attribute("aria-checked") == "true"
    assert page.locator(".next-runs li a").count() == min(5, scheduled)
    toggle.click()
    page.locator(".next-runs", has_text="No run is scheduled.").wait_for()
    assert page.get_by_role("switch", name="Schedule").get_attribute("aria-checked") == "false"
    assert ui.query(count)["flow_run_aggregate"]["aggregate"]["count"] == 0
    page.get_by_role("switch", name="Schedule").click()
    page.locator(".next-runs li a").first.wait_for()
    assert page.get_by_role("switch", name="Schedule").get_attribute("aria-checked") == "true"
    assert ui.query(count)["flow_run_aggregate"]["aggregate"]["count"] == scheduled


def test_a_deployments_quick_run_uses_its_parameters_and_its_toggle_removes_and_restores_runs(ui, browser):
    tenant = ui.query("{ tenant { id } }")["tenant"][0]["id"]
    project = ui.query("mutation($i: create_project_input!) { create_project(input: $i) { id } }",
                       {"i": {"tenant_id": tenant, "name": "deploys"}})["create_project"]["id"]
    serialized = factories.flow(name="adder", parameters=[factories.parameter("nums", required=True)])
    flow_id = ui.query("mutation($i: create_flow_input!) { create_flow(input: $i) { id } }",
                       {"i": {"serialized_flow": serialized, "project_id": project}})["create_flow"]["id"]
    group = ui.query("query($id: uuid!) { flow_by_pk(id: $id) { flow_group_id } }", {"id": flow_id})["flow_by_pk"]["flow_group_id"]
    deployment = ui.query("mutation($i: create_deployment_input!) { create_deployment(input: $i) { id } }", {"i": {
        "flow_group_id": group, "name": "hourly-sum", "parameters": {"nums": [1, 2, 3, 4]}, "tags": ["sums"],
        "schedule": [{"interval": 3600}]}})["create_deployment"]["id"]
    future = ('query($d: uuid!) { flow_run_aggregate(where: {deployment_id: {_eq: $d}, state: {_eq: "Scheduled"}}) '
              '{ aggregate { count } } }')
    scheduled = ui.query(future, {"d": deployment})["flow_run_aggregate"]["aggregate"]["count"]
    assert scheduled > 0
    page = browser

    # The tenant-wide page, reached from the nav: the toggle pauses and resumes the schedule.
    page.goto(ui.url + "/default")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deployments").click()
    page.wait_for_url(re.compile(r"/default/deployments$"))
    card = page.locator(f'li.deployment[data-deployment="{deployment}"]')
    assert card.locator(".next-runs li a").count() == 3
    toggle = card.get_by_role("switch", name="Schedule of hourly-sum")
    assert toggle.get_attribute("aria-checked") == "true"
    toggle.click()
    card.locator(".next-runs", has_text="No run is scheduled.").wait_for()
    assert card.get_by_role("switch").get_attribute("aria-checked") == "false"
    assert ui.query(future, {"d": deployment})["flow_run_aggregate"]["aggregate"]["count"] == 0
    card.get_by_role("switch").click()
    card.locator(".next-runs li a").first.wait_for()
    assert card.get_by_role("switch").get_attribute("aria-checked") == "true"
    assert ui.query(future, {"d": deployment})["flow_run_aggregate"]["aggregate"]["count"] == scheduled

    # The flow page's Deployments tab: Quick Run creates a run with the deployment's parameters.
    page.goto(f"{ui.url}/default/flow/{group}")
    page.get_by_role("link", name="Deployments", exact=True).last.click()
    page.wait_for_url(re.compile(r"tab=deployments"))
    page.get_by_role("button", name="Quick Run hourly-sum").click()
    page.wait_for_url(re.compile(r"/default/flow-run/[0-9a-f-]{36}$"))
    assert json.loads(page.locator("#run-parameters").inner_text()) == {"nums": [1, 2, 3, 4]}
    run_id = page.url.rsplit("/", 1)[1]
    run = ui.query("query($id: uuid!) { flow_run_by_pk(id: $id) { deployment_id parameters tags } }", {"id": run_id})["flow_run_by_pk"]
    assert run == {"deployment_id": deployment, "parameters": {"nums": [1, 2, 3, 4]}, "tags": ["sums"]}


def set_states(ui: UI, flow_run: str | None = None, task_run: str | None = None, state: str = "Running") -> None:
    if flow_run:
        ui.query("mutation($i: set_flow_run_states_input!) { set_flow_run_states(input: $i) { states { status } } }",
                 {"i": {"states": [{"flow_run_id": flow_run, "state": {"type": state}}]}})
    if task_run:
        ui.query("mutation($i: set_task_run_states_input!) { set_task_run_states(input: $i) { states { status } } }",
                 {"i": {"states": [{"task_run_id": task_run, "state": {"type": state}}]}})


def test_a_running_flows_timeline_task_runs_and_task_run_page_update_live(ui, browser):
    tenant = ui.query("{ tenant { id } }")["tenant"][0]["id"]
    project = ui.query("mutation($i: create_project_input!) { create_project(input: $i) { id } }",
                       {"i": {"tenant_id": tenant, "name": "live"}})["create_project"]["id"]
    flow_id = ui.query("mutation($i: create_flow_input!) { create_flow(input: $i) { id } }",
                       {"i": {"serialized_flow": factories.flow(name="live-flow"), "project_id": project}})["create_flow"]["id"]
    run_id = ui.query("mutation($i: create_flow_run_input!) { create_flow_run(input: $i) { id } }",
                      {"i": {"flow_id": flow_id}})["create_flow_run"]["id"]
    task_runs = ui.query("query($id: uuid!) { flow_run_by_pk(id: $id) { task_runs(order_by: {task: {name: asc}}) { id task { slug } } } }",
                         {"id": run_id})["flow_run_by_pk"]["task_runs"]
    first = task_runs[0]
    page = browser
    page.goto(f"{ui.url}/default/flow-run/{run_id}")
    page.evaluate("window.__not_reloaded = true")
    page.locator("#timeline-empty", has_text="No task has started yet.").wait_for()
    set_states(ui, flow_run=run_id, task_run=first["id"], state="Running")
    bar = page.locator(f'#timeline g[data-task="{first["task"]["slug"]}"] rect')
    bar.and_(page.locator('[data-state="Running"]')).wait_for()
    assert bar.evaluate("n => getComputedStyle(n).fill") == "rgb(61, 103, 255)", "the Running colour"
    page.locator(f'#task-runs tr[data-task="{first["task"]["slug"]}"] [data-state="Running"]').wait_for()
    set_states(ui, task_run=first["id"], state="Success")
    bar.and_(page.locator('[data-state="Success"]')).wait_for()
    page.locator(f'#task-runs tr[data-task="{first["task"]["slug"]}"] [data-state="Success"]').wait_for()
    assert page.evaluate("window.__not_reloaded") is True

    # The task-run page follows its task run while the flow run is unfinished.
    second = task_runs[-1]
    page.goto(f"{ui.url}/default/task-run/{second['id']}")
    page.evaluate("window.__not_reloaded = true")
    page.locator('#task-run-state [data-state="Pending"]').wait_for()
    set_states(ui, task_run=second["id"], state="Running")
    page.locator('#task-run-state [data-state="Running"]').wait_for()
    ui.query("mutation($i: write_run_logs_input!) { write_run_logs(input: $i) { success } }", {"i": {"logs": [
        {"flow_run_id": run_id, "task_run_id": second["id"], "level": "INFO", "message": "half way", "name": "prefect.task"}]}})
    page.locator("#task-run-logs", has_text="half way").wait_for()
    set_states(ui, task_run=second["id"], state="Failed")
    page.locator('#task-run-state [data-state="Failed"]').wait_for()
    page.locator("#task-run-history [data-state=Failed]").wait_for()
    assert page.evaluate("window.__not_reloaded") is True
