"""Testing helpers: a local Databricks workspace emulator and pytest fixtures for offline DAG runs.

Imports are lazy: ``from airflow_provider_lakeflow.testing import LakeflowEmulator`` loads aiohttp only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient, LakeflowEmulator

__all__ = ["EmulatorClient", "LakeflowEmulator"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        # Lazy: the pytest plugin loads this package in every pytest run; aiohttp loads only when a test needs it.
        from airflow_provider_lakeflow.testing.emulator import control

        return getattr(control, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
