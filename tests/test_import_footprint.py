"""What loading the server costs before it does anything: libraries only some requests need are
imported when first needed, so an idle server stays small (the benchmark's idle-RSS row)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.pure

# httpx: cloud-hook deliveries and the client commands only (it also pulls in rich and pygments);
# jinja2: the web UI's pages, built at the first one.
LAZY = ("httpx", "jinja2")


def test_building_the_app_imports_no_delivery_client():
    program = (
        "import json, sys\n"
        "from headwater.server.app import create_app\n"
        "from headwater.server.settings import Settings\n"
        "from headwater.services.runner import build_services\n"
        "create_app(Settings(database_url='postgresql://nobody@127.0.0.1:1/none', services_enabled=False))\n"
        f"print(json.dumps(sorted(m for m in {LAZY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def _imported(program: str) -> list[str]:
    program += f"\nimport json, sys\nprint(json.dumps(sorted(m for m in {LAZY!r} if m in sys.modules)))\n"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_command_line_parser_imports_no_client_library():
    """`headwater start` builds the whole parser, the client's commands included, in the server's process."""
    program = (
        "from headwater.server.cli import build_parser\n"
        "args = build_parser().parse_args(['start', '--no-services'])\n"
        "assert args.handler.__name__ == 'cmd_start'\n"
    )
    assert _imported(program) == []


def test_the_client_package_still_exports_the_client():
    program = (
        "import headwater.client as client\n"
        "from headwater.client import AsyncClient, Client, NotFound, compress\n"
        "assert Client.__module__ == 'headwater.client.client' and client.compress is compress\n"
        "assert set(client.__all__) <= set(dir(client)) | {'AsyncClient', 'Client', 'compress'}\n"
    )
    assert _imported(program) == ["httpx"]


def test_the_preload_leaves_the_collector_on_and_the_start_still_settles_the_heap():
    """`headwater start` imports the app with the collector off, then freezes what it built; the
    app's start still applies its gen-0 threshold (once per process) on top of that."""
    program = (
        "import gc, sys\n"
        "from headwater.server.cli import _preload_app\n"
        "_preload_app().join()\n"
        "assert gc.isenabled() and gc.get_freeze_count() > 0 and 'headwater.server.app' in sys.modules\n"
        "from headwater.server import app\n"
        "app.settle_heap()\n"
        "assert gc.get_threshold()[0] == app.GC_GEN0_THRESHOLD\n"
        "gc.set_threshold(700)\n"
        "app.settle_heap()\n"
        "assert gc.get_threshold()[0] == 700, 'once per process'\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
