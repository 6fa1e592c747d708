"""The FastAPI app the api-server mounts under ``/lakeflow``: the bundle, and the two JSON reads the pages make.

Airflow does not authenticate plugin apps, so every route depends on Airflow's own auth: ``GetUserDep`` (a signed-in
user, from the UI's cookie or a bearer token) and, for the data, read access to the DAG asked about
(``requires_access_dag``) or the list of DAGs the user may read. No answer carries a secret: connections are named
by id only, and workspace errors are turned into a message with the connection's secrets removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import AssetDetails, DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse

from airflow_provider_lakeflow.ui import metastore
from airflow_provider_lakeflow.ui.workspace import READER, WorkspaceReadError, host_of, refresh_seconds

WWW = Path(__file__).parent / "www"
STATIC = {
    "main.umd.cjs": (WWW / "dist" / "main.umd.cjs", "text/javascript"),
    "lakeflow.svg": (WWW / "icons" / "lakeflow.svg", "image/svg+xml"),
    "lakeflow-dark.svg": (WWW / "icons" / "lakeflow-dark.svg", "image/svg+xml"),
}
DEFAULT_CONN_ID = "databricks_default"
#: Recent updates per pipeline on the pipelines page.
UPDATES_PER_PIPELINE = 20


def _update_host(update_url: str | None) -> str | None:
    return (urlparse(update_url).hostname or "").lower() or None if update_url else None


def task_connection(session: Any, ti: dict[str, Any]) -> tuple[str | None, str]:
    """The connection to read this task's update with, and how it was found.

    A deferred task's trigger names its connection. A finished task's connection is not in Airflow's database (the
    serialized DAG keeps only template fields), so the one connection of our types whose host is the update's
    host is used; never a connection to another workspace.
    """
    trigger_conn = ti["trigger"].get("databricks_conn_id")
    if trigger_conn:
        return trigger_conn, "the deferred task's trigger"
    host = _update_host(ti["xcom"].get("update_url") or (ti["xcom"].get("failure") or {}).get("update_url"))
    if host is None:
        return None, "no update URL in the task's XCom"
    candidates = dict.fromkeys([DEFAULT_CONN_ID, *metastore.lakeflow_connection_ids(session)])
    matching = [conn_id for conn_id in candidates if host_of(conn_id) == host]
    if len(matching) == 1:
        return matching[0], f"the only connection to {host}"
    if not matching:
        return None, f"no Airflow connection points at {host}"
    return None, f"several connections point at {host} ({', '.join(sorted(matching))}); the task's is not recorded"


def _failure(xcom: dict[str, Any]) -> dict[str, Any] | None:
    failure = xcom.get("failure")
    if not isinstance(failure, dict):
        return None
    keys = ("category", "error_classes", "tables", "fix", "update_url", "update_id", "state", "messages")
    return {key: failure.get(key) for key in keys}


def _follow_up(xcom: dict[str, Any]) -> dict[str, Any] | None:
    remedied = xcom.get("remedied")
    if not isinstance(remedied, dict):
        return None
    keys = ("failed_update_id", "update_id", "update_url", "full_refresh_selection", "error_classes", "reason")
    return {key: remedied.get(key) for key in keys}


def task_instance_view(session: Any, dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any]:
    ti = metastore.task_instance(session, dag_id, run_id, task_id, map_index)
    if ti is None:
        raise HTTPException(404, f"No task instance {dag_id}/{run_id}/{task_id}[{map_index}]")
    xcom, trigger = ti["xcom"], ti["trigger"]
    failure = xcom.get("failure") or {}
    pipeline_id = xcom.get("pipeline_id") or trigger.get("pipeline_id") or failure.get("pipeline_id")
    update_id = xcom.get("update_id") or trigger.get("update_id")
    refresh = refresh_seconds(trigger.get("poll_interval"))
    view: dict[str, Any] = {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": map_index,
        "task_state": ti["state"],
        "operator": ti["operator"],
        "is_lakeflow": bool(pipeline_id or update_id or (ti["operator"] or "").startswith("Lakeflow")),
        "pipeline_id": pipeline_id,
        "update_id": update_id,
        "update_url": xcom.get("update_url") or (xcom.get("failure") or {}).get("update_url"),
        "xcom_state": xcom.get("state"),
        "failure": _failure(xcom),
        "follow_up": _follow_up(xcom),
        "update": None,
        "tables": [],
        "messages": [],
        "original": None,
        "workspace_error": None,
        "connection": None,
        "refresh_seconds": refresh,
    }
    if not (pipeline_id and update_id):
        return view
    conn_id, why = task_connection(session, ti)
    view["connection"] = {"conn_id": conn_id, "found_by": why}
    if conn_id is None:
        view["workspace_error"] = f"Cannot read the update from the workspace: {why}."
        return view
    try:
        live = READER.read(conn_id, pipeline_id, update_id, refresh)
        view.update(update=live["update"], tables=live["tables"], messages=live["messages"])
        follow_up = view["follow_up"]
        if follow_up and follow_up.get("failed_update_id") and follow_up["failed_update_id"] != update_id:
            original = READER.read(conn_id, pipeline_id, follow_up["failed_update_id"], refresh)
            view["original"] = {"update_id": follow_up["failed_update_id"], **original}
    except WorkspaceReadError as exc:
        view["workspace_error"] = str(exc)
    return view


def _run_entry(run: dict[str, Any]) -> dict[str, Any]:
    xcom = run["xcom"]
    failure = xcom.get("failure") if isinstance(xcom.get("failure"), dict) else {}
    state = xcom.get("state") or failure.get("state")
    if state is None and run["task_state"] in ("failed", "upstream_failed"):
        state = "FAILED"
    if state is None and run["task_state"] in ("running", "deferred", "queued", "scheduled", "up_for_reschedule"):
        state = "RUNNING"
    metrics = xcom.get("table_metrics") if isinstance(xcom.get("table_metrics"), dict) else {}
    return {
        "source": "task",
        "update_id": xcom.get("update_id"),
        "update_url": xcom.get("update_url"),
        "state": state,
        "started_by": f"Airflow: {run['dag_id']}.{run['task_id']}",
        "dag_id": run["dag_id"],
        "run_id": run["run_id"],
        "task_id": run["task_id"],
        "map_index": run["map_index"],
        "time": run["start_date"],
        "end_time": run["end_date"],
        "duration_seconds": run["duration_seconds"],
        "failure_category": failure.get("category"),
        "rows": {table: values.get("num_output_rows") for table, values in metrics.items() if isinstance(values, dict)},
    }


def _event_entry(event: dict[str, Any]) -> dict[str, Any]:
    payload = event["payload"]
    rows: dict[str, Any] = {}
    if isinstance(payload.get("table_metrics"), dict):
        rows = {t: v.get("num_output_rows") for t, v in payload["table_metrics"].items() if isinstance(v, dict)}
    elif payload.get("table"):
        rows = {payload["table"]: payload.get("num_output_rows")}
    return {
        "source": "asset_event",
        "update_id": payload.get("update_id"),
        "update_url": payload.get("update_url"),
        "state": payload.get("state") or ("COMPLETED" if payload.get("table") else None),
        "started_by": payload.get("cause") or "outside Airflow",
        "asset_uri": event["asset_uri"],
        "time": event["timestamp"],
        "end_time": event["timestamp"],
        "duration_seconds": None,
        "failure_category": None,
        "rows": rows,
    }


def _merge(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per update: an Airflow task's account wins; watcher events add the tables they saw."""
    merged: dict[str, dict[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: e["source"] != "task"):
        existing = merged.get(entry["update_id"])
        if existing is None:
            merged[entry["update_id"]] = {**entry, "rows": dict(entry["rows"])}
            continue
        for table, rows in entry["rows"].items():
            existing["rows"].setdefault(table, rows)
        if existing["state"] is None:
            existing["state"] = entry["state"]
    return sorted(merged.values(), key=lambda e: e["time"] or "", reverse=True)


def pipelines_view(session: Any, user: Any, failed_only: bool) -> dict[str, Any]:
    auth_manager = get_auth_manager()
    readable = auth_manager.get_authorized_dag_ids(user=user, method="GET")
    per_pipeline: dict[str, list[dict[str, Any]]] = {}
    for run in metastore.recent_runs(session, readable):
        pipeline_id = run["xcom"].get("pipeline_id") or (run["xcom"].get("failure") or {}).get("pipeline_id")
        per_pipeline.setdefault(str(pipeline_id), []).append(_run_entry(run))
    allowed_assets: dict[int, bool] = {}
    for event in metastore.recent_watcher_events(session):
        asset_id = event["asset_id"]
        if asset_id not in allowed_assets:
            allowed_assets[asset_id] = auth_manager.is_authorized_asset(
                method="GET", details=AssetDetails(id=str(asset_id)), user=user
            )
        if allowed_assets[asset_id]:
            per_pipeline.setdefault(event["payload"]["pipeline_id"], []).append(_event_entry(event))
    pipelines = []
    for pipeline_id, entries in per_pipeline.items():
        updates = _merge(entries)
        if failed_only:
            updates = [u for u in updates if u["state"] in ("FAILED", "CANCELED")]
        if not updates:
            continue
        dags = sorted({u["dag_id"] for u in updates if u.get("dag_id")})
        assets = sorted({u["asset_uri"] for u in updates if u.get("asset_uri")})
        pipelines.append(
            {"pipeline_id": pipeline_id, "dags": dags, "assets": assets, "updates": updates[:UPDATES_PER_PIPELINE]}
        )
    pipelines.sort(key=lambda p: p["updates"][0]["time"] or "", reverse=True)
    return {"pipelines": pipelines, "failed_only": failed_only}


def create_app() -> FastAPI:
    app = FastAPI(title="Lakeflow Connect views", description="The Lakeflow pages' reads (Airflow UI plugin).")

    @app.get("/static/{name}")
    def static(name: str, user: GetUserDep) -> FileResponse:
        if name not in STATIC:
            raise HTTPException(404, "Not found")
        path, media_type = STATIC[name]
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})

    @app.get(
        "/api/task-instance",
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))],
    )
    def task_instance(
        session: SessionDep,
        dag_id: Annotated[str, Query()],
        run_id: Annotated[str, Query()],
        task_id: Annotated[str, Query()],
        map_index: Annotated[int, Query()] = -1,
    ) -> dict[str, Any]:
        return task_instance_view(session, dag_id, run_id, task_id, map_index)

    @app.get("/api/pipelines")
    def pipelines(session: SessionDep, user: GetUserDep, failed_only: bool = False) -> dict[str, Any]:
        return pipelines_view(session, user, failed_only)

    return app
