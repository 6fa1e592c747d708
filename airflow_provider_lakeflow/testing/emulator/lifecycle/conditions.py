"""Databricks' documented Lakeflow Connect error conditions (``condition_catalog``), scripted per pipeline and table.

A scripted condition fails the updates that include its table (a flow_progress FAILED event carrying the error, and
the update's FAILED event), or, without a table, fails the whole update while it initializes. By default a condition
whose documented fix is a full refresh of the table keeps failing until an update fully refreshes that table (as on
Databricks); any other fires once. ``updates=N`` makes it fire on the next N updates that include the table instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_lakeflow.testing.emulator.lifecycle.condition_catalog import needs_full_refresh, render, split
from airflow_provider_lakeflow.testing.emulator.lifecycle.script import Flow, match_flow

_DEFAULTS = {
    "sourceName": "SALESFORCE",
    "oldKey": "[Id]",
    "newKey": "[Id, Region]",
    "oldPrimaryKeys": "[id]",
    "newPrimaryKeys": "[id, region]",
    "newColumns": "[region]",
    "missingColumns": "[area]",
    "columnNames": "[amount]",
    "droppedColumns": "[legacy_code]",
    "colName": "region",
    "previousSchemaVersion": "3",
    "currentSchemaVersion": "4",
    "previousSchema": "id BIGINT, amount DECIMAL(12,2)",
    "currentSchema": "id BIGINT, amount STRING",
    "count": "2",
    "keys": "[Id]",
    "key": "id",
    "errorCode": "ERR_1",
    "errorMessage": "source error",
    "entityType": "slot",
}


@dataclass
class ScriptedCondition:
    """A condition waiting to fail updates of one pipeline; ``remaining`` None: until the table is fully refreshed."""

    name: str
    table: str | None
    parameters: dict[str, Any]
    remaining: int | None


@dataclass(frozen=True)
class Fired:
    """A condition failing one update: on a flow (its table), or on the whole update (``flow`` None)."""

    name: str
    flow: Flow | None
    message: str


def script(name: str, table: str | None, parameters: dict[str, Any] | None, updates: int | None) -> ScriptedCondition:
    """Check a control call's arguments (a bad name fails the call, naming the known ones)."""
    split(name)
    if updates is not None and (isinstance(updates, bool) or not isinstance(updates, int) or updates < 1):
        raise ValueError(f"updates must be a positive number of updates, got {updates!r}")
    if updates is None and not (table and needs_full_refresh(name)):
        updates = 1
    return ScriptedCondition(name, table, dict(parameters or {}), updates)


def fire(
    scripted: list[ScriptedCondition], flows: list[Flow], request: dict[str, Any], connection: str | None
) -> list[Fired]:
    """The conditions that fail an update with these flows; updates ``scripted`` (counts, cleared conditions)."""
    fired: list[Fired] = []
    full = {n.lower() for n in request.get("full_refresh_selection") or []}
    for item in list(scripted):
        flow = None
        if item.table:
            flow = match_flow(flows, item.table)
            if flow is None:
                continue  # the table is not part of this update
            refreshed = request.get("full_refresh") or flow.name.lower() in full or item.table.lower() in full
            if item.remaining is None and refreshed:
                scripted.remove(item)  # a full refresh is the documented fix
                continue
        params = {**_DEFAULTS, "connectionName": connection or "<connection>", **item.parameters}
        if flow is not None:
            condition, _, _ = split(item.name)
            source = ".".join(p for p in (flow.source_schema, flow.source_table) if p) or flow.name.rsplit(".", 1)[-1]
            if item.name == "CANNOT_WRITE_TO_INACTIVE_TABLES":
                source = flow.name  # this one names the destination table
            for key in {condition.table_param or "tableName", "tableName", "objName", "entityName", "objectName"}:
                params.setdefault(key, source)
        fired.append(Fired(item.name, flow, render(item.name, params)))
        if item.remaining is not None:
            item.remaining -= 1
            if item.remaining <= 0:
                scripted.remove(item)
    return fired
