"""The `write_run_logs` mutation."""

from __future__ import annotations

import enum
from typing import Optional

import strawberry

from headwater.server.domain import logs
from headwater.server.graphql.context import Info
from headwater.server.graphql.payloads import SuccessPayload
from headwater.server.graphql.scalars import JSON, UUID, DateTime


@strawberry.enum(name="log_level")
class LogLevel(enum.Enum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


@strawberry.input(name="write_run_log_input")
class WriteRunLogInput:
    flow_run_id: UUID
    task_run_id: Optional[UUID] = None
    timestamp: Optional[DateTime] = None
    name: Optional[str] = None
    level: Optional[LogLevel] = None
    message: Optional[str] = None
    info: Optional[JSON] = None


@strawberry.input(name="write_run_logs_input")
class WriteRunLogsInput:
    logs: list[WriteRunLogInput]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Store a batch of run logs; a missing timestamp is set by the server.")
    async def write_run_logs(self, info: Info, input: WriteRunLogsInput) -> Optional[SuccessPayload]:
        records = [
            logs.LogRecord(
                flow_run_id=item.flow_run_id,
                task_run_id=item.task_run_id,
                timestamp=item.timestamp,
                name=item.name,
                level=item.level.value if item.level else None,
                message=item.message,
                info=item.info,
            )
            for item in input.logs
        ]
        async with info.context.transaction() as session:
            await logs.write_logs(session, records)
        return SuccessPayload(success=True)
