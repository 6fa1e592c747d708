"""Event triggers for ``AssetWatcher`` (Airflow 3): a DAG runs when a Lakeflow update ends, or when a table lands.

Every watcher of one pipeline through one connection (and poll interval) shares one poll of the workspace: on
Airflow 3.3 through the triggerer's shared streams, in ack mode, so that a watcher's cursor (in its asset's state
store) moves only after the triggerer has stored the events it fired. On an Airflow 3 without shared streams each
watcher polls on its own (``run``), and without the asset state store the cursor lives in memory. On Airflow 2 the
module imports, and creating a trigger says that it needs Airflow 3.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Hashable
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow.airflow_versions import EVENT_SCHEDULING, watcher_note
from airflow_provider_lakeflow.errors import LakeflowInputError
from airflow_provider_lakeflow.triggers._watch_stream import LakeflowWatchProducer, StateStore, poll_forever
from airflow_provider_lakeflow.workspace.watching import Cursor, table_events_due, update_events_due

if TYPE_CHECKING:
    from airflow_provider_lakeflow.workspace.watching import Cursor, Due, Snapshot

_EventTriggerBase: type
if EVENT_SCHEDULING:
    from airflow.triggers.base import BaseEventTrigger

    _EventTriggerBase = BaseEventTrigger
else:  # Airflow 2: no event-driven scheduling
    _EventTriggerBase = BaseTrigger

TERMINAL_STATES = ("COMPLETED", "FAILED", "CANCELED")
CURSOR_KEY = "airflow_provider_lakeflow.cursor"


def require_event_scheduling(what: str) -> None:
    if not EVENT_SCHEDULING:
        from airflow import __version__ as airflow_version
        from airflow.providers.common.compat.sdk import AirflowException

        raise AirflowException(
            f"{what} needs Airflow 3 (event-driven scheduling: AssetWatcher and BaseEventTrigger); this is Airflow "
            f"{airflow_version}. On Airflow 2, schedule downstream DAGs on the Assets that "
            "LakeflowRunPipelineOperator(asset_alias=...) publishes instead."
        )


def _check_pipeline(pipeline_id: Any, pipeline_name: Any) -> None:
    given = [n for n, v in (("pipeline_id", pipeline_id), ("pipeline_name", pipeline_name)) if v is not None]
    if len(given) != 1:
        raise LakeflowInputError(
            "pipeline_id / pipeline_name: give exactly one of them (the pipeline's id, or its exact name), "
            f"got {' and '.join(given) or 'neither'}."
        )
    for field, value in (("pipeline_id", pipeline_id), ("pipeline_name", pipeline_name)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise LakeflowInputError(f"{field} must be a non-empty string, got {value!r}.")
        if isinstance(value, str) and "{{" in value:
            raise LakeflowInputError(
                f"{field} is not templated for a watcher (it runs outside any DAG run): give the value itself, "
                f"got {value!r}."
            )


def _check_common(databricks_conn_id: Any, poll_interval: Any) -> float:
    if not isinstance(databricks_conn_id, str) or not databricks_conn_id.strip():
        raise LakeflowInputError(f"databricks_conn_id must be a non-empty string, got {databricks_conn_id!r}.")
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) or poll_interval <= 0:
        raise LakeflowInputError(f"poll_interval must be a positive number of seconds, got {poll_interval!r}.")
    return float(poll_interval)


def check_table(table: Any) -> str:
    if (
        not isinstance(table, str)
        or len([p for p in table.split(".") if p.strip().strip("`")]) != 3
        or (table.count(".") != 2)
    ):
        raise LakeflowInputError(
            f"table must be the destination table as catalog.schema.table (e.g. 'main.sales.account'), got {table!r}."
        )
    return ".".join(part.strip().strip("`").lower() for part in table.split("."))


class LakeflowWatchTrigger(_EventTriggerBase):  # type: ignore[misc,valid-type]
    """What both watchers share: arguments, the shared poll, the cursor. Use one of the two subclasses."""

    read_running = False

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60,
    ) -> None:
        require_event_scheduling(type(self).__name__)
        _check_pipeline(pipeline_id, pipeline_name)
        self.poll_interval = _check_common(databricks_conn_id, poll_interval)
        super().__init__()
        self.pipeline_id = pipeline_id
        self.pipeline_name = pipeline_name
        self.databricks_conn_id = databricks_conn_id
        self._cursor: Cursor | None = None
        self._loaded = False
        self._wanted: frozenset[str] = frozenset()
        self._started_ms = int(time.time() * 1000)

    # -- what a subclass says ----------------------------------------------------------------------------------------
    def _kwargs(self) -> dict[str, Any]:
        return {
            "pipeline_id": self.pipeline_id,
            "pipeline_name": self.pipeline_name,
            "databricks_conn_id": self.databricks_conn_id,
            "poll_interval": self.poll_interval,
        }

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", self._kwargs()

    def _due(self, cursor: Cursor | None, snapshot: Snapshot) -> Due:
        """This watcher's events in a snapshot; a first cursor counts from when this trigger object was made (in the
        triggerer, that is when the watcher started)."""
        raise NotImplementedError

    def _cursor_key(self) -> str:
        return f"{CURSOR_KEY}:{type(self).__name__}:{self.pipeline_id or self.pipeline_name}"

    # -- one poll shared by the watchers of a pipeline ---------------------------------------------------------------
    def shared_stream_key(self) -> Hashable | None:
        return (
            "airflow_provider_lakeflow",
            "tables" if self.read_running else "updates",
            self.databricks_conn_id,
            self.pipeline_id,
            self.pipeline_name,
            self.poll_interval,
        )

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> Any:
        return LakeflowWatchProducer(kwargs, cls.read_running)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        producer = None
        try:
            async for raw in shared_stream:
                producer = raw.producer
                events, cursor = await self._take(raw.snapshot)
                producer.wanted[id(self)] = self._wanted
                if cursor is not None:
                    raw.producer.on_advance(raw.seq, self._saver(cursor))
                for payload in events:
                    yield TriggerEvent(payload)
        finally:
            if producer is not None:
                producer.wanted.pop(id(self), None)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Without shared streams (Airflow before 3.3): this watcher's own poll; the cursor is saved as it moves."""
        note = watcher_note(repr(self))
        if note:
            self.log.warning(note)
        async for snapshot in poll_forever(
            databricks_conn_id=self.databricks_conn_id,
            pipeline_id=self.pipeline_id,
            pipeline_name=self.pipeline_name,
            poll_interval=self.poll_interval,
            read_running=self.read_running,
            wanted=lambda: self._wanted,
        ):
            events, cursor = await self._take(snapshot)
            for payload in events:
                yield TriggerEvent(payload)
            if cursor is not None:
                try:
                    await self._saver(cursor)()
                except Exception:
                    self.log.exception("Could not store the watcher's cursor; it is stored with the next change")

    # -- the cursor ----------------------------------------------------------------------------------------------------
    def _store(self) -> StateStore:
        return StateStore(getattr(self, "asset_state_store", None), self._cursor_key())

    def _saver(self, cursor: Cursor) -> Callable[[], Awaitable[None]]:
        value = cursor.to_json()
        store = self._store()
        return lambda: store.save(value)

    async def _take(self, snapshot: Snapshot) -> tuple[list[dict[str, Any]], Cursor | None]:
        """The events this snapshot owes, and the new cursor to store (None: unchanged). Never raises."""
        try:
            if not self._loaded:
                self._cursor = Cursor.from_json(await self._store().load())
                self._loaded = True
            due = self._due(self._cursor, snapshot)
            events = due.events
            if events:
                events = await self._not_fired_elsewhere(events, snapshot)
        except Exception:
            self.log.exception("Watching %s: could not read the watcher's cursor; trying again next poll", self)
            return [], None
        changed = due.cursor != self._cursor
        self._cursor, self._wanted = due.cursor, due.wanted
        for payload in events:
            self.log.info("%s: firing for update %s", type(self).__name__, payload.get("update_id"))
        return events, (due.cursor if changed else None)

    async def _not_fired_elsewhere(self, events: list[dict[str, Any]], snapshot: Snapshot) -> list[dict[str, Any]]:
        """Drop events that another instance of this watcher already stored as fired (a re-parsed DAG whose old
        trigger still ran, or another triggerer during a failover): one read of the store, only when about to fire."""
        stored = Cursor.from_json(await self._store().load())
        if stored is None or stored.pipeline_id != snapshot.pipeline_id:
            return events
        created = {u.get("update_id"): u.get("creation_time") or 0 for u in snapshot.updates}
        done = set(stored.done)
        return [e for e in events if e["update_id"] not in done and created.get(e["update_id"], 0) >= stored.floor_ms]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.pipeline_id or self.pipeline_name!r}>"


