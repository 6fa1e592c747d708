"""The events an update writes to its pipeline's event log, rendered from its plan (``update.Update.plan``).

``UpdateEvents`` is a mixin of ``Update``: each planned ``(offset, kind, data)`` becomes one event dict in the wire
format of ``GET /pipelines/{id}/events`` (plus ``_ms``, the emulator's own sort key, never sent).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from airflow_provider_lakeflow.testing.emulator.lifecycle.conditions import Fired
from airflow_provider_lakeflow.testing.emulator.lifecycle.script import TERMINAL, Flow, Script, rows_for

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


def format_timestamp(epoch_seconds: float) -> str:
    """RFC 3339 with milliseconds and ``Z``, as the event log writes it."""
    ms = int(epoch_seconds * 1000)
    d = dt.datetime.fromtimestamp(ms // 1000, tz=dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


class UpdateEvents:
    """Event rendering for ``Update`` (which holds these fields)."""

    update_id: str
    pipeline_id: str
    created: float
    cause: str
    config: dict[str, Any]
    request: dict[str, Any]
    script: Script
    fail_message: str | None
    connection_name: str | None
    conditions: tuple[Fired, ...]

    def _error(self, flow: Flow | None = None) -> dict[str, Any]:
        """The error of a failed flow (``flow``) or of the update: a scripted condition's message when there is one."""
        own = [c for c in self.conditions if flow is not None and c.flow == flow]
        update_level = [c for c in self.conditions if c.flow is None] or list(self.conditions)
        scripted = own or ([] if flow is not None else update_level)
        message = scripted[0].message if scripted else self.fail_message or self.script.error_message or DEFAULT_ERROR
        return {"fatal": True, "exceptions": [{"class_name": EXCEPTION_CLASS, "message": message}]}

    def _event(self, index: int, offset: float, kind: str, data: Any, pipeline_name: str, seq: int) -> dict[str, Any]:
        """One planned ``(offset, kind, data)`` as an event: the envelope here, the rest by kind."""
        ts = self.created + offset
        origin: dict[str, Any] = {
            "pipeline_id": self.pipeline_id,
            "pipeline_name": pipeline_name,
            "update_id": self.update_id,
        }
        ev: dict[str, Any] = {
            "id": str(uuid.uuid5(_EVENT_NS, f"{self.update_id}/{index}")),
            "sequence": {"control_plane_seq_no": seq},
            "timestamp": format_timestamp(ts),
            "level": "INFO",
            "maturity_level": "STABLE",
            "event_type": kind,
            "origin": origin,
            "_ms": int(ts * 1000),
        }
        if kind == "create_update":
            self._create_update(ev)
        elif kind == "update_progress":
            self._update_progress(ev, data)
        elif kind == "flow_definition":
            self._flow_definition(ev, data[0])
        else:
            self._flow_progress(ev, *data)
        return ev

    def _create_update(self, ev: dict[str, Any]) -> None:
        ev["message"] = f"Update {self.update_id[:6]} started by {self.cause}."
        ev["details"] = {
            "create_update": {
                "cause": self.cause,
                "config": self.config,
                "full_refresh": bool(self.request.get("full_refresh")),
                "full_refresh_selection": self.request.get("full_refresh_selection") or [],
                "refresh_selection": self.request.get("refresh_selection") or [],
                "validate_only": bool(self.request.get("validate_only")),
                "explore_only": False,
            }
        }

    def _update_progress(self, ev: dict[str, Any], state: str) -> None:
        ev["message"] = f"Update {self.update_id[:6]} is {state}."
        ev["details"] = {"update_progress": {"state": state}}
        if state == "FAILED":
            ev["level"] = "ERROR"
            ev["error"] = self._error()

    def _flow_origin(self, ev: dict[str, Any], flow: Flow) -> None:
        ev["origin"].update(
            flow_id=str(uuid.uuid5(_EVENT_NS, f"{self.pipeline_id}/{flow.name}")),
            flow_name=flow.name,
            dataset_name=flow.name,
        )

    def _flow_definition(self, ev: dict[str, Any], flow: Flow) -> None:
        self._flow_origin(ev, flow)
        ev["message"] = f"Flow '{flow.name}' is defined as an ingestion flow."
        ev["details"] = {
            "flow_definition": {
                "output_dataset": flow.name,
                "flow_type": "INGESTION",
                "schema": [{"name": name, "data_type": kind} for name, kind in LANDED_SCHEMA],
            }
        }

    def _flow_progress(self, ev: dict[str, Any], flow: Flow, status: str, fraction: float | None = None) -> None:
        """A flow's status; COMPLETED and the partial batches (``fraction`` of its rows) carry row metrics."""
        self._flow_origin(ev, flow)
        origin = ev["origin"]
        if self.connection_name:
            origin["ingestion_source_connection_name"] = self.connection_name
        for attr, key in _ORIGIN_SOURCE.items():
            value = getattr(flow, attr)
            if value:
                origin[key] = value
        ev["sequence"]["data_plane_id"] = {"instance": "execution", "seq_no": ev["sequence"]["control_plane_seq_no"]}
        verb = "has" if status in TERMINAL or status in ("STOPPED",) else "is"
        ev["message"] = f"Flow '{flow.name}' {verb} {status}."
        progress: dict[str, Any] = {"status": status}
        if status == "COMPLETED" or fraction is not None:
            n = rows_for(self.script, flow.name)
            if fraction is not None:
                n = int(n * fraction)
            progress["metrics"] = {"num_output_rows": n, "num_upserted_rows": n, "num_deleted_rows": 0}
            dq = (self.script.data_quality or {}).get(flow.name) or (self.script.data_quality or {}).get(
                flow.name.rsplit(".", 1)[-1]
            )
            if dq is not None:
                progress["data_quality"] = dq
        elif status == "FAILED":
            ev["level"] = "ERROR"
            ev["error"] = {**self._error(flow), "fatal": False}
        ev["details"] = {"flow_progress": progress}
