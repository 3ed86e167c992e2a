"""The folders `server/`, `services/` and `client/` install as `headwater.server`,
`headwater.services` and `headwater.client`, so they never shadow or clash with a user's own
modules. These tests keep every import and the package list in pyproject.toml that way."""
import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("server", "services", "client")


def python_files():
    for folder in (*FOLDERS, "tests", "bench"):
        yield from (ROOT / folder).rglob("*.py")


def test_no_module_imports_the_bare_folder_names():
    offenders = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                          for name in names if name.split(".")[0] in FOLDERS]
    assert offenders == []


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        "headwater." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in FOLDERS for init in (ROOT / folder).rglob("__init__.py")
    }
    assert set(config["packages"]) == found
    assert config["package-dir"] == {f"headwater.{folder}": folder for folder in FOLDERS}


def test_the_installed_names_resolve_to_this_checkout():
    import headwater.client
    import headwater.server.app
    import headwater.services.runner

    assert Path(headwater.server.app.__file__).resolve() == ROOT / "server" / "app.py"
    assert Path(headwater.services.runner.__file__).resolve() == ROOT / "services" / "runner.py"
    assert hasattr(headwater.client, "Client")
    assert not {"server", "services", "client"} & set(sys.modules)


@pytest.mark.slow
def test_the_wheel_holds_only_the_headwater_namespace(tmp_path):
    """Built the way pip builds it for users (isolated), so package data is checked too."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("headwater-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {entry for entry in top if not entry.endswith(".dist-info")} == {"headwater"}
    for required in (
        "headwater/server/app.py",
        "headwater/server/ui/templates/base.html",
        "headwater/server/ui/static/app.js",
        "headwater/server/db/migrations/alembic.ini",
        "headwater/server/db/migrations/env.py",
        "headwater/server/db/migrations/script.py.mako",
        "headwater/server/db/migrations/versions/0001_initial_schema.py",
        "headwater/services/scheduler.py",
        "headwater/client/client.py",
    ):
        assert required in names, required
    entry_points = zipfile.ZipFile(wheel).read(
        next(name for name in names if name.endswith("entry_points.txt"))).decode()
    assert "headwater = headwater.server.cli:main" in entry_points
