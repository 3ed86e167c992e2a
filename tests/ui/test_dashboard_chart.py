"""The dashboard's run-history chart: buckets by time and state, from one capped read."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from headwater.server.ui import charts
from tests.ui.conftest import HTML

CREATE_RUN = "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"


async def test_the_chart_stacks_the_windows_runs_by_state(http, gql, hello_flow):
    moment = datetime.now(timezone.utc)
    hour = moment.replace(minute=0, second=0, microsecond=0)
    for hours_ago, final in ((3, "Success"), (3, "Failed"), (3, "Success"), (30, "Success"), (0, None)):
        when = (hour - timedelta(hours=hours_ago)).isoformat()
        run = (await gql(CREATE_RUN, {"input": {"flow_id": hello_flow["flow_id"], "scheduled_start_time": when}}))["create_flow_run"]["id"]
        if final:
            for version, state in ((1, "Running"), (2, final)):
                await gql.mutate("set_flow_run_states", {"states": [{"flow_run_id": run, "version": version, "state": {"type": state}}]},
                                 "states { status }")
    page = (await http.get("/default?window=24h", headers=HTML)).text
    chart = page[page.index('<svg id="run-history"'):page.index("</figure>")]
    assert 'data-total="4"' in chart, "the run 30 h ago is outside the window"
    assert len(re.findall(r'<g class="bucket"', chart)) == 24
    assert re.search(r'<g class="bucket" data-total="3"><rect class="state-Success"[^>]*height="93.33"[^>]*>'
                     r'<title>[^<]*: 2 Success</title></rect><rect class="state-Failed"', chart), chart
    assert "Scheduled" in chart and 'class="swatch state-Failed"' in chart
    week = (await http.get("/default?window=7d", headers=HTML)).text
    assert 'data-total="5"' in week and len(re.findall(r'<g class="bucket"', week)) == 28


@pytest.mark.pure
def test_a_full_read_says_it_was_capped():
    since = datetime(2030, 1, 1, tzinfo=timezone.utc)
    runs = [{"scheduled_start_time": (since + timedelta(minutes=i % 60)).isoformat(), "state": "Success"} for i in range(charts.CAP)]
    chart = charts.run_history(runs, since, since + timedelta(hours=1), "1h")
    assert charts.chart_start(timedelta(hours=24), since + timedelta(hours=5, minutes=7), timedelta(hours=1)) == \
        since - timedelta(hours=18), "24 whole hours, the last one holding now"
    assert chart["capped"] and len(chart["bars"]) == 12 and sum(b["total"] for b in chart["bars"]) == charts.CAP
    assert not charts.run_history(runs[:10], since, since + timedelta(hours=1), "1h")["capped"]
