"""`headwater start --ui-dir` refuses a folder that is no built UI at once, before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.pure, pytest.mark.slow]  # runs `headwater start`, which exits at once


@pytest.mark.parametrize("make, reason", [(lambda p: p / "missing", "not a folder"), (lambda p: p, "has no index.html")])
def test_start_refuses_a_ui_dir_without_index_html(tmp_path, make, reason):
    env = {**os.environ, "HEADWATER_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-m", "headwater.server.cli", "start", "--ui-dir", str(make(tmp_path))],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and reason in result.stderr, result.stderr
    assert not (tmp_path / "data").exists(), "refused before the embedded Postgres was touched"
