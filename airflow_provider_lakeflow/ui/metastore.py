"""What Airflow's database knows about our updates: the operators' XCom, a deferred task's trigger, watchers' events.

Read by the api-server for the Lakeflow views; nothing here calls the workspace. The XCom keys are the public ones
(docs: API.md): ``pipeline_id``, ``update_id``, ``update_url``, ``state``, ``table_metrics``, ``failure``,
``remedied``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

XCOM_KEYS = ("pipeline_id", "update_id", "update_url", "state", "table_metrics", "failure", "remedied")
#: The most recent rows the pipelines page reads: bounded so an old deployment's history costs one small query.
RECENT_TASKS = 500
RECENT_ASSET_EVENTS = 500


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def task_instance(session: Session, dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any] | None:
    """The task instance's state, times, our XCom and, while it is deferred, its trigger's arguments."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.models.xcom import XComModel

    ti = session.scalar(
        select(TaskInstance).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
        )
    )
    if ti is None:
        return None
    rows = session.execute(
        select(XComModel.key, XComModel.value).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.task_id == task_id,
            XComModel.map_index == map_index,
            XComModel.key.in_(XCOM_KEYS),
        )
    ).all()
    xcom = {row.key: XComModel.deserialize_value(row) for row in rows}
    trigger: dict[str, Any] = {}
    if ti.trigger_id is not None:
        row = session.get(Trigger, ti.trigger_id)
        if row is not None:
            trigger = dict(row.kwargs)
    return {
        "state": str(ti.state) if ti.state else None,
        "operator": ti.operator,
        "start_date": _iso(ti.start_date),
        "end_date": _iso(ti.end_date),
        "try_number": ti.try_number,
        "xcom": xcom,
        "trigger": trigger,
    }


def recent_runs(session: Session, dag_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Our operators' updates in the readable DAGs, newest first, one entry per task instance with an update."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel

    dag_ids = list(dag_ids)
    if not dag_ids:
        return []
    keyed = (
        select(XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.map_index)
        .where(XComModel.key == "update_id", XComModel.dag_id.in_(dag_ids))
        .order_by(XComModel.timestamp.desc())
        .limit(RECENT_TASKS)
    ).subquery()
    rows = session.execute(
        select(
            XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.map_index, XComModel.key, XComModel.value
        )
        .join(
            keyed,
            (XComModel.dag_id == keyed.c.dag_id)
            & (XComModel.run_id == keyed.c.run_id)
            & (XComModel.task_id == keyed.c.task_id)
            & (XComModel.map_index == keyed.c.map_index),
        )
        .where(XComModel.key.in_(XCOM_KEYS))
    ).all()
    by_task: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        by_task.setdefault((row.dag_id, row.run_id, row.task_id, row.map_index), {})[row.key] = (
            XComModel.deserialize_value(row)
        )
    if not by_task:
        return []
    tis = session.execute(
        select(
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.state,
            TaskInstance.start_date,
            TaskInstance.end_date,
        ).where(TaskInstance.dag_id.in_({key[0] for key in by_task}), TaskInstance.run_id.in_({k[1] for k in by_task}))
    ).all()
    ti_rows = {(t.dag_id, t.run_id, t.task_id, t.map_index): t for t in tis}
    runs = []
    for key, xcom in by_task.items():
        pipeline_id = xcom.get("pipeline_id") or (xcom.get("failure") or {}).get("pipeline_id")
        if not pipeline_id or not xcom.get("update_id"):
            continue
        ti = ti_rows.get(key)
        runs.append(
            {
                "dag_id": key[0],
                "run_id": key[1],
                "task_id": key[2],
                "map_index": key[3],
                "task_state": str(ti.state) if ti is not None and ti.state else None,
                "start_date": _iso(ti.start_date) if ti is not None else None,
                "end_date": _iso(ti.end_date) if ti is not None else None,
                # How long the task waited for its update: the page's duration for an Airflow-started update.
                "duration_seconds": (ti.end_date - ti.start_date).total_seconds()
                if ti is not None and ti.start_date and ti.end_date
                else None,
                "xcom": xcom,
            }
        )
    runs.sort(key=lambda r: r["start_date"] or "", reverse=True)
    return runs


def recent_watcher_events(session: Session) -> list[dict[str, Any]]:
    """Asset events our watchers' triggers fired (their payload names a pipeline and an update), newest first."""
    from airflow.models.asset import AssetEvent, AssetModel

    rows = session.execute(
        select(AssetEvent.id, AssetEvent.asset_id, AssetEvent.extra, AssetEvent.timestamp, AssetModel.uri)
        .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
        .order_by(AssetEvent.timestamp.desc())
        .limit(RECENT_ASSET_EVENTS)
    ).all()
    events = []
    for row in rows:
        extra = row.extra or {}
        payload = extra.get("payload") if isinstance(extra, dict) else None
        if not extra.get("from_trigger") or not isinstance(payload, dict):
            continue
        if not payload.get("pipeline_id") or not payload.get("update_id"):
            continue
        events.append(
            {"asset_id": row.asset_id, "asset_uri": row.uri, "timestamp": _iso(row.timestamp), "payload": payload}
        )
    return events


def lakeflow_connection_ids(session: Session) -> list[str]:
    """Connections of our types stored in the metastore (candidates when a finished task's connection is unknown)."""
    from airflow.models.connection import Connection

    rows = session.scalars(select(Connection.conn_id).where(Connection.conn_type.in_(("lakeflow", "databricks"))))
    return list(rows)
