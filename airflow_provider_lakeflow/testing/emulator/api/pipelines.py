"""The workspace API of pipelines: create, get, edit, delete and list (a pipeline's updates are in ``updates``)."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from airflow_provider_lakeflow.spec.field_table import ENUMS
from airflow_provider_lakeflow.testing.emulator.api.listing import decode_token, encode_token, pipeline_filter
from airflow_provider_lakeflow.testing.emulator.api.spec_rules import validate_pipeline_edit, validate_pipeline_spec
from airflow_provider_lakeflow.testing.emulator.api.updates import UpdatesApi
from airflow_provider_lakeflow.testing.emulator.errors import already_exists, conflict, invalid
from airflow_provider_lakeflow.testing.emulator.lifecycle.script import TERMINAL
from airflow_provider_lakeflow.testing.emulator.model import (
    CONNECTION_TYPES,
    UI_ONLY_CONNECTION_TYPES,
    Pipeline,
    now_ms,
)

# Not part of PipelineSpec: write-only request fields.
_NOT_IN_SPEC = ("allow_duplicate_names", "dry_run", "parameters", "run_as", "expected_last_modified", "pipeline_id")
# Connection type -> IngestionSourceType, echoed (output only) in ingestion_definition.source_type: databricks-sdk
# names a source as its connection type, for the types a connection can have and the sign-in sources made in the UI.
_SOURCE_TYPES = {t: t for t in ENUMS["IngestionSourceType"] if t in CONNECTION_TYPES or t in UI_ONLY_CONNECTION_TYPES}
_PIPELINES_PAGE_MAX = 100


class PipelinesApi(UpdatesApi):
    def _spec(self, body: dict[str, Any], pipeline_id: str | None) -> dict[str, Any]:
        spec = {k: copy.deepcopy(v) for k, v in body.items() if k not in _NOT_IN_SPEC}
        if pipeline_id:
            spec["id"] = pipeline_id
        spec.setdefault("channel", "CURRENT")
        d = spec.get("ingestion_definition")
        if isinstance(d, dict):
            d.pop("source_type", None)
            conn = self._connections.get(str(d.get("connection_name") or "").lower())
            if conn and conn.connection_type in _SOURCE_TYPES:
                d["source_type"] = _SOURCE_TYPES[conn.connection_type]
            elif d.get("ingest_from_uc_foreign_catalog") is True:
                d["source_type"] = "FOREIGN_CATALOG"
        return spec

    def _connection_type(self, name: str) -> str | None:
        conn = self._connections.get(name.lower())
        return conn.connection_type if conn else None

    def _check_name(self, name: str, allow_duplicates: bool, exclude: str | None = None) -> None:
        others = (self._names.get(name) or set()) - {exclude}
        if name and others and not allow_duplicates:
            raise already_exists(
                f"A pipeline with name '{name}' already exists (pipeline_id {', '.join(sorted(others))}). "
                "Choose a different name or set allow_duplicate_names to true."
            )

    def _index(self, p: Pipeline, add: bool) -> None:
        ids = self._names.setdefault(p.name, set())
        if add:
            ids.add(p.pipeline_id)
        else:
            ids.discard(p.pipeline_id)
            if not ids:
                del self._names[p.name]

    def api_create_pipeline(self, body: dict[str, Any], user: str) -> dict[str, Any]:
        validate_pipeline_spec(body, self._connection_type)
        with self._lock:
            name = body.get("name") or ""
            self._check_name(name, body.get("allow_duplicate_names") is True)
            if body.get("dry_run") is True:
                return {"effective_settings": self._spec(body, None)}
            pid = str(uuid.uuid4())
            now = self.now()
            p = Pipeline(
                pid,
                self._spec(body, pid),
                copy.deepcopy(body.get("run_as")),
                copy.deepcopy(body.get("parameters")),
                user,
                now_ms(now),
            )
            self._pipelines[pid] = p
            self._index(p, True)
            if p.continuous:
                self._start(p, {}, "API_CALL")
            return {"pipeline_id": pid}

    def api_get_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        with self._lock:
            p = self._pipeline(pipeline_id)
            now = self.now()
            out = self._state_info(p, now)
            out["spec"] = p.spec
            out["last_modified"] = p.last_modified
            out["effective_publishing_mode"] = "DEFAULT_PUBLISHING_MODE"
            for key in ("run_as", "parameters"):
                if getattr(p, key) is not None:
                    out[key] = getattr(p, key)
            if p.spec.get("budget_policy_id"):
                out["effective_budget_policy_id"] = p.spec["budget_policy_id"]
            latest = p.updates[-1] if p.updates else None
            if latest is not None and latest.state(now) == "FAILED":
                out["cause"] = latest.fail_message or latest.script.error_message or "The latest update failed."
            return out

    def _state_info(self, p: Pipeline, now: float) -> dict[str, Any]:
        """PipelineStateInfo: the list endpoint's item and the base of GetPipelineResponse."""
        latest = p.updates[-1] if p.updates else None
        latest_state = latest.state(now) if latest else None
        if latest_state is None or latest_state in TERMINAL:
            state = "IDLE"
        elif latest_state == "STOPPING":
            state = "STOPPING"
        else:
            state = "RUNNING"
        run_as = p.run_as or {}
        out: dict[str, Any] = {
            "pipeline_id": p.pipeline_id,
            "name": p.name,
            "state": state,
            "health": "UNHEALTHY" if latest_state == "FAILED" else "HEALTHY",
            "creator_user_name": p.creator,
            "run_as_user_name": run_as.get("user_name") or run_as.get("service_principal_name") or p.creator,
        }
        if p.updates:
            out["latest_updates"] = [u.state_info(now) for u in reversed(p.updates[-5:])]
        return out

    def api_edit_pipeline(self, pipeline_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            p = self._pipeline(pipeline_id)
            if body.get("id") not in (None, pipeline_id):
                raise invalid(f"id: {body['id']!r} does not match the pipeline being edited ({pipeline_id}).")
            expected = body.get("expected_last_modified")
            if expected is not None and int(expected) != p.last_modified:
                raise conflict(
                    f"Pipeline {pipeline_id} was modified at {p.last_modified}, after expected_last_modified "
                    f"{expected}; read it again and retry."
                )
            validate_pipeline_spec(body, self._connection_type)
            validate_pipeline_edit(p.spec, body)
            name = body.get("name") or ""
            self._check_name(name, body.get("allow_duplicate_names") is True, exclude=pipeline_id)
            self._index(p, False)
            p.spec = self._spec(body, pipeline_id)
            self._index(p, True)
            if "run_as" in body:
                p.run_as = copy.deepcopy(body["run_as"])
            p.parameters = copy.deepcopy(body.get("parameters"))
            p.last_modified = max(now_ms(self.now()), p.last_modified + 1)
            return {}

    def api_delete_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        with self._lock:
            p = self._pipeline(pipeline_id)
            now = self.now()
            for u in p.updates:
                u.stop(now, immediately=True)
            self._index(p, False)
            del self._pipelines[pipeline_id]
            return {}

    def api_list_pipelines(
        self, filter_: str | None, max_results: int | None, order_by: list[str], page_token: str | None
    ) -> dict[str, Any]:
        size = 25 if max_results is None else max_results
        if size > _PIPELINES_PAGE_MAX or size < 1:
            raise invalid(f"max_results: must be between 1 and {_PIPELINES_PAGE_MAX}, got {size}.")
        if page_token:
            tok = decode_token(page_token)
            filter_, order = tok.get("f"), str(tok.get("o", "id asc"))
            offset = int(tok.get("n", 0))
        else:
            order = (order_by[0] if order_by else "id asc").strip().lower()
            offset = 0
        m = re.fullmatch(r"(id|name)(?:\s+(asc|desc))?", order)
        if not m:
            raise invalid(f"order_by: unsupported value {order!r}; use 'id asc', 'id desc', 'name asc' or 'name desc'.")
        pred = pipeline_filter(filter_)
        with self._lock:
            now = self.now()
            items = [p for p in self._pipelines.values() if pred(p.spec)]
            key = m.group(1)
            items.sort(
                key=(lambda p: p.pipeline_id) if key == "id" else (lambda p: (p.name, p.pipeline_id)),
                reverse=m.group(2) == "desc",
            )
            page = items[offset : offset + size]
            out: dict[str, Any] = {"statuses": [self._state_info(p, now) for p in page]}
        if offset + size < len(items):
            out["next_page_token"] = encode_token({"f": filter_, "o": order, "n": offset + size})
        return out
