"""The Hasura-compatible read API: `t`, `t_by_pk` and `t_aggregate` for every table, generated
from the SQLAlchemy metadata and `RELATIONSHIPS` by one compiler.

- `catalog`: the tables, columns and relationships exposed, and the GraphQL type names;
- `types`: the generated Strawberry types and the root `Query`;
- `fields`: root fields (compile and load the whole selection) and nested fields (read it back);
- `selection` -> `plan`: the client's AST read into what to load, under which aliases;
- `filters`, `ordering`, `aliases`, `compiler`: plans to SQLAlchemy Core (bound parameters only);
- `loader`: runs the statements, one per array relationship or aggregate, batched per level.
"""

from headwater.server.graphql.hasura.types import Query

__all__ = ["Query"]
