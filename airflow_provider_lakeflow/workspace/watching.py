"""Watching a pipeline for landings, whoever starts its updates: one poll shared by every watcher of the pipeline.

Two halves, both free of I/O and of Airflow:

- :class:`PipelineWatch` is the poll (an operation for ``hook.arun``): one ``list_updates`` request, plus event-log
  reads only for updates that are running (when table landings are wanted) or that just ended, a bounded number per
  poll. It returns a :class:`Snapshot`: the pipeline's recent updates and what the event log said about each.
- :class:`Cursor` and :func:`update_events_due` / :func:`table_events_due` turn snapshots into the events one watcher
  owes its asset, exactly once: the cursor remembers which updates it has handled, starts from the updates already
  over when the watcher first ran (those never fire), and stays small (a floor below which nothing is pending).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lakeflow.workspace import operations
from airflow_provider_lakeflow.workspace.messages import ApiRequest, Operation
from airflow_provider_lakeflow.workspace.progress import epoch_ms

#: Updates listed per poll (newest first). An outage longer than this many updates fires the newest ones only.
UPDATES_PER_POLL = 25
#: Event-log reads per poll at most (each bounded by ``operations.MAX_EVENT_PAGES`` pages); more wait for the next poll.
EVENT_READS_PER_POLL = 4
#: Statuses of a flow that ended without landing its table in that update.
FLOW_NOT_LANDED = frozenset({"FAILED", "SKIPPED", "STOPPED", "EXCLUDED", "CANCELED"})
CURSOR_VERSION = 1


def normalize_table(name: str) -> str:
    """``Main.Sales.`Account``` -> ``main.sales.account``: how the event log and users may spell one table."""
    return ".".join(part.strip().strip("`").lower() for part in name.split("."))


@dataclass
class UpdateReading:
    """What the event log said about one update so far."""

    landed: dict[str, dict[str, Any]] = field(default_factory=dict)  # table -> metrics of its COMPLETED flow
    not_landed: dict[str, str] = field(default_factory=dict)  # table -> FAILED, SKIPPED, ...
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # operations.table_metrics, merged over reads
    final: bool = False  # read after the update ended: nothing more will land
    since_ms: int | None = None
    seen_ids: set[str] = field(default_factory=set)

    def absorb(self, events: Iterable[dict]) -> None:
        fresh = [e for e in events if e.get("id") not in self.seen_ids]
        for event in fresh:
            if event.get("id"):
                self.seen_ids.add(event["id"])
            stamp = epoch_ms(event.get("timestamp") or "")
            if stamp is not None and (self.since_ms is None or stamp > self.since_ms):
                self.since_ms = stamp
            progress = (event.get("details") or {}).get("flow_progress")
            origin = event.get("origin") or {}
            name = origin.get("dataset_name") or origin.get("flow_name")
            if not progress or not name:
                continue
            table, status = normalize_table(name), progress.get("status")
            if status == "COMPLETED" and table not in self.landed:
                metrics = progress.get("metrics") or {}
                self.landed[table] = {k: metrics[k] for k in operations.METRIC_KEYS if k in metrics}
            elif status in FLOW_NOT_LANDED:
                self.not_landed[table] = status
        for table, values in operations.table_metrics(fresh).items():
            self.metrics.setdefault(table, {}).update(values)


@dataclass(frozen=True)
class Snapshot:
    """One poll's view of a pipeline. ``pipeline_id`` None: no such pipeline (``problem`` says why)."""

    pipeline_id: str | None
    host: str
    updates: tuple[dict[str, Any], ...] = ()  # UpdateInfo dicts, newest first
    readings: dict[str, UpdateReading] = field(default_factory=dict)
    problem: str = ""
    polled_at_ms: int = 0


def _terminal(update: dict) -> bool:
    return update.get("state") in operations.TERMINAL_UPDATE_STATES


