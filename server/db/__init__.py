"""The data layer: engine and sessions, models, migrations."""