class LakeflowUpdateEventTrigger(LakeflowWatchTrigger):
    """One event per update of the pipeline that reaches a state in ``states`` after the watcher first started.

    For ``AssetWatcher`` (Airflow 3). Payload: ``{"pipeline_id", "update_id", "state", "cause", "update_url",
    "table_metrics"}``, whoever started the update (a Databricks Jobs schedule, the UI, a DAG).

    :param pipeline_id: the pipeline's id (exactly one of this and ``pipeline_name``).
    :param pipeline_name: the pipeline's exact name; looked up when the watcher starts and again if it goes away.
    :param databricks_conn_id: the Airflow connection, read in the triggerer (never when the DAG file is parsed).
    :param poll_interval: seconds between polls; watchers of one pipeline and connection with the same interval
        share one poll (one ``list_updates`` request, plus one event-log read when an update ends).
    :param states: the update states that fire: any of COMPLETED, FAILED, CANCELED.
    """

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60,
        states: Collection[str] = ("COMPLETED",),
    ) -> None:
        if isinstance(states, str) or not states or any(s not in TERMINAL_STATES for s in states):
            raise LakeflowInputError(
                f"states must be a non-empty list of update end states ({', '.join(TERMINAL_STATES)}), got {states!r}."
            )
        self.states = [s for s in TERMINAL_STATES if s in set(states)]
        super().__init__(
            pipeline_id=pipeline_id,
            pipeline_name=pipeline_name,
            databricks_conn_id=databricks_conn_id,
            poll_interval=poll_interval,
        )

    def _kwargs(self) -> dict[str, Any]:
        return {**super()._kwargs(), "states": list(self.states)}

    def _due(self, cursor: Cursor | None, snapshot: Snapshot) -> Due:
        return update_events_due(cursor, snapshot, self.states, self._started_ms)

    def _cursor_key(self) -> str:
        return f"{super()._cursor_key()}:{','.join(self.states)}"