class PipelineWatch:
    """The shared poll of one pipeline (by id, or by exact name, re-resolved when the pipeline goes away).

    ``read_running``: read the event log of running updates (table watchers need landings as they happen); update
    watchers only need it once an update ended. ``wanted`` (update ids) are ended updates a watcher still needs the
    event log of, e.g. after a restart; the watch reads them once and keeps the result.
    """

    def __init__(self, *, pipeline_id: str | None, pipeline_name: str | None, host: str, read_running: bool) -> None:
        self.pipeline_id = pipeline_id
        self.pipeline_name = pipeline_name
        self.host = host
        self.read_running = read_running
        self._resolved: str | None = pipeline_id
        self._readings: dict[str, UpdateReading] = {}
        self._states: dict[str, str | None] = {}
        self._polled = False

    def poll(self, wanted: Collection[str] = ()) -> Operation[Snapshot]:
        from databricks.sdk.errors import NotFound

        now_ms = int(time.time() * 1000)
        if self._resolved is None:
            try:
                self._resolved = yield from operations.resolve_pipeline_id(None, self.pipeline_name)
            except operations.PipelineNotFound as exc:
                return Snapshot(None, self.host, problem=str(exc), polled_at_ms=now_ms)
        pipeline_id = self._resolved
        try:
            page = yield ApiRequest(
                "GET", f"{operations.PIPELINES}/{pipeline_id}/updates", query={"max_results": UPDATES_PER_POLL}
            )
        except NotFound:
            if self.pipeline_name:
                self._resolved = None  # deleted, perhaps re-created under the same name: look it up next time
            self._readings.clear()
            return Snapshot(None, self.host, problem=f"Pipeline {pipeline_id} does not exist", polled_at_ms=now_ms)
        updates = tuple(page.get("updates") or ())
        listed = {u["update_id"] for u in updates if u.get("update_id")}
        for gone in set(self._readings) - listed:
            del self._readings[gone]
        reads = 0
        for update in sorted(updates, key=_terminal):  # running updates first
            if reads >= EVENT_READS_PER_POLL:
                break
            update_id = update.get("update_id")
            if not update_id:
                continue
            reading = self._readings.get(update_id)
            if _terminal(update):
                # Ended since the last poll (seen running then, or not there at all): read its end once.
                ended_now = self._polled and self._states.get(update_id) not in operations.TERMINAL_UPDATE_STATES
                due = (reading is None or not reading.final) and (ended_now or update_id in wanted)
            else:
                due = self.read_running
            if not due:
                continue
            reading = self._readings.setdefault(update_id, UpdateReading())
            events = yield from operations.update_events(
                pipeline_id, update_id, since_ms=reading.since_ms or update.get("creation_time")
            )
            reading.absorb(events)
            reading.final = _terminal(update)
            reads += 1
        self._states = {u["update_id"]: u.get("state") for u in updates if u.get("update_id")}
        self._polled = True
        return Snapshot(pipeline_id, self.host, updates, dict(self._readings), polled_at_ms=now_ms)


# --- the per-watcher cursor ------------------------------------------------------------------------------------------


@dataclass
class Cursor:
    """Which updates one watcher has handled, kept in the asset's state store (JSON).

    ``floor_ms``: updates created before it are all handled; ``done``: handled updates at or above it. ``pipeline_id``
    None: the pipeline did not exist yet when the watcher first ran (so every update it ever has is new).
    """

    started_ms: int
    pipeline_id: str | None = None
    floor_ms: int = 0
    done: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": CURSOR_VERSION,
            "started_ms": self.started_ms,
            "pipeline_id": self.pipeline_id,
            "floor_ms": self.floor_ms,
            "done": list(self.done),
        }

    @classmethod
    def from_json(cls, value: Any) -> Cursor | None:
        if not isinstance(value, dict) or value.get("v") != CURSOR_VERSION:
            return None
        return cls(
            started_ms=int(value.get("started_ms") or 0),
            pipeline_id=value.get("pipeline_id"),
            floor_ms=int(value.get("floor_ms") or 0),
            done=[str(u) for u in value.get("done") or ()],
        )


def _start(cursor: Cursor | None, snapshot: Snapshot, over: Callable[[dict], bool], started_ms: int | None) -> Cursor:
    """The cursor to compare this snapshot with.

    A watcher's first cursor takes what was already over when the watcher started as history, not news: updates
    created before ``started_ms`` (default: this poll) that had ended (``over``) by the watcher's first look.
    """
    if cursor is None:
        started = snapshot.polled_at_ms if started_ms is None else started_ms
        cursor = Cursor(started_ms=started)
        if snapshot.pipeline_id is not None:
            cursor.pipeline_id = snapshot.pipeline_id
            cursor.done = [
                u["update_id"]
                for u in snapshot.updates
                if u.get("update_id") and (u.get("creation_time") or 0) < started and over(u)
            ]
        return cursor
    if snapshot.pipeline_id is not None and snapshot.pipeline_id != cursor.pipeline_id:
        # The pipeline appeared (or was re-created) after the watcher first ran: all of its updates are new.
        return Cursor(started_ms=cursor.started_ms, pipeline_id=snapshot.pipeline_id)
    return cursor


