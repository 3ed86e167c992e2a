"""Reading and checking deployment spec files (.py and .yaml), without a server."""

from __future__ import annotations

import datetime as dt
import sys
import textwrap
from pathlib import Path

import pytest

from headwater.client.deployment_specs import DeploymentSpecError, interval_seconds, load_spec_file

pytestmark = pytest.mark.pure


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path, "flow.py", "# a flow script (not loaded by these tests)\n")
    return tmp_path


def problems(path: Path) -> list[str]:
    with pytest.raises(DeploymentSpecError) as caught:
        load_spec_file(path)
    return caught.value.problems


def test_python_spec_collects_every_deployment_spec(folder: Path):
    write(folder, "helpers.py", "NUMS = [1, 2, 3, 4]\n")
    path = write(folder, "spec.py", """
        import datetime
        from helpers import NUMS  # the spec's folder is importable while it runs
        from headwater.client.deployments import CronSchedule, DeploymentSpec, IntervalSchedule, RRuleSchedule

        DeploymentSpec(name="my-first-deployment", flow_location="flow.py", parameters={"nums": NUMS})
        DeploymentSpec(
            name="nightly", project="etl", flow_name="Addition Machine", tags=["nightly"], labels=["big"],
            schedules=[
                IntervalSchedule(interval=datetime.timedelta(hours=1), anchor_date=datetime.datetime(2030, 1, 1, 9)),
                CronSchedule("0 9 * * *", timezone="Europe/Berlin", day_or=False),
                RRuleSchedule("FREQ=WEEKLY;BYDAY=MO", timezone="America/New_York"),
            ],
            is_schedule_active=False,
        )
    """)
    saved_path = list(sys.path)
    spec = load_spec_file(path)
    assert sys.path == saved_path, "sys.path is restored after the spec ran"
    assert spec.kind == "python script"
    first, second = spec.deployments
    assert (first.index, first.name, first.project) == (1, "my-first-deployment", "default")
    assert first.flow_location == (folder / "flow.py").resolve(), "relative to the spec file, not the cwd"
    assert first.parameters == {"nums": [1, 2, 3, 4]} and first.schedules is None and first.is_schedule_active is None
    assert (second.project, second.flow_name, second.flow_location) == ("etl", "Addition Machine", None)
    assert second.tags == ["nightly"] and second.labels == ["big"] and second.is_schedule_active is False
    assert second.schedules == [
        {"interval": 3600, "anchor_date": "2030-01-01T09:00:00"},
        {"cron": "0 9 * * *", "timezone": "Europe/Berlin", "day_or": False},
        {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "America/New_York"},
    ]


def test_yaml_spec_list_and_mapping_forms(folder: Path):
    listing = write(folder, "spec.yaml", """
        - name: my-first-deployment
          flow_location: ./flow.py
          parameters: {nums: [1, 2, 3, 4]}
        - name: hourly
          flow_name: Addition Machine
          project: etl
          description: every hour
          schedule: {interval: 1h30m, anchor_date: 2030-01-01T09:00:00, timezone: Europe/Berlin}
        - name: berlin
          flow_name: Addition Machine
          project: etl
          schedules:
            - cron: "0 9 * * *"
              timezone: Europe/Berlin
            - interval: PT2H
            - interval: 600
    """)
    spec = load_spec_file(listing)
    assert spec.kind == "yaml file"
    assert [d.name for d in spec.deployments] == ["my-first-deployment", "hourly", "berlin"]
    assert spec.deployments[0].flow_location == (folder / "flow.py").resolve()
    assert spec.deployments[1].description == "every hour"
    assert spec.deployments[1].schedules == [
        {"interval": 5400, "anchor_date": "2030-01-01T09:00:00", "timezone": "Europe/Berlin"}]
    assert spec.deployments[2].schedules == [
        {"cron": "0 9 * * *", "timezone": "Europe/Berlin"}, {"interval": 7200}, {"interval": 600}]

    mapping = write(folder, "spec.yml", """
        deployments:
          - {name: a, flow_name: f}
    """)
    assert [d.name for d in load_spec_file(mapping).deployments] == ["a"]


def test_interval_forms():
    assert interval_seconds(90) == 90 and interval_seconds(dt.timedelta(minutes=2)) == 120
    assert interval_seconds("1d") == 86400 and interval_seconds("1h30m") == 5400 and interval_seconds("45s") == 45
    assert interval_seconds("PT1H") == 3600 and interval_seconds("P1DT1M") == 86460 and interval_seconds("P1W") == 604800
    assert interval_seconds("3600") == 3600
    for bad in ("", "soon", "P", "PT", True, None, [1]):
        assert interval_seconds(bad) is None, bad


def test_yaml_syntax_error_names_its_line(folder: Path):
    path = write(folder, "spec.yaml", """
        - name: a
          flow_name: f
        - name: b
          flow_name: [unclosed
    """)
    (message,) = problems(path)
    assert message.startswith(f"{path}: line ") and "invalid YAML" in message
    assert int(message.split("line ")[1].split(":")[0]) in (5, 6)


def test_yaml_key_given_twice(folder: Path):
    path = write(folder, "spec.yaml", """
        - name: a
          flow_name: f
          name: b
    """)
    (message,) = problems(path)
    assert message == f"{path}: line 4: invalid YAML: key 'name' is given twice"


