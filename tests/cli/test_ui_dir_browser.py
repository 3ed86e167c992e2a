"""`headwater start --ui-dir DIR` in a real browser: Debian's chromium, driven by Playwright,
loads a page from headwater's own port; its script reads settings.json and POSTs a batched
GraphQL query (as the Prefect UI's Apollo batch link does) to the URL found there."""

from __future__ import annotations

import pytest

from tests.server_process import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>ui-dir test</title><script src="/js/app.js" defer></script></head>
<body><p id="status">loading</p><pre id="result"></pre></body></html>
"""

APP = """
(async () => {
  const status = document.getElementById("status");
  try {
    const settings = await (await fetch("/settings.json")).json();
    const response = await fetch(settings.server_url, {
      method: "POST",
      headers: {"content-type": "application/json", "x-prefect-ui": "true", "x-backend": "SERVER"},
      body: JSON.stringify([
        {operationName: "Api", variables: {}, query: "query Api { api { backend mode } }"},
        {operationName: "Tenants", variables: {}, query: "query Tenants { tenant { slug } }"},
      ]),
    });
    const [api, tenants] = await response.json();
    document.getElementById("result").textContent =
      `${response.status} ${settings.server_url} ${api.data.api.backend} ${api.data.api.mode} ${tenants.data.tenant[0].slug}`;
    status.textContent = "done";
  } catch (error) {
    status.textContent = "failed: " + error;
  }
})();
"""


def test_a_page_served_by_ui_dir_queries_headwater(tmp_path, database_url):
    from playwright import sync_api  # in the test extra; no browser is downloaded: Debian's chromium runs
    dist = tmp_path / "dist"
    (dist / "js").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "js" / "app.js").write_text(APP)
    env = {"HEADWATER_DATABASE_URL": database_url, "HEADWATER_LOG_LEVEL": "WARNING"}
    with ServerProcess("--no-services", "--no-migrate", "--ui-dir", str(dist), env=env,
                       log_path=tmp_path / "headwater.log") as server:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                page = browser.new_page()
                page.goto(server.url + "/flow/some-client-side-route")  # the SPA fallback serves index.html
                page.wait_for_function("document.getElementById('status').textContent !== 'loading'", timeout=30_000)
                assert page.text_content("#status") == "done", page.text_content("#status")
                assert page.text_content("#result") == f"200 {server.url}/graphql SERVER normal default"
            finally:
                browser.close()
