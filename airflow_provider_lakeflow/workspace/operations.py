"""Workspace operations, written once for both paths: ``hook.run(op)`` or ``await hook.arun(op)``.

Each operation is a generator that yields :class:`ApiRequest` objects and receives decoded JSON. Multi-step logic
(pagination, exact name look-ups, reconciling a start whose response was lost) lives here, not in a transport.
Results are the plain JSON dicts of the REST API (field names as in databricks-sdk's dataclasses); states are kept as
the raw strings the server sent, because databricks-sdk turns an unknown enum value into ``None``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from airflow_provider_lakeflow.workspace.messages import AmbiguousRequestError, ApiRequest, Operation, Sleep

PIPELINES = "/api/2.0/pipelines"
CONNECTIONS = "/api/2.1/unity-catalog/connections"
TERMINAL_UPDATE_STATES = frozenset({"COMPLETED", "FAILED", "CANCELED"})
#: Pages of events read at most when collecting an update's errors or metrics (100 events a page).
MAX_EVENT_PAGES = 20


class PipelineNotFound(LookupError):
    """No pipeline has the id or name given."""


class AmbiguousPipelineName(LookupError):
    """Several pipelines share one name."""


def update_url(host: str, pipeline_id: str, update_id: str) -> str:
    return f"{host.rstrip('/')}/#joblist/pipelines/{pipeline_id}/updates/{update_id}"


def pipeline_url(host: str, pipeline_id: str) -> str:
    return f"{host.rstrip('/')}/#joblist/pipelines/{pipeline_id}"


def current_user() -> Operation[dict]:
    return (yield ApiRequest("GET", "/api/2.0/preview/scim/v2/Me"))


# --- pipelines ------------------------------------------------------------------------------------------------------


def escape_like(value: str) -> str:
    """Escape LIKE wildcards and quotes so that a name is matched literally (``a_b`` must not match ``axb``)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("'", "''")


def get_pipeline(pipeline_id: str) -> Operation[dict]:
    return (yield ApiRequest("GET", f"{PIPELINES}/{pipeline_id}"))


def find_pipelines_by_name(name: str) -> Operation[list[dict]]:
    """Every pipeline whose name is exactly ``name`` (the server's LIKE filter, then an exact comparison)."""
    found: list[dict] = []
    page_token: str | None = None
    while True:
        query: dict[str, Any] = {"filter": f"name LIKE '{escape_like(name)}'", "max_results": 100}
        if page_token:
            query["page_token"] = page_token
        page = yield ApiRequest("GET", PIPELINES, query=query)
        found.extend(p for p in page.get("statuses", []) if p.get("name") == name)
        page_token = page.get("next_page_token")
        if not page_token:
            return found


def resolve_pipeline_id(pipeline_id: str | None = None, pipeline_name: str | None = None) -> Operation[str]:
    if pipeline_id:
        return pipeline_id
    if not pipeline_name:
        raise ValueError("Give pipeline_id or pipeline_name.")
    matches = yield from find_pipelines_by_name(pipeline_name)
    if not matches:
        raise PipelineNotFound(
            f"No pipeline is named '{pipeline_name}'. Fix: check the name (it is matched exactly, case included) "
            "or create it first with LakeflowCreateIngestionPipelineOperator."
        )
    if len(matches) > 1:
        ids = ", ".join(sorted(p["pipeline_id"] for p in matches))
        raise AmbiguousPipelineName(
            f"{len(matches)} pipelines are named '{pipeline_name}' ({ids}). Fix: pass pipeline_id, or rename or delete "
            "the duplicates."
        )
    return matches[0]["pipeline_id"]


