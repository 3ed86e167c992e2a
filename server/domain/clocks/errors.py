"""The one exception of the package, kept apart so every other module can raise it
without importing the rest (times, rules and parsing all report bad input with it)."""

from __future__ import annotations


class ScheduleError(ValueError):
    """A serialized schedule that cannot be evaluated; the message names the offending part."""
