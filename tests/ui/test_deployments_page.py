"""The deployments page and the flow page's Deployments tab, rendered in-process."""

from __future__ import annotations

import re

from tests.ui.conftest import HTML, register


async def make_deployment(gql, group_id: str, name: str, **fields) -> str:
    return (await gql.mutate("create_deployment", {"flow_group_id": group_id, "name": name, **fields}))["id"]


async def test_deployments_page_lists_parameters_tags_schedule_and_next_runs(http, gql, project_id):
    flow = await register(gql, project_id, name="adder")
    nightly = await make_deployment(gql, flow["group_id"], "nightly", parameters={"nums": [1, 2]}, tags=["night"],
                                    schedule=[{"interval": 5400, "timezone": "Europe/Berlin"}])
    await make_deployment(gql, flow["group_id"], "adhoc", parameters={"nums": [9]})
    page = (await http.get("/default/deployments", headers=HTML)).text
    assert 'href="/default/deployments" aria-current="page"' in page, "linked in the nav"
    assert "2 deployments" in page and page.index("<h3>adhoc") < page.index("<h3>nightly"), "by name"
    assert "every 1h30m (Europe/Berlin)" in page and '<span class="label">night</span>' in page
    assert "&#34;nums&#34;: [\n    1,\n    2\n  ]" in page or "&quot;nums&quot;" in page
    section = page[page.index(f'data-deployment="{nightly}"'):]
    assert len(re.findall(r'/default/flow-run/[0-9a-f-]{36}', section.split('class="deployment"')[0])) == 3, "next runs"
    assert f'data-id="{nightly}"' in page and 'data-enable="SET_DEPLOYMENT_SCHEDULE_ACTIVE"' in page
    assert '"SET_DEPLOYMENT_SCHEDULE_INACTIVE"' in page, "the toggle's documents are embedded"
    assert "No run is scheduled." in page, "adhoc has none"


async def test_flow_page_deployments_tab_shows_only_that_flows(http, gql, project_id):
    first = await register(gql, project_id, name="first")
    second = await register(gql, project_id, name="second")
    await make_deployment(gql, first["group_id"], "mine")
    await make_deployment(gql, second["group_id"], "theirs")
    page = (await http.get(f"/default/flow/{first['group_id']}?tab=deployments", headers=HTML)).text
    assert 'aria-current="page">Deployments</a>' in page
    assert "<h3>mine<" in page and "theirs" not in page
    empty = (await http.get("/default/deployments?page=9", headers=HTML))
    assert empty.status_code == 200