def create_pipeline(spec: dict) -> Operation[str]:
    """Create a pipeline; a lost response is reconciled by looking the name up instead of creating twice."""
    from databricks.sdk.errors import ResourceConflict

    request = ApiRequest("POST", PIPELINES, body=spec, idempotent=False)
    try:
        response = yield request
    except (AmbiguousRequestError, ResourceConflict) as exc:
        # A lost response, or another task creating the same pipeline at the same moment (the server refuses a
        # duplicate name): either way the pipeline with this name is the one wanted.
        matches = yield from find_pipelines_by_name(spec["name"])
        if len(matches) == 1:
            return matches[0]["pipeline_id"]
        if isinstance(exc, ResourceConflict):
            raise
        response = yield request
    return response["pipeline_id"]


def edit_pipeline(pipeline_id: str, spec: dict) -> Operation[None]:
    yield ApiRequest("PUT", f"{PIPELINES}/{pipeline_id}", body={**spec, "id": pipeline_id})


def delete_pipeline(pipeline_id: str) -> Operation[None]:
    yield ApiRequest("DELETE", f"{PIPELINES}/{pipeline_id}")


def stop_pipeline(pipeline_id: str) -> Operation[None]:
    yield ApiRequest("POST", f"{PIPELINES}/{pipeline_id}/stop")


def update_ids(pipeline: dict) -> set[str]:
    return {u["update_id"] for u in pipeline.get("latest_updates") or [] if u.get("update_id")}


def active_update(pipeline: dict) -> dict | None:
    """The pipeline's running update, from ``latest_updates`` (newest first), or None."""
    for update in pipeline.get("latest_updates") or []:
        if update.get("state") not in TERMINAL_UPDATE_STATES:
            return update
    return None


def start_update(
    pipeline_id: str,
    *,
    known_update_ids: Iterable[str] = (),
    full_refresh: bool = False,
    full_refresh_selection: Sequence[str] | None = None,
    refresh_selection: Sequence[str] | None = None,
    cause: str = "API_CALL",
) -> Operation[str]:
    """Start one update. If the response is lost, find the update it created rather than start another.

    ``known_update_ids`` are the pipeline's updates before this call (from ``get_pipeline``): an update that is
    not among them after a lost response is the one this call started.
    """
    body: dict[str, Any] = {"cause": cause, "full_refresh": bool(full_refresh)}
    if full_refresh_selection:
        body["full_refresh_selection"] = list(full_refresh_selection)
    if refresh_selection:
        body["refresh_selection"] = list(refresh_selection)
    known = set(known_update_ids)
    request = ApiRequest("POST", f"{PIPELINES}/{pipeline_id}/updates", body=body, idempotent=False)
    for attempt in range(3):
        try:
            response = yield request
            return response["update_id"]
        except AmbiguousRequestError:
            # Back off before looking: a request still in flight on the server gets a chance to land (and be found)
            # rather than race a repeated start, and a 503 storm is not hammered.
            yield Sleep(0.5 * 2**attempt)
            pipeline = yield from get_pipeline(pipeline_id)
            new = [u for u in pipeline.get("latest_updates") or [] if u.get("update_id") not in known]
            if new:
                return new[0]["update_id"]
    response = yield request
    return response["update_id"]


def get_update(pipeline_id: str, update_id: str) -> Operation[dict]:
    response = yield ApiRequest("GET", f"{PIPELINES}/{pipeline_id}/updates/{update_id}")
    return response.get("update") or {}


def latest_update_id(pipeline_id: str) -> Operation[str | None]:
    response = yield ApiRequest("GET", f"{PIPELINES}/{pipeline_id}/updates", query={"max_results": 1})
    updates = response.get("updates") or []
    return updates[0]["update_id"] if updates else None


# --- events ---------------------------------------------------------------------------------------------------------


