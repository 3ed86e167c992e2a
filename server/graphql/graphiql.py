"""The GraphiQL console served on GET /. A placeholder page until the offline bundle lands."""

GRAPHIQL_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>headwater</title></head>
<body><h1>headwater</h1><p>POST GraphQL queries to this URL.</p></body></html>
"""
