"""An update's live account from the workspace, through ``LakeflowHook`` with the task's own connection.

Each answer is cached per (connection, pipeline, update): a page left open, or many users on one update, read the
workspace at most once per ``refresh_seconds`` (never more often than the triggerer polls the same update). A
finished update's account does not change and is kept longer.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import urlparse

from airflow_provider_lakeflow.hooks import LakeflowHook
from airflow_provider_lakeflow.workspace import operations

#: Shortest reuse of a running update's account (seconds), however fast the task polls.
MIN_REFRESH_SECONDS = 5.0
#: A running update whose poll interval is not known (a task waiting in its worker): the operators' default.
UNKNOWN_POLL_REFRESH_SECONDS = 30.0
FINISHED_REFRESH_SECONDS = 300.0
CACHE_ENTRIES = 256
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED"})
TERMINAL_FLOW = frozenset({"COMPLETED", "FAILED", "STOPPED", "SKIPPED", "EXCLUDED"})


class WorkspaceReadError(Exception):
    """The workspace could not be read; ``str()`` is a message fit for the page (no secret in it)."""


def refresh_seconds(poll_interval: Any) -> float:
    """How long a running update's account is reused: the deferred task's poll interval, never under 5 seconds.

    So a page left open reads the workspace no more often than the triggerer polls the same update.
    """
    try:
        seconds = float(poll_interval)
    except (TypeError, ValueError):
        return UNKNOWN_POLL_REFRESH_SECONDS
    return max(MIN_REFRESH_SECONDS, seconds)


def _epoch(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    import pendulum

    try:
        return pendulum.parse(timestamp).timestamp()  # type: ignore[union-attr]
    except Exception:
        return None


def flow_rows(events: list[dict]) -> list[dict[str, Any]]:
    """A row per destination table: status, rows written/upserted/deleted, first and last event, duration."""
    metrics = operations.table_metrics(events)
    seen: dict[str, dict[str, Any]] = {}
    for event in events:
        if not (event.get("details") or {}).get("flow_progress"):
            continue
        origin = event.get("origin") or {}
        table = origin.get("dataset_name") or origin.get("flow_name")
        if not table:
            continue
        moment = _epoch(event.get("timestamp"))
        entry = seen.setdefault(table, {"first": moment, "last": moment, "first_ts": event.get("timestamp")})
        entry["last"], entry["last_ts"] = moment, event.get("timestamp")
    rows = []
    for table, times in seen.items():
        values = metrics.get(table, {})
        status = values.get("status")
        duration = None
        if times["first"] is not None and times["last"] is not None:
            duration = round(times["last"] - times["first"], 3)
        rows.append(
            {
                "table": table,
                "status": status,
                "num_output_rows": values.get("num_output_rows"),
                "num_upserted_rows": values.get("num_upserted_rows"),
                "num_deleted_rows": values.get("num_deleted_rows"),
                "started": times["first_ts"],
                "ended": times.get("last_ts") if status in TERMINAL_FLOW else None,
                "duration_seconds": duration,
            }
        )
    # Landed tables first, in the order they landed; the rest after, by name.
    rows.sort(key=lambda r: (r["ended"] is None, r["ended"] or "", r["table"]))
    return rows


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _read(conn_id: str, pipeline_id: str, update_id: str) -> dict[str, Any]:
    hook = LakeflowHook(databricks_conn_id=conn_id)
    update = hook.run(operations.get_update(pipeline_id, update_id))
    since = update.get("creation_time")
    events = hook.run(operations.update_events(pipeline_id, update_id, since_ms=int(since) if since else None))
    return {
        "update": {
            "state": update.get("state"),
            "cause": update.get("cause"),
            "creation_time": update.get("creation_time"),
            "full_refresh": update.get("full_refresh"),
            "full_refresh_selection": update.get("full_refresh_selection"),
            "refresh_selection": update.get("refresh_selection"),
        },
        "tables": flow_rows(events),
        "messages": operations.error_messages(events),
    }


def host_of(conn_id: str) -> str | None:
    """The workspace host a connection points at (``None`` if it does not exist)."""
    try:
        conn = LakeflowHook.get_connection(conn_id)
    except Exception:
        return None
    host = conn.host or ""
    return (urlparse(host if "://" in host else f"https://{host}").hostname or "").lower() or None


class UpdateReader:
    """Cached reads of updates, shared by every request the api-server serves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str, str], tuple[float, dict[str, Any]]] = OrderedDict()
        self._key_locks: dict[tuple[str, str, str], threading.Lock] = {}
        self.reads = 0  # workspace reads done, for tests and the docs' claim about polling

    def read(self, conn_id: str, pipeline_id: str, update_id: str, refresh: float) -> dict[str, Any]:
        key = (conn_id, pipeline_id, update_id)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        # One read per key at a time: concurrent viewers of one update wait for the same answer.
        with key_lock:
            with self._lock:
                cached = self._entries.get(key)
            now = time.monotonic()
            if cached is not None and cached[0] > now:
                return cached[1]
            try:
                self.reads += 1
                answer = _read(conn_id, pipeline_id, update_id)
            except Exception as exc:
                raise WorkspaceReadError(self._message(conn_id, exc)) from None
            keep = FINISHED_REFRESH_SECONDS if answer["update"]["state"] in TERMINAL else refresh
            answer["fetched_at"] = time.time()
            with self._lock:
                self._entries[key] = (now + keep, answer)
                self._entries.move_to_end(key)
                while len(self._entries) > CACHE_ENTRIES:
                    old, _ = self._entries.popitem(last=False)
                    self._key_locks.pop(old, None)
            return answer

    @staticmethod
    def _message(conn_id: str, exc: Exception) -> str:
        secrets: list[str] = []
        try:
            conn = LakeflowHook.get_connection(conn_id)
            secrets = [conn.password or "", conn.login or ""]
        except Exception:
            pass
        detail = _scrub(str(exc), secrets)[:500]
        return f"Could not read the update from the workspace (connection {conn_id!r}): {type(exc).__name__}: {detail}"


READER = UpdateReader()
