"""Drive one HTTP load with `wrk` (a C load generator, so the client does not steal the server's
CPU the way a Python client does) and read its figures back as JSON.

Requests cycle over a pre-generated list of bodies, starting at an offset so that consecutive
rounds do not resend a body a previous round used (a state change must be sent once). Latency
percentiles come from wrk's `done` callback (`latency:percentile`), in microseconds; responses
that carry GraphQL `errors` are counted by a `response` callback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-PREFECT-CORE-VERSION"] = "1.4.1"
local bodies = dofile(%(bodies)s)
local i = %(offset)d
graphql_errors = 0
first_error = ""
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[((i - 1) %% #bodies) + 1])
end
response = function(status, headers, body)
  if string.find(body, '"errors"', 1, true) then
    graphql_errors = graphql_errors + 1
    if graphql_errors == 1 then first_error = string.sub(string.gsub(body, "%%s", " "), 1, 300) end
  end
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local errors, sample = 0, ""
  for _, thread in ipairs(threads) do
    errors = errors + (thread:get("graphql_errors") or 0)
    sample = sample .. (thread:get("first_error") or "")
  end
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d, '
    .. '"socket_errors": %%d, "non_2xx": %%d, "graphql_errors": %%d, "bodies": %%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, errors, #bodies))
  io.write("WRK_ERROR " .. sample .. "\n")
end
"""


@dataclass
class Load:
    """One wrk run: throughput and latency, plus everything that went wrong."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    first_error: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def lua_list(bodies: list[str]) -> str:
    return "return {" + ",\n".join("[==[" + body + "]==]" for body in bodies) + "}"


class BodyFile:
    """Bodies written once as a Lua file, reused by every round that sends them."""

    def __init__(self, bodies: list[str], workdir: Path):
        if not bodies:
            raise ValueError("no bodies")
        for body in bodies:
            if "]==]" in body:
                raise ValueError("a body holds the Lua long-string terminator")
        handle = tempfile.NamedTemporaryFile("w", suffix=".lua", dir=workdir, delete=False)
        with handle:
            handle.write(lua_list(bodies))
        self.path = Path(handle.name)
        self.count = len(bodies)


def available() -> bool:
    return shutil.which("wrk") is not None


def run(url: str, bodies: BodyFile, *, seconds: int, connections: int, offset: int = 0,
        workdir: Path) -> Load:
    """wrk against `url` (127.0.0.1 only) for `seconds` with `connections` connections, one thread."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"the benchmark targets 127.0.0.1 only, not {url}")
    script = workdir / "load.lua"
    script.write_text(SCRIPT % {"bodies": json.dumps(str(bodies.path)), "offset": offset})
    completed = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url + "/"],
        capture_output=True, text=True, timeout=seconds + 60, check=False,
    )
    line = next((line for line in completed.stdout.splitlines() if line.startswith("WRK_JSON ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stdout}{completed.stderr}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    return Load(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["socket_errors"] + data["non_2xx"] + data["graphql_errors"],
        first_error=next((l[10:] for l in completed.stdout.splitlines() if l.startswith("WRK_ERROR ")), ""),
    )
