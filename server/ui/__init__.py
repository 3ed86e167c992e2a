"""headwater's own web UI: server-rendered pages (Jinja2) and small self-written scripts.

Every page reads and writes through the public GraphQL schema, with the caller's API key
(headwater.server.ui.api), so the UI can never do more than the API allows. Nothing is fetched
from the internet: the templates, CSS and scripts live here, GraphiQL comes from an installed
package (headwater.server.ui.graphiql).
"""
