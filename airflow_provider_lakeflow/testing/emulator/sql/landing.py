"""The emulator's DuckDB side of pipelines: the ``event_log(...)`` table and the tables each update lands.

Before a statement runs, ``sync`` copies the workspace's events not seen yet into the event log table and (re)writes
each table a COMPLETED ``flow_progress`` event reports, with exactly its ``num_output_rows`` rows.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from airflow_provider_lakeflow.testing.emulator.sql.translation import _q, duckdb_catalog

_EVENTS = "memory.__lakeflow.events"
_ORIGIN_FIELDS = (
    "pipeline_id",
    "pipeline_name",
    "update_id",
    "flow_id",
    "flow_name",
    "dataset_name",
    "ingestion_source_connection_name",
    "ingestion_source_catalog_name",
    "ingestion_source_schema_name",
    "ingestion_source_table_name",
)
_ORIGIN_SHAPE = json.dumps(dict.fromkeys(_ORIGIN_FIELDS, "VARCHAR"))
_SETUP = f"""
SET TimeZone = 'UTC';
CREATE SCHEMA IF NOT EXISTS memory.__lakeflow;
CREATE TABLE IF NOT EXISTS {_EVENTS} (
    pipeline_id VARCHAR, seq BIGINT, id VARCHAR, sequence JSON,
    origin STRUCT({", ".join(f"{f} VARCHAR" for f in _ORIGIN_FIELDS)}),
    "timestamp" TIMESTAMPTZ, message VARCHAR, level VARCHAR, maturity_level VARCHAR, error JSON, details JSON,
    event_type VARCHAR);
CREATE OR REPLACE MACRO memory.main.event_log(__pipeline_id) AS TABLE
    SELECT id, sequence, origin, "timestamp", message, level, maturity_level, error, details, event_type
    FROM {_EVENTS} WHERE pipeline_id = __pipeline_id ORDER BY seq;
"""


class EventSource(Protocol):
    """What the SQL side reads from the workspace: the events it has not synced yet (``Workspace.events_since``)."""

    def events_since(self, seen: dict[str, int]) -> list[tuple[str, list[dict[str, Any]]]]: ...


class LandedTables:
    """The event log and landed tables of ``SqlEngine`` (a mixin: the engine owns the database and the workspace)."""

    workspace: EventSource
    _db: Any
    _sync_lock: threading.Lock
    _seen: dict[str, int]

    def _ensure_schema(self, catalog: str, schema: str, db: Any = None) -> None:
        con = db or self._db
        name = duckdb_catalog(catalog)
        if name != "memory":
            con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {_q(name)}")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(name)}.{_q(schema.lower())}")

    def sync(self) -> None:
        """Bring the event log table and the landed tables up to date with the workspace's events."""
        with self._sync_lock:
            batches = self.workspace.events_since(self._seen)
            if not batches:
                return
            con = self._db.cursor()
            try:
                rows = []
                for pipeline_id, events in batches:
                    for e in events:
                        rows.append(
                            (
                                pipeline_id,
                                e["sequence"]["control_plane_seq_no"],
                                e["id"],
                                json.dumps(e.get("sequence")),
                                json.dumps(e.get("origin") or {}),
                                e["_ms"] / 1000.0,
                                e.get("message"),
                                e.get("level"),
                                e.get("maturity_level"),
                                json.dumps(e["error"]) if e.get("error") else None,
                                json.dumps(e.get("details") or {}),
                                e.get("event_type"),
                            )
                        )
                        self._land(con, e)
                con.executemany(
                    f"INSERT INTO {_EVENTS} SELECT ?, ?, ?, ?::JSON, json_transform(?, '{_ORIGIN_SHAPE}'), "
                    "to_timestamp(?), ?, ?, ?, ?::JSON, ?::JSON, ?",
                    rows,
                )
            finally:
                con.close()

    def _land(self, con: Any, event: dict[str, Any]) -> None:
        progress = (event.get("details") or {}).get("flow_progress") or {}
        rows = (progress.get("metrics") or {}).get("num_output_rows")
        table = (event.get("origin") or {}).get("dataset_name")
        if progress.get("status") != "COMPLETED" or rows is None or not table or table.count(".") != 2:
            return
        catalog, schema, name = table.split(".")
        self._ensure_schema(catalog, schema, con)
        target = f"{_q(duckdb_catalog(catalog))}.{_q(schema.lower())}.{_q(name.lower())}"
        con.execute(
            f"""CREATE OR REPLACE TABLE {target} AS
            SELECT CAST(range + 1 AS BIGINT) AS id,
                   'row-' || CAST(range + 1 AS VARCHAR) AS name,
                   CAST(((range * 37) % 100000) / 100 AS DECIMAL(12, 2)) AS amount,
                   range % 3 <> 0 AS is_active,
                   DATE '2024-01-01' + CAST(range % 365 AS INTEGER) AS created_date,
                   to_timestamp($at) - to_seconds(CAST(range % 86400 AS BIGINT)) AS updated_at,
                   to_timestamp($at) AS _ingested_at
            FROM range($n)""",
            {"at": event["_ms"] / 1000.0, "n": int(rows)},
        )