def _rfc3339(epoch_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def update_events(
    pipeline_id: str, update_id: str, *, since_ms: int | None = None, level: str | None = None
) -> Operation[list[dict]]:
    """The raw events of one update (``details`` kept: databricks-sdk's dataclass drops it), oldest first.

    The events API cannot filter by update, so the read is bounded by the update's creation time and a page cap.
    """
    clauses = []
    if level:
        clauses.append(f"level='{level}'")
    if since_ms:
        clauses.append(f"timestamp >= '{_rfc3339(since_ms - 1000)}'")
    query: dict[str, Any] = {"max_results": 100}
    if clauses:
        query["filter"] = " AND ".join(clauses)
    events: list[dict] = []
    for _ in range(MAX_EVENT_PAGES):
        page = yield ApiRequest("GET", f"{PIPELINES}/{pipeline_id}/events", query=query)
        events.extend(e for e in page.get("events", []) if (e.get("origin") or {}).get("update_id") == update_id)
        token = page.get("next_page_token")
        if not token:
            break
        query = {"max_results": 100, "page_token": token}
    events.sort(key=lambda e: (e.get("timestamp") or "", (e.get("sequence") or {}).get("control_plane_seq_no") or 0))
    return events


def error_messages(events: Iterable[dict]) -> list[str]:
    """Human-readable errors of an update: the exceptions' messages, else the event messages, without repeats."""
    messages: list[str] = []
    for event in events:
        if event.get("level") != "ERROR":
            continue
        exceptions = (event.get("error") or {}).get("exceptions") or []
        texts = [e.get("message") for e in exceptions if e.get("message")] or [event.get("message")]
        for text in texts:
            if text and text not in messages:
                messages.append(text)
    return messages


def update_errors(pipeline_id: str, update_id: str, *, since_ms: int | None = None) -> Operation[list[str]]:
    events = yield from update_events(pipeline_id, update_id, since_ms=since_ms, level="ERROR")
    return error_messages(events)


METRIC_KEYS = ("num_output_rows", "num_upserted_rows", "num_deleted_rows")


def table_metrics(events: Iterable[dict]) -> dict[str, dict[str, Any]]:
    """Per destination table, the last reported metrics of its flow (``flow_progress`` events)."""
    result: dict[str, dict[str, Any]] = {}
    for event in events:
        progress = (event.get("details") or {}).get("flow_progress")
        if not progress:
            continue
        origin = event.get("origin") or {}
        table = origin.get("dataset_name") or origin.get("flow_name")
        if not table:
            continue
        entry = result.setdefault(table, {})
        if progress.get("status"):
            entry["status"] = progress["status"]
        metrics = progress.get("metrics") or {}
        for key in METRIC_KEYS:
            if key in metrics:
                entry[key] = metrics[key]
        if progress.get("data_quality"):
            entry["data_quality"] = progress["data_quality"]
    return result


def table_schemas(events: Iterable[dict]) -> dict[str, list[tuple[str, str]]]:
    """Per destination table, its columns as the update's ``flow_definition`` events announce them."""
    result: dict[str, list[tuple[str, str]]] = {}
    for event in events:
        definition = (event.get("details") or {}).get("flow_definition")
        if not definition or not definition.get("schema"):
            continue
        origin = event.get("origin") or {}
        table = definition.get("output_dataset") or origin.get("dataset_name") or origin.get("flow_name")
        if table:
            result[table] = [
                (str(field.get("name")), str(field.get("data_type") or field.get("type") or ""))
                for field in definition["schema"]
                if field.get("name")
            ]
    return result


# --- Unity Catalog connections ----------------------------------------------------------------------------------------


def get_connection(name: str) -> Operation[dict]:
    return (yield ApiRequest("GET", f"{CONNECTIONS}/{name}"))


def create_connection(body: dict) -> Operation[dict]:
    """Create a UC connection; a lost response is reconciled by reading the name instead of creating twice."""
    request = ApiRequest("POST", CONNECTIONS, body=body, idempotent=False)
    try:
        return (yield request)
    except AmbiguousRequestError:
        from databricks.sdk.errors import NotFound

        try:
            return (yield from get_connection(body["name"]))
        except NotFound:
            return (yield request)


def update_connection(name: str, body: dict) -> Operation[dict]:
    return (yield ApiRequest("PATCH", f"{CONNECTIONS}/{name}", body=body))
