"""The dashboard's run-history chart: runs bucketed by time and state, laid out as stacked bars
of an inline SVG (coordinates computed here; colours come from app.css through the state classes).

The data is one capped read of (scheduled_start_time, state) for the window, so the chart costs one
index range scan whatever the size of the table; when the cap is hit the chart says so."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from headwater.server.ui.rendering import parse_time, state_class

# Per window: the bucket width (the chart has 12 to 30 bars).
BUCKETS = {"1h": timedelta(minutes=5), "24h": timedelta(hours=1), "7d": timedelta(hours=6), "30d": timedelta(days=1)}
CAP = 2000  # the most runs one chart reads
WIDTH, HEIGHT, GAP = 720, 140, 2
# Stacking order, bottom up; other states stack after these.
ORDER = ("Success", "Failed", "Cancelled", "TimedOut", "Running", "Submitted", "Scheduled", "Pending")


@dataclass
class Bar:
    start: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def chart_start(window: timedelta, until: datetime, width: timedelta) -> datetime:
    """The first bar's start: bars fall on whole units (hours, days UTC) and the last one holds `until`."""
    count = max(1, int(window / width))
    epoch = datetime(1970, 1, 1, tzinfo=until.tzinfo)
    last = epoch + (until - epoch) // width * width
    return last - (count - 1) * width


def bucket_runs(runs: list[dict[str, Any]], since: datetime, until: datetime, width: timedelta) -> list[Bar]:
    count = max(1, -(-int((until - since).total_seconds()) // int(width.total_seconds())))
    bars = [Bar(since + index * width) for index in range(count)]
    for run in runs:
        moment = parse_time(run["scheduled_start_time"])
        if moment is None or not since <= moment <= until:
            continue
        index = min(count - 1, int((moment - since) / width))
        state = run["state"] or "Pending"
        bars[index].counts[state] = bars[index].counts.get(state, 0) + 1
    return bars


def rank(state: str) -> tuple[int, str]:
    return (ORDER.index(state) if state in ORDER else len(ORDER), state)


def run_history(runs: list[dict[str, Any]], since: datetime, until: datetime, window: str) -> dict[str, Any]:
    """What the template draws: bars of rects (x, y, width, height, class, title), the y-axis top,
    the x-axis labels, the states in the legend and whether the cap cut the window short.
    `since` is chart_start(...), the time the runs were read from."""
    width = BUCKETS.get(window, timedelta(hours=1))
    bars = bucket_runs(runs, since, until, width)
    top = max([bar.total for bar in bars] + [1])
    slot = WIDTH / len(bars)
    fmt = "%H:%M" if width < timedelta(days=1) else "%m-%d"
    drawn, seen = [], set()
    for index, bar in enumerate(bars):
        y = HEIGHT
        rects = []
        for state in sorted(bar.counts, key=rank):
            height = bar.counts[state] / top * HEIGHT
            y -= height
            seen.add(state)
            rects.append({"x": round(index * slot + GAP / 2, 2), "y": round(y, 2), "width": round(slot - GAP, 2),
                          "height": round(height, 2), "class": state_class(state),
                          "title": f"{bar.start.strftime('%Y-%m-%d %H:%M')} UTC: {bar.counts[state]} {state}"})
        drawn.append({"rects": rects, "total": bar.total})
    step = max(1, len(bars) // 6)
    labels = [{"x": round(i * slot, 2), "text": bars[i].start.strftime(fmt)} for i in range(0, len(bars), step)]
    return {"bars": drawn, "top": top, "labels": labels, "legend": sorted(seen, key=rank),
            "width": WIDTH, "height": HEIGHT, "capped": len(runs) >= CAP, "cap": CAP, "total": sum(bar.total for bar in bars)}
