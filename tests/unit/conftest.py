"""Pure unit tests: no database, so the package-wide autouse DB fixture is replaced."""

import pytest


@pytest.fixture(autouse=True)
def clean_database():
    """Overrides tests/conftest.py's Postgres-backed fixture of the same name."""
    yield
