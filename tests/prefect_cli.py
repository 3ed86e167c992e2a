"""Drive the real prefect==1.4.1 package (CLI, Client, agent) in subprocesses pointed at a
live headwater server, each with its own HOME so nothing leaks between tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


class Prefect:
    def __init__(self, api_url: str, home: Path):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "HOME": str(home),
            "PREFECT__BACKEND": "server",
            "PREFECT__CLOUD__API": api_url,
            "PREFECT__CLOUD__HEARTBEAT_INTERVAL": "2",
            "PREFECT__CLOUD__CHECK_CANCELLATION_INTERVAL": "2",
            "PREFECT__LOGGING__LEVEL": "INFO",
            "PYTHONWARNINGS": "ignore",
        }

    def cli(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        """`prefect ARGS...`; returns the completed process (stdout and stderr as text)."""
        result = subprocess.run(
            [sys.executable, "-m", "prefect", *args], env=self.env, cwd=self.home,
            capture_output=True, text=True, timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def python(self, code: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        """Run a Python snippet with prefect configured for this server."""
        script = self.home / "snippet.py"
        script.write_text(textwrap.dedent(code))
        result = subprocess.run(
            [sys.executable, str(script)], env=self.env, cwd=self.home, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"snippet failed:\n{result.stdout}\n{result.stderr}")
        return result

    def write(self, name: str, code: str) -> Path:
        path = self.home / name
        path.write_text(textwrap.dedent(code))
        return path

    def agent(self, *args: str, log: Path) -> subprocess.Popen:
        """`prefect agent local start` in the background; the caller stops it."""
        handle = open(log, "wb")
        return subprocess.Popen(
            [sys.executable, "-m", "prefect", "agent", "local", "start", *args],
            env=self.env, cwd=self.home, stdout=handle, stderr=subprocess.STDOUT,
        )
