"""Fixtures for the web UI's route tests: a project, a registered flow and its runs, made through
the public GraphQL API as any client would."""

from __future__ import annotations

from typing import Any

import pytest

from tests import factories

HTML = {"accept": "text/html"}


@pytest.fixture
async def project_id(gql, tenant_id) -> str:
    return (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "tutorial"}))["id"]


async def register(gql, project_id: str, **flow: Any) -> dict[str, str]:
    """Register a serialized flow; returns its flow id and flow group id."""
    flow_id = (await gql.mutate("create_flow", {"serialized_flow": factories.flow(**flow), "project_id": project_id}))["id"]
    group = (await gql("query($id: uuid!) { flow_by_pk(id: $id) { flow_group_id } }", {"id": flow_id}))["flow_by_pk"]
    return {"flow_id": flow_id, "group_id": group["flow_group_id"]}


@pytest.fixture
async def hello_flow(gql, project_id) -> dict[str, str]:
    return await register(gql, project_id, name="hello-flow", parameters=[factories.parameter("who", default="Cloud")])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so the browser fixture knows a test failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


REPORTS = pytest.StashKey[dict]()
