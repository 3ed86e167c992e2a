"""The HTTP boundary against a real `headwater start` process (issue 10, items 3, 4 and 9).

What only a real server shows: a client that sends a too-large body before reading (as the
Prefect client does with requests) gets the PAYLOAD_TOO_LARGE answer instead of a connection
reset; deeply nested JSON leaves the process up with no traceback in its log; and the
cross-site refusals hold on a real socket.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
import urllib.request
from typing import Iterator

import pytest
import requests

from tests import factories as f
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def server(engine, database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("boundary") / "headwater.log"
    env = {"HEADWATER_DATABASE_URL": database_url, "HEADWATER_LOG_LEVEL": "INFO",
           "HEADWATER_MAX_REQUEST_BYTES": str(LIMIT)}
    with ServerProcess("--no-services", "--no-migrate", env=env, log_path=log) as process:
        yield process


def post(server: ServerProcess, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """(status, JSON answer) for one raw POST to /."""
    address = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    try:
        connection.request("POST", "/", body, {"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def assert_alive_and_clean(server: ServerProcess) -> None:
    assert server.process is not None and server.process.poll() is None, "the server process died"
    assert server.query("{ hello }") == {"data": {"hello": "👋"}}
    log = server.log_path.read_text(errors="replace") if server.log_path else ""
    assert "Traceback" not in log and "RecursionError" not in log, log[-3000:]


def send_then_read(server: ServerProcess, headers: bytes, chunks) -> bytes:
    """A raw HTTP/1.1 POST: the whole body is sent before a byte of the answer is read."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=120) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + headers + b"\r\n")
        for chunk in chunks:
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while data := sock.recv(65536):
            answer += data
        return answer


BIG = 20 * 1024 * 1024


@pytest.mark.parametrize("framing", ["content-length, connection: close", "chunked, connection: close", "content-length"])
def test_a_body_over_the_limit_is_answered_not_reset(server, framing):
    """Before the fix, a client asking `Connection: close` got a reset: the server closed the
    socket with the rest of the body unread (urllib, for one, always asks that)."""
    close = b"Connection: close\r\n" if "close" in framing else b""
    if framing.startswith("chunked"):
        chunks = [*(b"10000\r\n" + b"x" * 65536 + b"\r\n" for _ in range(BIG // 65536)), b"0\r\n\r\n"]
        answer = send_then_read(server, close + b"Transfer-Encoding: chunked\r\n", chunks)
    else:
        chunks = (b"x" * 65536 for _ in range(BIG // 65536))
        answer = send_then_read(server, close + b"Content-Length: %d\r\n" % BIG, chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:300]
    error = json.loads(body)["errors"][0]
    assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE" and str(LIMIT) in error["message"]
    assert_alive_and_clean(server)


def test_clients_that_send_before_reading_get_the_too_large_answer(server):
    pad = json.dumps({"pad": "x" * BIG})
    # urllib (Connection: close), as tests/server_process.py and many scripts use it.
    request = urllib.request.Request(server.url, json.dumps({"query": "{ hello }", "variables": pad}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        assert json.loads(response.read())["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    # The Prefect client: requests with json=; the connection stays usable afterwards.
    with requests.Session() as session:
        response = session.post(server.url, json={"query": "{ hello }", "variables": pad}, timeout=120)
        assert response.status_code == 200
        assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        assert session.post(server.url, json={"query": "{ hello }"}, timeout=30).json() == {"data": {"hello": "👋"}}
    assert_alive_and_clean(server)


def nested(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


def test_deeply_nested_json_leaves_the_process_up_without_a_traceback(server, tenant_id):
    project = server.query("mutation($i: create_project_input!) { create_project(input: $i) { id } }",
                           {"i": {"tenant_id": tenant_id, "name": "deep"}})["data"]["create_project"]["id"]
    flow_id = server.query("mutation($i: create_flow_input!) { create_flow(input: $i) { id } }",
                           {"i": {"project_id": project, "serialized_flow": f.flow("deep")}})["data"]["create_flow"]["id"]
    run_id = server.query("mutation($i: create_flow_run_input!) { create_flow_run(input: $i) { id } }",
                          {"i": {"flow_id": flow_id}})["data"]["create_flow_run"]["id"]
    bodies = {
        "variables": json.dumps({"query": "{ hello }", "variables": nested(100_000)}),
        "variables object": '{"query": "{ hello }", "variables": {"x": %s}}' % nested(100_000),
        "parameters": json.dumps({
            "query": "mutation($i: create_flow_run_input!) { create_flow_run(input: $i) { id } }",
            "variables": '{"i": {"flow_id": "%s", "parameters": {"p": %s}}}' % (flow_id, nested(5_000)),
        }),
        "state": json.dumps({
            "query": "mutation($i: set_flow_run_states_input!) { set_flow_run_states(input: $i) { states { id } } }",
            "variables": '{"i": {"states": [{"flow_run_id": "%s", "state": {"type": "Running", "x": %s}}]}}'
            % (run_id, nested(5_000)),
        }),
    }
    for name, body in bodies.items():
        status, answer = post(server, body.encode())
        assert status == 200, name
        message = answer["errors"][0]["message"]
        assert "levels deep; the limit is 64" in message, (name, message)
    assert_alive_and_clean(server)


def test_cross_site_requests_are_refused_by_a_real_server(server, tenant_id):
    mutation = json.dumps({"query": 'mutation { create_project(input: { tenant_id: "%s", name: "csrf" }) { id } }'
                           % tenant_id}).encode()
    status, answer = post(server, mutation, {"Content-Type": "text/plain"})
    assert status == 415 and answer["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    status, answer = post(server, mutation, {"Origin": "https://evil.example"})
    assert status == 403 and answer["errors"][0]["extensions"]["code"] == "ORIGIN_NOT_ALLOWED"
    status, answer = post(server, mutation, {"Host": f"evil.example:{server.port}",
                                             "Origin": f"http://evil.example:{server.port}"})
    assert status == 400 and answer["errors"][0]["extensions"]["code"] == "HOST_NOT_ALLOWED"
    assert server.query("{ project { name } }")["data"]["project"] == []
    # The clients that send no Origin keep working: this package's client (httpx) and requests.
    from headwater.client.client import Client

    with Client(server.url) as hw:
        assert hw.create_project("fine")
    assert requests.post(server.url.replace("127.0.0.1", "localhost"), json={"query": "{ hello }"},
                         timeout=30).json() == {"data": {"hello": "👋"}}
    assert_alive_and_clean(server)
