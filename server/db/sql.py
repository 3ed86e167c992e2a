"""Small SQL building blocks shared by the domain modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, bindparam
from sqlalchemy.dialects.postgresql import JSONB


def jsonb_merge(column: Any, patch: dict[str, Any]) -> ColumnElement:
    """`column || patch`: an atomic shallow merge, so concurrent writers of other keys are kept."""
    return column.op("||")(bindparam(None, patch, type_=JSONB))
