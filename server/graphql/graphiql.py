"""The GraphQL console served on GET / and /graphql: one self-contained page (console.html),
no CDN, so it works on machines with no internet access. It runs queries and mutations with
variables and lists every root field from introspection."""

from pathlib import Path

GRAPHIQL_HTML = (Path(__file__).with_name("console.html")).read_text(encoding="utf-8")
