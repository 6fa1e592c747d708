"""The events an update writes to its pipeline's event log, rendered from its plan (``update.Update.plan``).

``materialize`` turns each planned ``(offset, kind, data)`` whose time has come into one event dict in the wire format
of ``GET /pipelines/{id}/events`` (plus ``_ms``, the emulator's own sort key, never sent).
"""

from __future__ import annotations

import uuid
from typing import Any

from airflow_provider_lakeflow.testing.emulator.lifecycle.script import TERMINAL, Flow, rows_for
from airflow_provider_lakeflow.testing.emulator.lifecycle.update import Update, format_timestamp

#: The columns of every table the emulator lands (the SQL warehouse creates them with these types), announced in each
#: flow's ``flow_definition`` event as Databricks does.
LANDED_SCHEMA = (
    ("id", "LONG"),
    ("name", "STRING"),
    ("amount", "DECIMAL(12,2)"),
    ("is_active", "BOOLEAN"),
    ("created_date", "DATE"),
    ("updated_at", "TIMESTAMP"),
    ("_ingested_at", "TIMESTAMP"),
)
DEFAULT_ERROR = "Scripted failure: the emulator's script for this pipeline ends in FAILED."
_EVENT_NS = uuid.UUID("6c1f1c9e-2a8e-4d3e-9a59-6b1b7e0c5a10")
EXCEPTION_CLASS = "com.databricks.pipelines.common.errors.DLTException"
_ORIGIN_SOURCE = {
    "source_catalog": "ingestion_source_catalog_name",
    "source_schema": "ingestion_source_schema_name",
    "source_table": "ingestion_source_table_name",
}


def materialize(update: Update, now: float, pipeline_name: str, next_seq: int) -> list[dict[str, Any]]:
    """The events whose time has come since the last call, numbered from ``next_seq``."""
    elapsed = now - update.created
    plan = update.plan()
    out: list[dict[str, Any]] = []
    while update.emitted < len(plan) and plan[update.emitted][0] <= elapsed:
        offset, kind, data = plan[update.emitted]
        out.append(_event(update, update.emitted, offset, kind, data, pipeline_name, next_seq + len(out)))
        update.emitted += 1
    return out


def _error(update: Update, flow: Flow | None = None) -> dict[str, Any]:
    """The error of a failed flow (``flow``) or of the update: a scripted condition's message when there is one."""
    own = [c for c in update.conditions if flow is not None and c.flow == flow]
    update_level = [c for c in update.conditions if c.flow is None] or list(update.conditions)
    scripted = own or ([] if flow is not None else update_level)
    message = scripted[0].message if scripted else update.fail_message or update.script.error_message or DEFAULT_ERROR
    return {"fatal": True, "exceptions": [{"class_name": EXCEPTION_CLASS, "message": message}]}


def _event(
    update: Update, index: int, offset: float, kind: str, data: Any, pipeline_name: str, seq: int
) -> dict[str, Any]:
    """One planned ``(offset, kind, data)`` as an event: the envelope here, the rest by kind."""
    ts = update.created + offset
    origin: dict[str, Any] = {
        "pipeline_id": update.pipeline_id,
        "pipeline_name": pipeline_name,
        "update_id": update.update_id,
    }
    ev: dict[str, Any] = {
        "id": str(uuid.uuid5(_EVENT_NS, f"{update.update_id}/{index}")),
        "sequence": {"control_plane_seq_no": seq},
        "timestamp": format_timestamp(ts),
        "level": "INFO",
        "maturity_level": "STABLE",
        "event_type": kind,
        "origin": origin,
        "_ms": int(ts * 1000),
    }
    if kind == "create_update":
        _create_update(update, ev)
    elif kind == "update_progress":
        _update_progress(update, ev, data)
    elif kind == "flow_definition":
        _flow_definition(update, ev, data[0])
    else:
        _flow_progress(update, ev, *data)
    return ev


def _create_update(update: Update, ev: dict[str, Any]) -> None:
    ev["message"] = f"Update {update.update_id[:6]} started by {update.cause}."
    ev["details"] = {
        "create_update": {
            "cause": update.cause,
            "config": update.config,
            "full_refresh": bool(update.request.get("full_refresh")),
            "full_refresh_selection": update.request.get("full_refresh_selection") or [],
            "refresh_selection": update.request.get("refresh_selection") or [],
            "validate_only": bool(update.request.get("validate_only")),
            "explore_only": False,
        }
    }


def _update_progress(update: Update, ev: dict[str, Any], state: str) -> None:
    ev["message"] = f"Update {update.update_id[:6]} is {state}."
    ev["details"] = {"update_progress": {"state": state}}
    if state == "FAILED":
        ev["level"] = "ERROR"
        ev["error"] = _error(update)


def _flow_origin(update: Update, ev: dict[str, Any], flow: Flow) -> None:
    ev["origin"].update(
        flow_id=str(uuid.uuid5(_EVENT_NS, f"{update.pipeline_id}/{flow.name}")),
        flow_name=flow.name,
        dataset_name=flow.name,
    )


def _flow_definition(update: Update, ev: dict[str, Any], flow: Flow) -> None:
    _flow_origin(update, ev, flow)
    ev["message"] = f"Flow '{flow.name}' is defined as an ingestion flow."
    ev["details"] = {
        "flow_definition": {
            "output_dataset": flow.name,
            "flow_type": "INGESTION",
            "schema": [{"name": name, "data_type": kind} for name, kind in LANDED_SCHEMA],
        }
    }


def _flow_progress(update: Update, ev: dict[str, Any], flow: Flow, status: str, fraction: float | None = None) -> None:
    """A flow's status; COMPLETED and the partial batches (``fraction`` of its rows) carry row metrics."""
    _flow_origin(update, ev, flow)
    origin = ev["origin"]
    if update.connection_name:
        origin["ingestion_source_connection_name"] = update.connection_name
    for attr, key in _ORIGIN_SOURCE.items():
        value = getattr(flow, attr)
        if value:
            origin[key] = value
    ev["sequence"]["data_plane_id"] = {"instance": "execution", "seq_no": ev["sequence"]["control_plane_seq_no"]}
    verb = "has" if status in TERMINAL or status in ("STOPPED",) else "is"
    ev["message"] = f"Flow '{flow.name}' {verb} {status}."
    progress: dict[str, Any] = {"status": status}
    if status == "COMPLETED" or fraction is not None:
        n = rows_for(update.script, flow.name)
        if fraction is not None:
            n = int(n * fraction)
        progress["metrics"] = {"num_output_rows": n, "num_upserted_rows": n, "num_deleted_rows": 0}
        dq = (update.script.data_quality or {}).get(flow.name) or (update.script.data_quality or {}).get(
            flow.name.rsplit(".", 1)[-1]
        )
        if dq is not None:
            progress["data_quality"] = dq
    elif status == "FAILED":
        ev["level"] = "ERROR"
        ev["error"] = {**_error(update, flow), "fatal": False}
    ev["details"] = {"flow_progress": progress}
