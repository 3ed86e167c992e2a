"""Run `headwater start` as a real subprocess on a free port, for end-to-end tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`headwater start` in a subprocess; use as a context manager."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, log_path: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["start", "--port", str(self.port), *args]
        # No second (web UI) port unless a test asks for one: parallel servers would race for 8080.
        self.env = {**os.environ, "HEADWATER_UI_PORT": "0", **(env or {})}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "ServerProcess":
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "headwater.server.cli", *self.args], env=self.env, stdout=log, stderr=log
        )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"headwater exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"headwater did not become ready on {self.url}")

    def query(self, query: str, variables: Any = None) -> dict:
        body = json.dumps({"query": query, "variables": json.dumps(variables)}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(2)  # SIGINT, like Ctrl-C
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.stop()
