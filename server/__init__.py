"""headwater: a self-hosted backend that speaks the Prefect Server 1.x GraphQL API."""

__version__ = "0.1.0"
