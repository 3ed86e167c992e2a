"""`apply_deployments(path)` and `find_deployment` through AsyncClient (the CLI covers Client)."""

from __future__ import annotations

import textwrap

import pytest

from headwater.client import AsyncClient, BadRequest, NotFound
from headwater.client.deployment_specs import DeploymentSpecError
from tests import factories as f

pytestmark = pytest.mark.slow


async def test_async_client_applies_a_spec_file(live_server, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent("""
        - {name: nightly, project: etl, flow_name: load, parameters: {n: 2}, schedule: {interval: 1d}}
        - {name: adhoc, project: etl, flow_name: load}
    """))
    async with AsyncClient(live_server.url) as hw:
        await hw.create_project("etl")
        await hw.register_flow(f.flow("load", parameters=[f.parameter("n", default=1)]), "etl")
        applied = await hw.apply_deployments(spec)
        assert [(d["name"], d["flow_name"], d["project"], d["outcome"]) for d in applied] == [
            ("nightly", "load", "etl", "created"), ("adhoc", "load", "etl", "created")]
        again = await hw.apply_deployments(str(spec))
        assert [d["outcome"] for d in again] == ["unchanged", "unchanged"]
        assert [d["id"] for d in again] == [d["id"] for d in applied]

        found = await hw.find_deployment("load/nightly")
        assert found["id"] == applied[0]["id"] and found["schedule"] == [{"interval": 86400}]
        assert (await hw.find_deployment(applied[1]["id"]))["name"] == "adhoc"
        with pytest.raises(NotFound):
            await hw.find_deployment("load/weekly")

        spec.write_text("- {name: nightly, project: etl, flow_name: load, schedule: {cron: '0 25 * * *'}}\n")
        with pytest.raises(DeploymentSpecError) as caught:
            await hw.apply_deployments(spec)
        assert isinstance(caught.value, BadRequest)
        assert caught.value.problems == [f"{spec}: deployment 'nightly' (#1): schedule.cron: invalid cron '0 25 * * *'"]
        assert (await hw.find_deployment("nightly"))["parameters"] == {"n": 2}, "nothing was written"
