"""The Prefect Core 1.x side of `flow_location` deployments: load a flow script, and prepare
its flow for registration with script storage pointing at that file.

Prefect is imported only here and only when a spec uses `flow_location`, so the rest of the
client works without it. Registering with `Local(path=<script>, stored_as_script=True)` is what
lets an unchanged `prefect agent local start` on the same filesystem run the flow: the agent
loads the script again, by path, in the run's process. The registration's idempotency key is
the flow's serialized hash, so re-applying an unchanged flow makes no new version.
"""

from __future__ import annotations

import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headwater.client.errors import BadRequest

PREFECT_MISSING = "deployments with flow_location need Prefect Core 1.x: pip install 'headwater[prefect]'"


class PrefectMissing(BadRequest):
    """A spec names a flow script, and Prefect Core 1.x is not installed."""


@dataclass
class ScriptFlow:
    """A flow loaded from a script, and the parameters a run must be given."""

    flow: Any  # prefect.Flow
    script: Path

    @property
    def name(self) -> str:
        return self.flow.name

    def required_parameters(self) -> list[str]:
        return sorted(p.name for p in self.flow.parameters() if p.required and p.default is None)


def require_prefect() -> Any:
    try:
        import prefect
    except ImportError:
        raise PrefectMissing(PREFECT_MISSING) from None
    if not str(getattr(prefect, "__version__", "")).startswith("1."):
        raise PrefectMissing(f"{PREFECT_MISSING} (found prefect {prefect.__version__})")
    return prefect


def load_script_flows(script: Path) -> dict[str, ScriptFlow]:
    """Run a flow script and return its flows by name (ValueError with the reason if it fails).

    The script's folder is on sys.path while it runs, as when `prefect register` loads it."""
    prefect = require_prefect()
    saved_path = list(sys.path)
    sys.path.insert(0, str(script.parent))
    try:
        namespace = runpy.run_path(str(script), run_name="__headwater_flow__")
    except Exception as exc:  # noqa: BLE001 - the user's script failing is reported, not raised
        raise ValueError(f"cannot load {script}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path[:] = saved_path
    flows = {value.name: ScriptFlow(value, script) for value in namespace.values() if isinstance(value, prefect.Flow)}
    if not flows:
        raise ValueError(f"no Prefect flow found in {script}")
    return flows


def serialized_for_registration(script_flow: ScriptFlow) -> tuple[dict[str, Any], str]:
    """The serialized flow with script storage at its file, and its hash (the idempotency key).

    Does what `flow.register()` does before sending (default run config, the storage's labels,
    the storage's result), so the agent's hostname label matches as with `prefect register`."""
    from prefect.run_configs import UniversalRun
    from prefect.storage import Local

    flow = script_flow.flow
    flow.storage = Local(path=str(script_flow.script), stored_as_script=True)
    if flow.run_config is None:
        flow.run_config = UniversalRun()
    flow.run_config.labels.update(flow.storage.labels)
    if not flow.result:
        flow.result = flow.storage.result
    flow.storage.add_flow(flow)
    return flow.serialize(build=False), flow.serialized_hash()
