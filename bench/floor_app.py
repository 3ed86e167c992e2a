"""The framework floor: the least a Strawberry-on-uvicorn GraphQL server can do per request.

    python -m bench.floor_app PORT DATABASE_URL

One worker, uvloop and httptools (as `headwater start` serves), Strawberry with its parser and
validation caches, and one mutation that inserts one row with asyncpg from a pool. Whatever
headwater spends beyond this on a request is its own; the benchmark reports its figures as
multiples of this app's, measured in the same run.
"""

from __future__ import annotations

import contextlib
import sys

import asyncpg
import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig

TABLE = "bench_floor"
POOL: dict[str, asyncpg.Pool] = {}


@strawberry.type
class Row:
    id: strawberry.ID


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "floor"


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def insert_row(self, value: str) -> Row:
        row_id = await POOL["pool"].fetchval(f"INSERT INTO {TABLE} (value) VALUES ($1) RETURNING id", value)
        return Row(id=strawberry.ID(str(row_id)))


schema = strawberry.Schema(
    query=Query, mutation=Mutation,
    extensions=[lambda: ParserCache(maxsize=1000), lambda: ValidationCache(maxsize=1000)],  # shared LRU caches
    config=StrawberryConfig(auto_camel_case=False),
)

DOCUMENT = "mutation($value: String!) { insert_row(value: $value) { id } }"


async def create_table(connection: asyncpg.Connection) -> None:
    await connection.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
        "value text NOT NULL, created timestamptz NOT NULL DEFAULT now())"
    )


def create_app(database_url: str) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        POOL["pool"] = await asyncpg.create_pool(database_url, min_size=4, max_size=20)
        async with POOL["pool"].acquire() as connection:
            await create_table(connection)
        yield
        await POOL["pool"].close()

    graphql = GraphQL(schema)
    return Starlette(routes=[Route("/", graphql, methods=["GET", "POST"])], lifespan=lifespan)


def main() -> None:
    port, database_url = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(create_app(database_url), host="127.0.0.1", port=port, log_level="warning",
                access_log=False, loop="auto", http="auto", workers=1)


if __name__ == "__main__":
    main()
