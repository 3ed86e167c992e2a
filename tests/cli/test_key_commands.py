"""`headwater key create|list|revoke`, run as the real command on the test database."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from sqlalchemy import text


def headwater_key(*args: str, database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEADWATER_DATABASE_URL": database_url, "HEADWATER_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "headwater.server.cli", "key", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_create_list_revoke(database_url, db):
    empty = headwater_key("list", database_url=database_url)
    assert empty.returncode == 0 and "No API keys" in empty.stdout

    created = headwater_key("create", "ci", "--role", "run", database_url=database_url)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert "'ci' with role 'run'" in created.stdout and key.startswith("hw_")
    stored = await db.scalar(text("SELECT key_hash FROM api_key WHERE name = 'ci'"))
    assert stored == hashlib.sha256(key.encode()).hexdigest()
    await db.commit()

    listing = headwater_key("list", database_url=database_url)
    assert listing.returncode == 0
    header, row = listing.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "ROLE", "PREFIX"] and "LAST USED" in header and "REVOKED" in header
    assert row.split()[:3] == ["ci", "run", key[:11] + "…"]
    assert key not in listing.stdout, "a listing never shows the key"
    assert row.rstrip().endswith("-"), "not revoked"

    revoked = headwater_key("revoke", "ci", database_url=database_url)
    assert revoked.returncode == 0 and "Revoked API key 'ci'" in revoked.stdout
    assert await db.scalar(text("SELECT revoked IS NOT NULL FROM api_key WHERE name = 'ci'"))
    assert not headwater_key("list", database_url=database_url).stdout.splitlines()[1].rstrip().endswith("-")


async def test_errors_are_one_clear_line_with_their_exit_code(database_url):
    assert headwater_key("create", "ci", "--role", "read", database_url=database_url).returncode == 0
    duplicate = headwater_key("create", "ci", "--role", "admin", database_url=database_url)
    assert duplicate.returncode == 1
    assert duplicate.stderr.strip() == "headwater: An API key named 'ci' already exists."
    bad_role = headwater_key("create", "other", "--role", "owner", database_url=database_url)
    assert bad_role.returncode == 2 and "invalid choice: 'owner'" in bad_role.stderr
    missing = headwater_key("revoke", "ghost", database_url=database_url)
    assert missing.returncode == 1 and missing.stderr.strip() == "headwater: No API key named 'ghost'."
