"""The README's "Use it with Prefect 1.x" walk-through, run as written: its flow file and every
`prefect` command of its terminals, against a live headwater, with the real prefect==1.4.1.

Lines that set up the shell (venv, pip, `source`) and `headwater start` (the live server stands
in for it) are the only ones skipped, so a command that stops working in the README fails here."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.prefect_cli import Prefect

pytestmark = [pytest.mark.slow, pytest.mark.prefect]

README = Path(__file__).resolve().parents[2] / "README.md"
SETUP = ("python3 -m venv", "source ", "headwater start", ".venv/bin/pip")


def walkthrough_blocks() -> list[tuple[str, str]]:
    """(language, text) of each fenced block in the section, in order."""
    text = README.read_text()
    section = text[text.index("## Use it with Prefect 1.x"):]
    section = section[: section.index("\n## ", 3)]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


def prefect_commands(block: str) -> list[list[str]]:
    commands = []
    for line in block.splitlines():
        for part in line.split("#")[0].split("&&"):
            part = part.strip()
            if part and not part.startswith(SETUP):
                assert part.startswith("prefect "), f"unexpected command in the walk-through: {part}"
                commands.append(shlex.split(part)[1:])
    return commands


def test_the_readme_walkthrough_runs_as_written(live_server, tmp_path):
    blocks = walkthrough_blocks()
    flow_files = [body for language, body in blocks if language == "python" and body.startswith("# my_flow.py")]
    assert len(flow_files) == 1, "the walk-through shows its flow file once"
    prefect = Prefect(live_server.url, tmp_path / "home")
    # The walk-through relies on `prefect backend server`, not on a variable.
    del prefect.env["PREFECT__BACKEND"]
    prefect.env.pop("PREFECT__CLOUD__API")
    prefect.env["PREFECT__SERVER__ENDPOINT"] = live_server.url
    prefect.write("my_flow.py", flow_files[0])

    commands = [command for language, body in blocks if language == "bash" for command in prefect_commands(body)]
    assert commands[0] == ["backend", "server"] and commands[-1][:1] == ["run"]
    agent = None
    try:
        for command in commands:
            if command[:3] == ["agent", "local", "start"]:
                agent = prefect.agent(*command[3:], log=tmp_path / "agent.log")
                continue
            result = prefect.cli(*command, timeout=180)
        assert agent is not None, "the walk-through starts an agent"
        assert "Hello, world!" in result.stdout and "Flow run succeeded!" in result.stdout, result.stdout
    finally:
        if agent is not None:
            agent.terminate()
            try:
                agent.wait(timeout=20)
            except subprocess.TimeoutExpired:
                agent.kill()
