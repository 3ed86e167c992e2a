"""How far one evaluation may search, so no schedule can keep a CPU busy for long.

A schedule can be written that never fires (an rrule for February 30th, the cron
``0 0 30 2 *``, ``is_weekday`` and ``is_weekend`` together) or that fires only after an
enormous amount of work. Every evaluation therefore carries a :class:`SearchBounds`: a
time horizon (no event is looked for more than ``SEARCH_HORIZON_YEARS`` after the search
start or the last event found, like croniter's ``max_years_between_matches``) and a budget of search steps shared by
all clocks, filters and adjustments of the schedule. A clock that reaches either bound
simply stops; the bounds remember which one was reached so validation can say why a
schedule produced nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

# No event is looked for further ahead than this, from the search start or from the last
# event found (croniter's own default search horizon).
SEARCH_HORIZON_YEARS = 50
DEFAULT_HORIZON = timedelta(days=round(SEARCH_HORIZON_YEARS * 365.2425))
# Search steps one evaluation may take: a clock's candidate (an interval step, a cron field
# step, an rrule period or occurrence, a date) or one filter/adjustment call. Under half a second
# of CPU in the worst case (dateutil's period loop is the slowest step).
DEFAULT_MAX_STEPS = 50_000


@dataclass
class SearchBounds:
    """One evaluation's limits; not shared between evaluations (it counts down)."""

    horizon: datetime  # tz-aware UTC; moves on as events are found
    steps_left: int = DEFAULT_MAX_STEPS
    span: timedelta = DEFAULT_HORIZON
    horizon_reached: bool = field(default=False)
    steps_exhausted: bool = field(default=False)

    @classmethod
    def from_time(
        cls, after: datetime, *, horizon: timedelta = DEFAULT_HORIZON, max_steps: int = DEFAULT_MAX_STEPS
    ) -> "SearchBounds":
        """Bounds for a search starting at `after` (UTC)."""
        return cls(horizon=_plus(after, horizon), steps_left=max_steps, span=horizon)

    def restart(self, start: datetime) -> None:
        """A new search from `start` with what is left of the step budget."""
        self.horizon = _plus(start, self.span)
        self.horizon_reached = False

    def found(self, event: datetime) -> None:
        """An event was found: the next one may be up to `span` after it."""
        self.horizon = max(self.horizon, _plus(event, self.span))

    @property
    def horizon_year(self) -> int:
        return self.horizon.year

    @property
    def reached(self) -> bool:
        return self.horizon_reached or self.steps_exhausted

    def spend(self, steps: int = 1) -> bool:
        """Take `steps` from the budget; False (and remembered) once it is used up."""
        self.steps_left -= steps
        if self.steps_left < 0:
            self.steps_exhausted = True
            return False
        return True

    def beyond(self, instant: datetime) -> bool:
        """True (and remembered) for an instant past the horizon."""
        if instant > self.horizon:
            self.horizon_reached = True
            return True
        return False


def _plus(moment: datetime, span: timedelta) -> datetime:
    try:
        return moment + span
    except OverflowError:
        return datetime.max.replace(tzinfo=moment.tzinfo)
