"""A local Databricks workspace emulator for the Lakeflow provider (see ``control.LakeflowEmulator``).

Behaviour worth knowing (the rest follows databricks-sdk's wire format):

- Updates go QUEUED, WAITING_FOR_RESOURCES, INITIALIZING, SETTING_UP_TABLES, RUNNING, then COMPLETED or FAILED.
  The default script splits ``update_seconds`` (default 3 s) 5/15/20/20/40 %; a stop shows STOPPING for 5 % of it,
  then CANCELED. Continuous pipelines (``continuous: true``, and every gateway pipeline) start an update at create
  that stays RUNNING until stopped. A scripted FAILED fails the first table's flow and the update (ERROR events).
- Destination tables: table spec -> ``dest_catalog.dest_schema.(destination_table or source_table)``; report ->
  destination_table or the URL's last path segment (lowercased, non-alphanumerics as ``_``); schema spec -> the
  script's ``tables`` or ``<source_schema>_table_1..3``. Rows per table default to ``1000 + crc32(name) % 9000``.
- An update of an ingestion pipeline reading a gateway fails (while INITIALIZING) when, at start, the gateway does
  not exist or has no active, non-stopping update.
- Connections created through the API are ACTIVE at once unless ``script_connections`` says otherwise; secret
  option values are stored (see ``connection()``) but never returned.

Layout, outside in: ``control`` (``LakeflowEmulator`` in process, ``EmulatorClient`` over HTTP) and ``__main__``
(CLI) drive it; ``control_ops`` declares every control operation once. ``server/`` is HTTP (routes, thin handlers,
the middleware for faults, rate limit, auth and the request log) over ``workspace`` (``Workspace``: auth, job runs,
the control operations), which puts together ``api/`` (one ``api_*`` method per REST endpoint: pipelines, updates
and events, connections; the spec rules; list filters and page tokens), ``sql/`` (SQL warehouses on DuckDB) and its
parts ``faults``, ``ratelimit`` and ``schedules``. ``model`` is its data; ``lifecycle/`` is how an update plays out
(script, state machine, events, error conditions), from the clock alone; ``errors`` is the one exception type.
Exports resolve lazily so that importing this package (e.g. to run ``-m``) loads neither aiohttp nor the workspace
model until needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient, LakeflowEmulator
    from airflow_provider_lakeflow.testing.emulator.errors import ApiError
    from airflow_provider_lakeflow.testing.emulator.faults import RecordedRequest

__all__ = ["ApiError", "EmulatorClient", "LakeflowEmulator", "RecordedRequest"]

_EXPORTS = {
    "LakeflowEmulator": "control",
    "EmulatorClient": "control",
    "ApiError": "errors",
    "RecordedRequest": "faults",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
