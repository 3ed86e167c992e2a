"""`reference_data`: Prefect Core's state families and colours, as the web UI reads them.

The UI colours every run and task by its state's `color` and groups states by family
(`Success` covers `Cached`, `Mapped` and `Skipped`). Prefect Server computed both from Core's
state classes at start; headwater does not depend on Prefect, so the table is written out here,
and tests/compat/test_reference_data.py compares it with the real prefect==1.4.1 classes.
"""

from __future__ import annotations

from typing import Any

from headwater.server.domain.states import STATE_NAMES, ancestors

# Each Core 1.4.1 state class's `color` attribute (`_MetaState` inherits `State`'s).
STATE_COLORS: dict[str, str] = {
    "State": "#696969",
    "_MetaState": "#696969",
    "Pending": "#7ebdff",
    "Scheduled": "#ffab00",
    "Paused": "#99a8e8",
    "Resume": "#f58c0c",
    "Retrying": "#f66a0a",
    "ClientFailed": "#eb0000",
    "Submitted": "#ffdf5d",
    "Queued": "#ffea7f",
    "Running": "#3d67ff",
    "Cancelling": "#E8E8E8",
    "Finished": "#003ccb",
    "Looped": "#003ccb",
    "Success": "#28a745",
    "Cached": "#34d058",
    "Mapped": "#003ccb",
    "Skipped": "#62757f",
    "Cancelled": "#bdbdbd",
    "Failed": "#eb0000",
    "TimedOut": "#ff4e33",
    "TriggerFailed": "#ff5131",
    "ValidationFailed": "#ff5131",
}
assert set(STATE_COLORS) == STATE_NAMES, "every state needs a colour"


def _hierarchy() -> dict[str, list[str]]:
    """Each state -> itself and every state below it. Classes are visited in name order (as
    Prefect Server's `inspect.getmembers` did), so each list is sorted, `_MetaState` last."""
    hierarchy: dict[str, list[str]] = {}
    for name in sorted(STATE_NAMES):
        chain = ancestors(name)
        if chain[-1] != "State":  # `_MetaState` is a State too, though runs never enter it
            chain.append("State")
        for ancestor in chain:
            hierarchy.setdefault(ancestor, []).append(name)
    return hierarchy


STATE_HIERARCHY: dict[str, list[str]] = _hierarchy()
STATE_INFO: dict[str, dict[str, Any]] = {name: {"color": STATE_COLORS[name]} for name in sorted(STATE_NAMES)}
