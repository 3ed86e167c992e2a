"""schema.graphql is the exported SDL of the live schema; this fails when they differ."""

from __future__ import annotations

from headwater.server.graphql.export import SCHEMA_FILE, sdl


def test_schema_file_matches_live_schema():
    assert SCHEMA_FILE.exists(), "run: python -m headwater.server.graphql.export"
    assert SCHEMA_FILE.read_text() == sdl(), (
        "schema.graphql is out of date; regenerate it with: python -m headwater.server.graphql.export"
    )


def test_schema_uses_prefect_names():
    text = sdl()
    for name in ("create_flow_from_compressed_string_input", "success_payload", "set_schedule_active", "hello"):
        assert name in text
    assert "createFlow" not in text, "field names stay snake_case"
