"""`headwater start` also serves the app on the UI port (8080 by default, where the Prefect
client's links point); 0 turns it off, and a busy one is a warning, not a failed start."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from tests.server_process import ServerProcess, free_port

pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept": "text/html"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_ui_port_serves_the_same_app(database_url, tmp_path):
    ui_port = free_port()
    env = {"HEADWATER_DATABASE_URL": database_url, "HEADWATER_UI_PORT": str(ui_port)}
    log = tmp_path / "server.log"
    with ServerProcess("--no-services", "--no-migrate", env=env, log_path=log) as server:
        assert get(f"http://127.0.0.1:{ui_port}/default/flows")[0] == 200
        assert get(f"http://localhost:{ui_port}/")[1].count("<h1>Dashboard") == 1, "Host localhost:<ui port> is accepted"
        assert get(f"{server.url}/default/flows")[0] == 200, "the UI is on the API port too"
    assert f"(web UI: http://127.0.0.1:{ui_port}/)" in log.read_text()


def test_a_busy_ui_port_is_a_warning_and_zero_turns_it_off(database_url, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        env = {"HEADWATER_DATABASE_URL": database_url, "HEADWATER_UI_PORT": str(busy)}
        log = tmp_path / "busy.log"
        with ServerProcess("--no-services", "--no-migrate", env=env, log_path=log) as server:
            assert get(f"{server.url}/default/flows")[0] == 200
        text = log.read_text()
        assert f"web UI port not served on 127.0.0.1:{busy}" in text and f"(web UI: {server.url}/)" in text
    off = free_port()
    env = {"HEADWATER_DATABASE_URL": database_url, "HEADWATER_UI_PORT": str(off)}
    with ServerProcess("--no-services", "--no-migrate", "--ui-port", "0", env=env, log_path=tmp_path / "off.log") as server:
        assert get(f"{server.url}/default/flows")[0] == 200
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", off), timeout=2).close()