def test_every_problem_is_reported_with_file_deployment_and_field(folder: Path):
    path = write(folder, "spec.yaml", """
        - flow_name: f
        - name: nightly
          flow_name: f
          schedule: {cron: "61 * * * *"}
        - name: zoned
          flow_name: f
          schedule: {interval: 3600, timezone: Mars/Olympus_Mons}
        - name: rule
          flow_name: f
          schedules: [{rrule: "FREQ=SOMETIMES"}, {interval: 10}]
        - name: typo
          flow_name: f
          paramters: {}
          schedule: {cron: "* * * * *", tz: UTC}
        - name: nowhere
          flow_location: missing.py
        - name: nothing
        - name: nightly
          flow_name: f
        - name: a/b
          flow_name: f
          tags: nightly
          labels: [""]
          is_schedule_active: "yes"
          parameters: [1]
        - name: both
          flow_name: f
          schedule: {interval: 60}
          schedules: []
        - name: two-kinds
          flow_name: f
          schedule: {interval: 60, cron: "* * * * *"}
    """)
    found = problems(path)
    expected = [
        f"{path}: deployment #1: name: missing",
        f"{path}: deployment 'nightly' (#2): schedule.cron: invalid cron '61 * * * *'",
        f"{path}: deployment 'zoned' (#3): schedule.timezone: unknown timezone 'Mars/Olympus_Mons'",
        f"{path}: deployment 'rule' (#4): schedules[0].rrule: invalid rrule 'FREQ=SOMETIMES'",
        f"{path}: deployment 'rule' (#4): schedules[1].interval: must be at least 60 seconds, got 10",
        f"{path}: deployment 'typo' (#5): paramters: unknown field",
        f"{path}: deployment 'typo' (#5): schedule.tz: unknown field for a cron schedule",
        f"{path}: deployment 'nowhere' (#6): flow_location: no such file: {(folder / 'missing.py').resolve()}",
        f"{path}: deployment 'nothing' (#7): flow_location: missing",
        f"{path}: deployment 'a/b' (#9): name: must not contain '/'",
        f"{path}: deployment 'a/b' (#9): parameters: must be a mapping of names to values, got list [1]",
        f"{path}: deployment 'a/b' (#9): tags: must be a list of non-empty strings, got str 'nightly'",
        f"{path}: deployment 'a/b' (#9): labels: must be a list of non-empty strings",
        f"{path}: deployment 'a/b' (#9): is_schedule_active: must be true or false, got str 'yes'",
        f"{path}: deployment 'both' (#10): schedules: give either schedule or schedules, not both",
        f"{path}: deployment 'two-kinds' (#11): schedule: must have exactly one of interval, cron or rrule",
        f"{path}: deployment 'nightly' (#8): name: duplicate name, also used by #2 for the same flow",
    ]
    assert len(found) == len(expected), "\n".join(found)
    for line, start in zip(found, expected):
        assert line.startswith(start), f"{line!r} does not start with {start!r}"


def test_same_name_for_different_flows_is_fine(folder: Path):
    path = write(folder, "spec.yaml", """
        - {name: nightly, flow_name: f}
        - {name: nightly, flow_name: g}
        - {name: nightly, flow_name: f, project: other}
    """)
    assert len(load_spec_file(path).deployments) == 3


def test_python_spec_failures_name_the_line(folder: Path):
    broken = write(folder, "broken.py", """
        from headwater.client.deployments import DeploymentSpec
        DeploymentSpec(name="a", flow_name="f")
        raise RuntimeError("no such thing")
    """)
    assert problems(broken) == [f"{broken}: line 4: RuntimeError: no such thing"]
    syntax = write(folder, "syntax.py", "DeploymentSpec(name=\n")
    (message,) = problems(syntax)
    assert message.startswith(f"{syntax}: line 1: syntax error")
    unknown = write(folder, "unknown.py", """
        from headwater.client.deployments import DeploymentSpec
        DeploymentSpec(name="a", flow_name="f", schedual=None)
    """)
    (message,) = problems(unknown)
    assert message.startswith(f"{unknown}: line 3: TypeError:") and "schedual" in message
    bad_schedule = write(folder, "bad_schedule.py", """
        from headwater.client.deployments import CronSchedule, DeploymentSpec
        DeploymentSpec(name="a", flow_name="f", schedule=CronSchedule("61 * * * *", timezone="Nowhere/Land"))
    """)
    assert problems(bad_schedule) == [
        f"{bad_schedule}: deployment 'a' (#1): schedule.timezone: unknown timezone 'Nowhere/Land'",
        f"{bad_schedule}: deployment 'a' (#1): schedule.cron: invalid cron '61 * * * *'",
    ]


def test_file_level_problems(folder: Path):
    assert problems(folder / "spec.toml") == [f"{folder / 'spec.toml'}: a deployment spec file ends in .py, .yaml or .yml"]
    assert problems(folder / "absent.yaml") == [f"{folder / 'absent.yaml'}: no such file"]
    empty = write(folder, "empty.yaml", "# nothing yet\n")
    assert problems(empty) == [f"{empty}: the file defines no deployments"]
    scalar = write(folder, "scalar.yaml", "just text\n")
    assert problems(scalar) == [f"{scalar}: expected a list of deployments (or a mapping with a 'deployments' list)"]
    nothing = write(folder, "nothing.py", "x = 1\n")
    assert problems(nothing) == [f"{nothing}: the file defines no deployments"]
