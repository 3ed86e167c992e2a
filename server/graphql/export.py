"""Write the live schema's SDL to schema.graphql: `python -m headwater.server.graphql.export [PATH]`.

The committed file is the API's contract; tests/graphql/test_schema_file.py fails when it drifts.
"""

from __future__ import annotations

import sys
from pathlib import Path

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def sdl() -> str:
    from headwater.server.graphql.schema import schema

    return schema.as_str().rstrip() + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else SCHEMA_FILE
    target.write_text(sdl())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
