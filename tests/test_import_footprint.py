"""What loading the server costs before it does anything: libraries only some requests need are
imported when first needed, so an idle server stays small (the benchmark's idle-RSS row)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.pure

LAZY = ("httpx",)  # cloud-hook deliveries only; httpx also pulls in rich and pygments


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