class LakeflowTableLandedTrigger(LakeflowWatchTrigger):
    """One event per update in which the destination ``table``'s flow COMPLETED, as soon as it did.

    For ``AssetWatcher`` (Airflow 3); :func:`airflow_provider_lakeflow.assets.lakeflow_table_asset` builds the Asset.
    Payload: ``{"table", "pipeline_id", "update_id", "update_url", "num_output_rows", "num_upserted_rows",
    "num_deleted_rows"}``. The table fires when its flow completes, even if the update fails later (its data
    landed); a flow that FAILED, was SKIPPED or STOPPED fires nothing for that update.

    :param table: the destination table, ``catalog.schema.table``.
    :param pipeline_id: the pipeline's id (exactly one of this and ``pipeline_name``).
    :param pipeline_name: the pipeline's exact name.
    :param databricks_conn_id: the Airflow connection, read in the triggerer.
    :param poll_interval: seconds between polls; the table watchers of one pipeline share one poll, which reads the
        event log only while an update runs.
    """

    read_running = True

    def __init__(
        self,
        *,
        table: str,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60,
    ) -> None:
        self.table = check_table(table)
        super().__init__(
            pipeline_id=pipeline_id,
            pipeline_name=pipeline_name,
            databricks_conn_id=databricks_conn_id,
            poll_interval=poll_interval,
        )

    def _kwargs(self) -> dict[str, Any]:
        return {"table": self.table, **super()._kwargs()}

    def _due(self, cursor: Cursor | None, snapshot: Snapshot) -> Due:
        return table_events_due(cursor, snapshot, self.table, self._started_ms)

    def _cursor_key(self) -> str:
        return f"{super()._cursor_key()}:{self.table}"
