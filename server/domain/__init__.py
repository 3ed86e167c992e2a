"""The behaviour of the orchestrator: plain async functions over a session, no GraphQL here."""
