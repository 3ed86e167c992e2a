"""Read a deployment spec file (.py or .yaml/.yml) and check it, without touching any server.

`load_spec_file(path)` returns a `SpecFile` of `Deployment`s, each normalised (schedules as the
server's JSON, flow script paths absolute), or raises `DeploymentSpecError` listing every
problem found, one line each, naming the file, the deployment and the field:

    spec.yaml: deployment 'nightly' (#2): schedule.cron: invalid cron '61 * * * *'

Checking everything before anything is written is what makes applying a file all or nothing
(see deployment_apply.py for the checks that need the flow or the server).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import runpy
import sys
import traceback
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from headwater.client import deployments as spec_api
from headwater.client.errors import BadRequest

DEFAULT_PROJECT = "default"
DEPLOYMENT_KEYS = (
    "name", "flow_location", "flow_name", "project", "parameters", "tags", "labels", "description",
    "schedule", "schedules", "is_schedule_active",
)
SCHEDULE_KEYS = {
    "interval": ("interval", "anchor_date", "timezone"),
    "cron": ("cron", "timezone", "day_or"),
    "rrule": ("rrule", "timezone"),
}
MAX_NAME_LENGTH = 1000
# The server's bound (as Prefect Core's for flow schedules); checked here too, so the message
# names the file and the deployment before anything is registered.
MIN_INTERVAL_SECONDS = 60


class DeploymentSpecError(BadRequest):
    """A spec file cannot be applied; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Deployment:
    """One deployment as the file describes it, checked and normalised."""

    index: int  # 1-based position in the file, for messages
    name: str
    project: str
    flow_location: Path | None = None
    flow_name: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    labels: list[str] | None = None
    description: str | None = None
    schedules: list[dict[str, Any]] | None = None
    is_schedule_active: bool | None = None

    @property
    def where(self) -> str:
        return f"deployment {self.name!r} (#{self.index})"


@dataclass
class SpecFile:
    path: Path  # as the user gave it (messages show it so)
    kind: str  # "python script" or "yaml file"
    deployments: list[Deployment]

    def problem(self, deployment: Deployment | None, field_name: str | None, message: str) -> str:
        parts = [str(self.path)]
        if deployment is not None:
            parts.append(deployment.where)
        if field_name:
            parts.append(field_name)
        return ": ".join(parts + [message])


def spec_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".py":
        return "python script"
    if suffix in (".yaml", ".yml"):
        return "yaml file"
    raise DeploymentSpecError([f"{path}: a deployment spec file ends in .py, .yaml or .yml"])


def load_spec_file(path: str | Path) -> SpecFile:
    """Read and check every deployment in the file; raise DeploymentSpecError listing all problems."""
    path = Path(path)
    kind = spec_kind(path)
    if not path.is_file():
        raise DeploymentSpecError([f"{path}: no such file"])
    raw = _run_python_spec(path) if kind == "python script" else _read_yaml_spec(path)
    if not raw:
        raise DeploymentSpecError([f"{path}: the file defines no deployments"])
    problems: list[str] = []
    deployments = [_check_deployment(path, index, values, problems) for index, values in enumerate(raw, start=1)]
    problems.extend(duplicate_problems(path, deployments))
    if problems:
        raise DeploymentSpecError(problems)
    return SpecFile(path, kind, deployments)


def duplicate_problems(path: Path, deployments: Iterable[Deployment], flow_of=None) -> list[str]:
    """Two deployments of one flow with the same name; `flow_of` gives a deployment's flow key
    (by default what the spec says: its script and flow_name, or its project and flow_name)."""
    flow_of = flow_of or (lambda d: (str(d.flow_location), d.flow_name) if d.flow_location else (d.project, d.flow_name))
    seen: dict[tuple, Deployment] = {}
    problems = []
    for deployment in deployments:
        key = (flow_of(deployment), deployment.name)
        if key in seen:
            problems.append(f"{path}: {deployment.where}: name: duplicate name, also used by #{seen[key].index} for the same flow")
        else:
            seen[key] = deployment
    return problems


# --- reading the two formats ------------------------------------------------------------------


def _run_python_spec(path: Path) -> list[dict[str, Any]]:
    """Run the script and collect every DeploymentSpec it creates. Its folder is on sys.path
    while it runs (so it can import its neighbours), and sys.path is restored afterwards."""
    collected: list[spec_api.DeploymentSpec] = []
    spec_api._collectors.append(collected)
    saved_path = list(sys.path)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        runpy.run_path(str(path), run_name="__deployment_spec__")
    except SyntaxError as exc:
        raise DeploymentSpecError([f"{path}: line {exc.lineno}: syntax error: {exc.msg}"]) from None
    except SystemExit as exc:
        raise DeploymentSpecError([f"{path}: the script exited ({exc.code})"]) from None
    except Exception as exc:  # noqa: BLE001 - any failure of the user's script is reported, not raised
        raise DeploymentSpecError([f"{path}: {_where_in(path, exc)}{type(exc).__name__}: {exc}"]) from None
    finally:
        sys.path[:] = saved_path
        spec_api._collectors.remove(collected)
    return [{key: getattr(spec, key) for key in DEPLOYMENT_KEYS if _given(spec, key)} for spec in collected]


