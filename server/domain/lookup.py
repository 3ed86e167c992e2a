"""Loading rows by id, with the clear error a caller should see when one does not exist."""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Base
from headwater.server.domain.errors import NotFound

Row = TypeVar("Row", bound=Base)


async def require(
    session: AsyncSession, model: type[Row], row_id: uuid.UUID, *, for_update: bool = False
) -> Row:
    """The row with this id, or NotFound naming the kind of object ("Flow <id> not found.")."""
    row = await session.get(model, row_id, with_for_update=for_update or None)
    if row is None:
        label = model.__tablename__.replace("_", " ").capitalize()
        raise NotFound(f"{label} {row_id} not found.")
    return row
