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

Layout: ``state`` (the workspace: auth, job runs, control operations) over ``model`` (its data),
``pipelines_api``, ``updates_api`` and ``connections_api`` (its REST parts); ``updates`` (update state machine and
events), ``validation`` (spec rules), ``listing`` (list filters, page tokens, query parameters), ``faults`` (fault
injection, request log), ``sql`` and ``sql_*`` (SQL warehouses on DuckDB), ``server`` (aiohttp routes),
``control_ops`` (the control operations, declared once), ``control`` (in-process and HTTP control interfaces),
``__main__`` (CLI). Exports resolve lazily so that importing this package (e.g. to run ``-m``) loads neither
aiohttp nor the workspace model until needed.
"""

from __future__ import annotations

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
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
