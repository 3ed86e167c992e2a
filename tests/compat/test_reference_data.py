"""headwater's state table (server/domain/reference_data.py) against the real prefect==1.4.1
state classes, computed the way Prefect Server computed `reference_data`."""

from __future__ import annotations

import inspect

import pytest

from headwater.server.domain.reference_data import STATE_HIERARCHY, STATE_INFO

pytestmark = [pytest.mark.prefect, pytest.mark.pure]


def core_reference_data() -> tuple[dict, dict]:
    from prefect.engine import state

    hierarchy: dict[str, list[str]] = {}
    info: dict[str, dict] = {}
    for name, cls in inspect.getmembers(state, lambda o: inspect.isclass(o) and issubclass(o, state.State)):
        info[name] = {"color": cls.color}
        for ancestor in cls.mro():
            if isinstance(ancestor, type) and issubclass(ancestor, state.State):
                hierarchy.setdefault(ancestor.__name__, []).append(name)
    return hierarchy, info


def test_state_hierarchy_and_colours_match_prefect_core():
    hierarchy, info = core_reference_data()
    assert STATE_INFO == info
    assert STATE_HIERARCHY == hierarchy
    assert list(STATE_HIERARCHY["State"]) == hierarchy["State"]  # the same order, too
