"""Messages: the notifications the UI's bell shows (Prefect Server's `api/messages.py`).

The only writer is a PREFECT_MESSAGE cloud hook, whose delivery inserts one row per event.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Message
from headwater.server.domain.errors import InvalidInput

MESSAGE_TYPES = ("CLOUD_HOOK", "REQUIRES_APPROVAL")
INVALID_MESSAGE_ID = "Invalid message ID."


async def create_message(
    session: AsyncSession, tenant_id: uuid.UUID, message_type: str, content: dict[str, Any], text: str | None = None
) -> uuid.UUID:
    if message_type not in MESSAGE_TYPES:
        raise InvalidInput("Invalid message type.")
    message = Message(tenant_id=tenant_id, type=message_type, content=content, text=text, read=False)
    session.add(message)
    await session.flush()
    return message.id


async def set_message_read(session: AsyncSession, message_id: uuid.UUID | None, read: bool) -> bool:
    """Whether the message exists (Prefect Server answers `success: false` for an unknown id)."""
    if not message_id:
        raise InvalidInput(INVALID_MESSAGE_ID)
    result = await session.execute(update(Message).where(Message.id == message_id).values(read=read))
    return result.rowcount == 1


async def delete_message(session: AsyncSession, message_id: uuid.UUID | None) -> bool:
    if not message_id:
        raise InvalidInput(INVALID_MESSAGE_ID)
    result = await session.execute(delete(Message).where(Message.id == message_id))
    return result.rowcount == 1