def _given(spec: spec_api.DeploymentSpec, key: str) -> bool:
    """Fields left at their default are treated like keys absent from a YAML mapping."""
    value = getattr(spec, key)
    return value is not None and not (key in ("parameters", "tags") and value in ({}, []))


def _where_in(path: Path, exc: BaseException) -> str:
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if Path(frame.filename) == path]
    return f"line {frames[-1].lineno}: " if frames else ""


def _read_yaml_spec(path: Path) -> list[dict[str, Any]]:
    import yaml

    try:
        document = yaml.load(path.read_text(), Loader=_unique_key_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise DeploymentSpecError([f"{path}: {line}invalid YAML: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise DeploymentSpecError([f"{path}: invalid YAML: {exc}"]) from None
    if isinstance(document, dict) and set(document) == {"deployments"}:
        document = document["deployments"]
    if document is None:
        return []
    if not isinstance(document, list):
        raise DeploymentSpecError([f"{path}: expected a list of deployments (or a mapping with a 'deployments' list)"])
    return document


def _unique_key_loader():
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

        def construct_mapping(self, node, deep=False):
            keys = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in keys:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice", key_node.start_mark)
                keys.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader




# --- checking one deployment --------------------------------------------------------------------


def _check_deployment(path: Path, index: int, values: Any, problems: list[str]) -> Deployment:
    name = values.get("name") if isinstance(values, dict) else None
    deployment = Deployment(index=index, name=name if isinstance(name, str) else "", project=DEFAULT_PROJECT)

    def where() -> str:
        return deployment.where if deployment.name else f"deployment #{index}"

    def problem(field_name: str, message: str) -> None:
        problems.append(f"{path}: {where()}: {field_name}: {message}")

    if not isinstance(values, dict):
        problems.append(f"{path}: deployment #{index}: expected a mapping of fields, got {_describe(values)}")
        return deployment
    for key in values:
        if key not in DEPLOYMENT_KEYS:
            problem(str(key), f"unknown field (known: {', '.join(DEPLOYMENT_KEYS)})")

    if name is None or name == "":
        problem("name", "missing")
    elif not isinstance(name, str) or not name.strip():
        problem("name", f"must be a non-empty string, got {_describe(name)}")
    elif "/" in name:
        problem("name", "must not contain '/' (it separates flow and deployment in FLOW/DEPLOYMENT)")
    elif len(name) > MAX_NAME_LENGTH:
        problem("name", f"must have at most {MAX_NAME_LENGTH} characters")
    else:
        deployment.name = name.strip()

    for key in ("flow_name", "project", "description"):
        value = values.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            problem(key, f"must be a non-empty string, got {_describe(value)}")
        elif value is not None:
            setattr(deployment, key, value.strip() if key != "description" else value)

    location = values.get("flow_location")
    if location is not None:
        if not isinstance(location, (str, Path)) or not str(location).strip():
            problem("flow_location", f"must be a path, got {_describe(location)}")
        else:
            resolved = (path.resolve().parent / Path(str(location)).expanduser()).resolve()
            if not resolved.is_file():
                problem("flow_location", f"no such file: {resolved}")
            else:
                deployment.flow_location = resolved
    elif "flow_location" not in values and values.get("flow_name") is None:
        problem("flow_location", "missing: give flow_location (a flow script) or flow_name (a registered flow)")

    parameters = values.get("parameters", {})
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters):
        problem("parameters", f"must be a mapping of names to values, got {_describe(parameters)}")
    else:
        try:
            json.dumps(parameters)
        except (TypeError, ValueError) as exc:
            problem("parameters", f"must be JSON values: {exc}")
        else:
            deployment.parameters = dict(parameters)

    for key in ("tags", "labels"):
        value = values.get(key)
        if value is None:
            continue
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item for item in value):
            problem(key, f"must be a list of non-empty strings, got {_describe(value)}")
        else:
            setattr(deployment, key, list(value))

    active = values.get("is_schedule_active")
    if active is not None and not isinstance(active, bool):
        problem("is_schedule_active", f"must be true or false, got {_describe(active)}")
    else:
        deployment.is_schedule_active = active

    if values.get("schedule") is not None and values.get("schedules") is not None:
        problem("schedules", "give either schedule or schedules, not both")
    elif values.get("schedule") is not None:
        deployment.schedules = _check_schedules([values["schedule"]], ["schedule"], problem)
    elif values.get("schedules") is not None:
        given = values["schedules"]
        if not isinstance(given, (list, tuple)):
            problem("schedules", f"must be a list of schedules, got {_describe(given)}")
        else:
            deployment.schedules = _check_schedules(list(given), [f"schedules[{i}]" for i in range(len(given))], problem)
    return deployment


def _check_schedules(values: list[Any], names: list[str], problem) -> list[dict[str, Any]]:
    checked = []
    for value, name in zip(values, names):
        schedule = schedule_json(value, name, problem)
        if schedule is not None:
            checked.append(schedule)
    return checked


def schedule_json(value: Any, name: str, problem) -> dict[str, Any] | None:
    """The server's JSON for one schedule (a schedule object or a mapping); problems go to
    `problem(field, message)` and None is returned."""
    if isinstance(value, spec_api.SCHEDULE_CLASSES):
        value = {key: item for key, item in vars(value).items() if item is not None}
    if not isinstance(value, dict):
        problem(name, f"must be an interval, cron or rrule schedule, got {_describe(value)}")
        return None
    kinds = [kind for kind in SCHEDULE_KEYS if kind in value]
    if len(kinds) != 1:
        problem(name, "must have exactly one of interval, cron or rrule")
        return None
    kind = kinds[0]
    ok = True
    for key in value:
        if key not in SCHEDULE_KEYS[kind]:
            problem(f"{name}.{key}", f"unknown field for a {kind} schedule (known: {', '.join(SCHEDULE_KEYS[kind])})")
            ok = False
    result: dict[str, Any] = {}
    timezone = value.get("timezone")
    if timezone is not None:
        if not isinstance(timezone, str) or not _is_timezone(timezone):
            problem(f"{name}.timezone", f"unknown timezone {timezone!r}")
            ok = False
        else:
            result["timezone"] = timezone

    if kind == "interval":
        seconds = interval_seconds(value["interval"])
        if seconds is None:
            problem(f"{name}.interval", f"invalid interval {value['interval']!r} (seconds, a duration like '1h30m', or ISO 8601 like 'PT1H')")
            ok = False
        elif seconds < MIN_INTERVAL_SECONDS:
            problem(f"{name}.interval", f"must be at least {MIN_INTERVAL_SECONDS} seconds, got {value['interval']!r}")
            ok = False
        else:
            result["interval"] = int(seconds) if float(seconds).is_integer() else seconds
        anchor = value.get("anchor_date")
        if anchor is not None:
            anchor_text = _iso_datetime(anchor)
            if anchor_text is None:
                problem(f"{name}.anchor_date", f"invalid date-time {anchor!r} (ISO 8601, e.g. 2024-01-01T09:00:00)")
                ok = False
            else:
                result["anchor_date"] = anchor_text
    elif kind == "cron":
        cron = value["cron"]
        if not isinstance(cron, str) or not _is_cron(cron):
            problem(f"{name}.cron", f"invalid cron {cron!r}")
            ok = False
        else:
            result["cron"] = cron.strip()
        day_or = value.get("day_or")
        if day_or is not None and not isinstance(day_or, bool):
            problem(f"{name}.day_or", f"must be true or false, got {_describe(day_or)}")
            ok = False
        elif day_or is not None:
            result["day_or"] = day_or
    else:
        rrule = value["rrule"]
        if not isinstance(rrule, str) or not _is_rrule(rrule):
            problem(f"{name}.rrule", f"invalid rrule {rrule!r}")
            ok = False
        else:
            result["rrule"] = rrule.strip()
    if not ok:
        return None
    # Keys in a fixed order: the kind first, as users write it.
    return {key: result[key] for key in (kind, *SCHEDULE_KEYS[kind][1:]) if key in result}


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")
_ISO_DURATION = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def interval_seconds(value: Any) -> float | None:
    """Seconds from a number, a timedelta, '1h30m'-style text (d, h, m, s) or ISO 8601 ('PT1H', 'P1D')."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    iso = _ISO_DURATION.match(text.upper())
    if iso and text.upper() not in ("P", "PT") and not text.upper().endswith("T"):
        weeks, days, hours, minutes, seconds = (float(part or 0) for part in iso.groups())
        return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds
    short = _DURATION.match(text.lower())
    if short and any(short.groups()):
        days, hours, minutes, seconds = (float(part or 0) for part in short.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    try:
        return float(text)
    except ValueError:
        return None


def _iso_datetime(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time()).isoformat()
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")).isoformat()
        except ValueError:
            return None
    return None


def _is_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _is_cron(expression: str) -> bool:
    from croniter import croniter

    try:
        return len(expression.split()) in (5, 6) and croniter.is_valid(expression)
    except Exception:  # noqa: BLE001 - croniter raises assorted errors for bad input
        return False


def _is_rrule(text: str) -> bool:
    from dateutil import rrule

    try:
        rrule.rrulestr(text.strip(), dtstart=dt.datetime(2024, 1, 1))
    except (ValueError, TypeError, KeyError, IndexError):
        return False
    return True


def _describe(value: Any) -> str:
    shown = repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 60 else shown[:57] + '...'}"