def _compact(cursor: Cursor, updates: Iterable[dict]) -> Cursor:
    live = [u for u in updates if (u.get("creation_time") or 0) >= cursor.floor_ms and u.get("update_id")]
    done = set(cursor.done)
    pending = [u["creation_time"] or 0 for u in live if u["update_id"] not in done]
    if pending:
        floor = min(pending)
    elif live:
        floor = max(u.get("creation_time") or 0 for u in live)
    else:
        floor = cursor.floor_ms
    kept = [u["update_id"] for u in live if u["update_id"] in done and (u.get("creation_time") or 0) >= floor]
    return Cursor(cursor.started_ms, cursor.pipeline_id, floor, kept)


@dataclass(frozen=True)
class Due:
    """What one snapshot means for one watcher: events to fire, the cursor after them, event logs still needed."""

    events: list[dict[str, Any]]
    cursor: Cursor
    wanted: frozenset[str] = frozenset()


def _fresh(cursor: Cursor, updates: Iterable[dict]) -> list[dict]:
    """Updates this watcher has not handled, oldest first."""
    done = set(cursor.done)
    out = [
        u
        for u in updates
        if u.get("update_id") and (u.get("creation_time") or 0) >= cursor.floor_ms and u["update_id"] not in done
    ]
    return sorted(out, key=lambda u: u.get("creation_time") or 0)


#: What a watcher makes of one update it has not handled: an event to fire, "done" (handled without an event),
#: "wanted" (its event log must be read first) or None (not yet: look again next poll).
Verdict = dict[str, Any] | str | None


def _events_due(
    cursor: Cursor | None,
    snapshot: Snapshot,
    started_ms: int | None,
    over: Callable[[dict], bool],
    judge: Callable[[dict, UpdateReading | None], Verdict],
) -> Due:
    """One watcher's pass over a snapshot: ``judge`` each update it has not handled, oldest first."""
    cursor = _start(cursor, snapshot, over, started_ms)
    if snapshot.pipeline_id is None:
        return Due([], cursor)
    events: list[dict[str, Any]] = []
    wanted: set[str] = set()
    done = list(cursor.done)
    for update in _fresh(cursor, snapshot.updates):
        update_id = update["update_id"]
        verdict = judge(update, snapshot.readings.get(update_id))
        if verdict == "wanted":
            wanted.add(update_id)
        elif isinstance(verdict, dict) or verdict == "done":
            events.extend([verdict] if isinstance(verdict, dict) else [])
            done.append(update_id)
    new = _compact(Cursor(cursor.started_ms, cursor.pipeline_id, cursor.floor_ms, done), snapshot.updates)
    return Due(events, new, frozenset(wanted))


def update_events_due(
    cursor: Cursor | None, snapshot: Snapshot, states: Collection[str], started_ms: int | None = None
) -> Due:
    """Updates that reached one of ``states`` and have not fired for this watcher yet (oldest first)."""

    def judge(update: dict, reading: UpdateReading | None) -> Verdict:
        if not _terminal(update):
            return None
        if update.get("state") not in states:
            return "done"
        if reading is None or not reading.final:
            return "wanted"  # fire once its table metrics are read (next poll at the latest)
        return {
            "pipeline_id": snapshot.pipeline_id,
            "update_id": update["update_id"],
            "state": update.get("state"),
            "cause": update.get("cause"),
            "update_url": operations.update_url(snapshot.host, str(snapshot.pipeline_id), update["update_id"]),
            "table_metrics": reading.metrics,
        }

    return _events_due(cursor, snapshot, started_ms, _terminal, judge)


def table_events_due(cursor: Cursor | None, snapshot: Snapshot, table: str, started_ms: int | None = None) -> Due:
    """Updates in which ``table``'s flow COMPLETED and that have not fired for this watcher yet (oldest first).

    A table fires as soon as its flow completed, whatever the update does afterwards (its data has landed). An
    update that ended without landing the table (its flow FAILED, was SKIPPED or STOPPED, or the update did not
    select it) is handled without an event.
    """
    table = normalize_table(table)

    def over(update: dict) -> bool:
        reading = snapshot.readings.get(update["update_id"])
        return _terminal(update) or (reading is not None and table in reading.landed)

    def judge(update: dict, reading: UpdateReading | None) -> Verdict:
        if reading is not None and table in reading.landed:
            metrics = reading.landed[table]
            return {
                "table": table,
                "pipeline_id": snapshot.pipeline_id,
                "update_id": update["update_id"],
                "update_url": operations.update_url(snapshot.host, str(snapshot.pipeline_id), update["update_id"]),
                **{key: metrics.get(key) for key in operations.METRIC_KEYS},
            }
        if _terminal(update):
            return "done" if reading is not None and reading.final else "wanted"  # ended without landing it
        return None

    return _events_due(cursor, snapshot, started_ms, over, judge)
