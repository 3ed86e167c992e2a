"""Settings: every field parses from its variable, round-trips to worker processes, is described in
the README (generated, so it cannot drift), and `headwater config` shows them with secrets masked."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from headwater.server import settings_doc
from headwater.server.cli import settings_environment
from headwater.server.settings import (
    Settings,
    SettingsError,
    env_name,
    field_kind,
    field_kinds,
    mask,
    setting,
)

pytestmark = pytest.mark.pure

REPO = Path(__file__).resolve().parents[2]
FIELDS = [f.name for f in dataclasses.fields(Settings)]

# A valid variable for each kind, and the value it must parse to.
VALID = {
    bool: ("yes", True),
    int: ("42", 42),
    float: ("2.5", 2.5),
    str: ("some text", "some text"),
    Path: ("~/hw-elsewhere", Path.home() / "hw-elsewhere"),
}


def kind_of(name: str):
    return field_kinds(Settings)[name]


@pytest.mark.parametrize("name", FIELDS)
def test_every_setting_parses_its_variable_to_its_type(name):
    kind = kind_of(name)
    assert kind.base in VALID, f"{name}: no test value for {kind.base!r}; add one to VALID"
    raw, expected = VALID[kind.base]
    value = getattr(Settings.from_env({env_name(name): raw}), name)
    exact = type(value) is kind.base or (kind.base is Path and isinstance(value, Path))
    assert value == expected and exact, f"{env_name(name)}={raw!r} gave {value!r}"
    if kind.optional:
        assert getattr(Settings.from_env({env_name(name): ""}), name) is None, f"{env_name(name)}= must mean unset"
        assert getattr(Settings.from_env({env_name(name): "  "}), name) is None


@pytest.mark.parametrize("name", FIELDS)
def test_every_setting_refuses_a_bad_value_naming_its_variable(name):
    kind = kind_of(name)
    variable = env_name(name)
    bad = {
        bool: [("maybe", f"{variable} must be true or false, got 'maybe'")],
        int: [("abc", f"{variable} must be an integer, got 'abc'"), ("2.5", f"{variable} must be an integer, got '2.5'")],
        float: [("abc", f"{variable} must be a number, got 'abc'"), ("nan", f"{variable} must be a number, got 'nan'")],
        Path: [] if kind.optional else [("", f"{variable} must be a path, got ''")],
        str: [],  # any text is a string
    }[kind.base]
    if not kind.optional and kind.base in (bool, int, float):
        bad.append(("", bad[0][1].replace(f"got {bad[0][0]!r}", "got ''")))
    for raw, message in bad:
        with pytest.raises(SettingsError) as error:
            Settings.from_env({variable: raw})
        assert str(error.value) == message


@pytest.mark.parametrize("raw,expected", [
    ("1", True), ("true", True), ("TRUE", True), ("Yes", True), ("on", True), (" true ", True),
    ("0", False), ("false", False), ("False", False), ("no", False), ("OFF", False),
])
def test_bool_spellings(raw, expected):
    bools = [name for name in FIELDS if kind_of(name).base is bool]
    assert bools
    parsed = Settings.from_env({env_name(name): raw for name in bools})
    assert {getattr(parsed, name) for name in bools} == {expected}


def test_path_expands_the_home_folder():
    assert Settings.from_env({"HEADWATER_DATA_DIR": "~/x/y"}).data_dir == Path.home() / "x" / "y"
    assert Settings.from_env({"HEADWATER_DATA_DIR": "/srv/hw"}).data_dir == Path("/srv/hw")
    assert Settings.from_env({}).data_dir == Path.home() / ".headwater"


@dataclass(frozen=True)
class WithOptionalNumbers(Settings):
    """Optional numbers: the old loader compared annotation strings and returned these as str."""

    retries: int | None = setting(None, help="a test-only optional integer")
    ratio: float | None = setting(None, help="a test-only optional number")
    spool: Path | None = setting(None, help="a test-only optional path")
    enabled: bool | None = setting(None, help="a test-only optional switch")


def test_optional_settings_parse_to_their_type_and_empty_means_none():
    parsed = WithOptionalNumbers.from_env({
        "HEADWATER_RETRIES": "7", "HEADWATER_RATIO": "0.25", "HEADWATER_SPOOL": "~/spool", "HEADWATER_ENABLED": "no",
    })
    assert (parsed.retries, parsed.ratio, parsed.spool, parsed.enabled) == (7, 0.25, Path.home() / "spool", False)
    assert type(parsed.retries) is int and type(parsed.ratio) is float
    empty = WithOptionalNumbers.from_env({f"HEADWATER_{n}": "" for n in ("RETRIES", "RATIO", "SPOOL", "ENABLED")})
    assert (empty.retries, empty.ratio, empty.spool, empty.enabled) == (None, None, None, None)
    with pytest.raises(SettingsError, match=r"^HEADWATER_RETRIES must be an integer, got 'x'$"):
        WithOptionalNumbers.from_env({"HEADWATER_RETRIES": "x"})
    # and they reach worker processes intact
    full = dataclasses.replace(parsed, api_key="k")
    assert WithOptionalNumbers.from_env(full.environment()) == full
    assert WithOptionalNumbers.from_env(WithOptionalNumbers().environment()) == WithOptionalNumbers()


def test_unsupported_types_are_refused_naming_the_field():
    with pytest.raises(TypeError, match="setting tags: unsupported type"):
        field_kind("tags", list[str])
    with pytest.raises(TypeError, match="setting either: unsupported type"):
        field_kind("either", int | str)
    assert field_kind("n", int | None).optional and field_kind("n", int | None).base is int


def test_database_url_falls_back_to_the_conventional_variable():
    assert Settings.from_env({"DATABASE_URL": "postgresql://a/b"}).database_url == "postgresql://a/b"
    assert Settings.from_env({"DATABASE_URL": "postgresql://a/b", "HEADWATER_DATABASE_URL": ""}).database_url == (
        "postgresql://a/b")
    ours = {"DATABASE_URL": "postgresql://a/b", "HEADWATER_DATABASE_URL": "postgresql://c/d"}
    assert Settings.from_env(ours).database_url == "postgresql://c/d"
    assert Settings.from_env({"DATABASE_URL": ""}).database_url is None


def non_default_settings() -> Settings:
    """Every field changed from its default (to the VALID value of its kind, or another one)."""
    defaults = Settings()
    changes = {}
    for name in FIELDS:
        value = VALID[kind_of(name).base][1]
        if value == getattr(defaults, name):
            value = not value if isinstance(value, bool) else value * 2 if not isinstance(value, Path) else value / "x"
        changes[name] = value
    return dataclasses.replace(defaults, **changes)


def test_settings_round_trip_through_the_environment_of_worker_processes():
    changed = non_default_settings()
    assert all(getattr(changed, n) != getattr(Settings(), n) for n in FIELDS)
    for settings in (Settings(), changed, changed.replace(database_embedded=True), dataclasses.replace(changed, api_key=None)):
        environment = settings_environment(settings)
        assert set(environment) == {env_name(n) for n in FIELDS}
        assert all(isinstance(v, str) for v in environment.values())
        assert Settings.from_env(environment) == settings
    assert settings_environment(Settings())["HEADWATER_API_KEY"] == ""
    assert settings_environment(Settings(database_embedded=True))["HEADWATER_DATABASE_EMBEDDED"] == "true"


def test_secrets_are_masked():
    assert mask("postgresql://user:s3cret@db.example:5432/hw", "url-password") == "postgresql://user:***@db.example:5432/hw"
    assert mask("postgresql://user@db/hw?sslmode=require&password=s3cret", "url-password") == (
        "postgresql://user@db/hw?sslmode=require&password=***")
    assert mask("postgresql://db/hw", "url-password") == "postgresql://db/hw"
    assert mask("host=db password=s3cret", "url-password") == "***"
    assert mask("s3cret", "value") == "***"
    assert mask(None, "value") is None
    shown = Settings(api_key="s3cret", database_url="postgresql://u:s3cret@h/db").masked()
    assert shown["api_key"] == "***" and shown["database_url"] == "postgresql://u:***@h/db"
    assert "s3cret" not in json.dumps(shown)


# --- the README's table ---------------------------------------------------------------------------


def test_every_setting_has_a_description():
    missing = settings_doc.undescribed()
    assert not missing, (
        f"settings without a description: {', '.join(missing)}; declare each with "
        "setting(default, help='...') in server/settings.py, then run python -m headwater.server.settings_doc"
    )


def test_a_setting_declared_the_old_way_is_named():
    @dataclass(frozen=True)
    class Legacy(Settings):
        # a plain field with a comment, as settings used to be declared
        legacy_knob: int | None = None

    assert settings_doc.undescribed(Legacy) == ["legacy_knob"]
    with pytest.raises(settings_doc.MissingDescription, match="settings without a description: legacy_knob"):
        settings_doc.render_table(Legacy)
    assert Legacy.from_env({"HEADWATER_LEGACY_KNOB": "3"}).legacy_knob == 3  # the loader takes it all the same


def test_the_readme_settings_table_is_generated_from_the_settings():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = settings_doc.table_in(readme)
    assert table is not None, f"README.md lacks the {settings_doc.START} ... {settings_doc.END} markers"
    assert table == settings_doc.render_table(), (
        f"README.md's settings table differs from server/settings.py: run {settings_doc.REGENERATE}")
    for name in FIELDS:
        assert f"| `{name.upper()}`" in table


def test_defaults_are_rendered_readably():
    render = settings_doc.render_default
    assert render("max_request_bytes", 16 * 1024 * 1024) == "16 MiB"
    assert render("max_payload_bytes", 1_000_000) == "1,000,000"
    assert render("port", 4200) == "4200"
    assert render("db_wait_seconds", 15.0) == "15"
    assert render("x_seconds", 0.5) == "0.5"
    assert render("data_dir", Path.home() / ".headwater") == "`~/.headwater`"
    assert render("api_key", None) == "unset" and render("cors_origins", "") == "unset"
    assert render("log_level", "INFO") == "`INFO`" and render("enabled", False) == "false"


def test_the_regenerate_command_rewrites_a_stale_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{settings_doc.START}\n| old | table |\n{settings_doc.END}\n\nafter\n")
    assert settings_doc.main([str(readme), "--check"]) == 1
    assert "| old | table |" in readme.read_text()
    assert settings_doc.main([str(readme)]) == 0
    assert settings_doc.main([str(readme), "--check"]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n\n") and text.endswith(f"{settings_doc.END}\n\nafter\n")
    assert settings_doc.table_in(text) == settings_doc.render_table()


# --- headwater config -----------------------------------------------------------------------------


def headwater(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_") and k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "headwater.server.cli", *args], env={**environ, **env},
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )


def config_lines(stdout: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in stdout.splitlines():
        name, _, rest = line.partition(" = ")
        value, _, source = rest.rpartition("   (source: ")
        found[name.strip()] = (value, source.rstrip(")"))
    return found


def test_config_prints_the_effective_settings_with_secrets_masked():
    result = headwater(
        "config", "--port", "5000", "--no-services",
        HEADWATER_API_KEY="key-s3cret", HEADWATER_DATABASE_URL="postgresql://hw:pw-s3cret@db.example:5432/hw",
        HEADWATER_MAX_PAGE_SIZE="500",
    )
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout
    lines = config_lines(result.stdout)
    assert set(lines) == {env_name(n) for n in FIELDS}, "one line per setting"
    assert lines["HEADWATER_DATABASE_URL"] == ("postgresql://hw:***@db.example:5432/hw", "env")
    assert lines["HEADWATER_API_KEY"] == ("***", "env")
    assert lines["HEADWATER_MAX_PAGE_SIZE"] == ("500", "env")
    assert lines["HEADWATER_PORT"] == ("5000", "flag")
    assert lines["HEADWATER_SERVICES_ENABLED"] == ("false", "flag")
    assert lines["HEADWATER_HOST"] == ("127.0.0.1", "default")
    assert lines["HEADWATER_MAX_REQUEST_BYTES"] == (str(16 * 1024 * 1024), "default")
    assert lines["HEADWATER_CORS_ORIGINS"] == ("http://localhost:8080,http://127.0.0.1:8080", "default")


def test_config_json_is_masked_too():
    result = headwater("config", "--json", HEADWATER_API_KEY="key-s3cret", DATABASE_URL="postgresql://hw:pw-s3cret@db/hw")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert set(shown) == set(FIELDS)
    assert shown["api_key"] == "***" and shown["database_url"] == "postgresql://hw:***@db/hw"
    assert shown["port"] == 4200 and shown["services_enabled"] is True and shown["api_key_cache_seconds"] == 5.0
    assert "s3cret" not in result.stdout
    unset = json.loads(headwater("config", "--json").stdout)
    assert unset["api_key"] is None and unset["database_url"] is None


def test_config_names_the_conventional_database_url_as_its_source():
    lines = config_lines(headwater("config", DATABASE_URL="postgresql://hw:pw@db/hw").stdout)
    assert lines["HEADWATER_DATABASE_URL"] == ("postgresql://hw:***@db/hw", "env DATABASE_URL")


@pytest.mark.parametrize("command", [["config"], ["config", "--json"], ["start"]])
def test_a_bad_value_is_one_line_and_exit_2(command):
    result = headwater(*command, HEADWATER_DB_WAIT_SECONDS="soon")
    assert result.returncode == 2
    assert result.stderr.strip() == "headwater: HEADWATER_DB_WAIT_SECONDS must be a number, got 'soon'"
    assert result.stdout == ""
