"""The shared poll behind the Lakeflow watchers, and where their cursors are kept.

``poll_forever`` is the poll loop (one ``PipelineWatch`` driven by ``hook.arun``); on Airflow 3.3 it runs once per
shared stream inside ``LakeflowWatchProducer`` (ack mode), which writes the watchers' cursors (``StateStore``: the
watched Asset's state store) only once the triggerer has stored the events fired before them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook
from airflow_provider_lakeflow.workspace.waiting import is_transient
from airflow_provider_lakeflow.workspace.watching import PipelineWatch

if TYPE_CHECKING:
    from airflow_provider_lakeflow.workspace.watching import Snapshot

try:
    from airflow.triggers.shared_stream import SharedStreamProducer
except ImportError:  # Airflow before 3.3: every watcher polls on its own
    SharedStreamProducer = None  # type: ignore[assignment,misc]

log = logging.getLogger(__name__)


class StateStore:
    """The cursor in the watched asset's state store (Airflow 3.3); a trigger without one keeps it in memory."""

    def __init__(self, accessors: Any, key: str) -> None:
        self.accessors = accessors
        self.key = key

    def _each(self) -> list[Any]:
        if self.accessors is None:
            return []
        try:
            return [self.accessors._single_accessor()]
        except ValueError:  # one trigger watched by several assets: keep the cursor on each
            return [*getattr(self.accessors, "_by_name", {}).values(), *getattr(self.accessors, "_by_uri", {}).values()]

    async def load(self) -> Any:
        for accessor in self._each():
            value = await accessor.aget(self.key)
            if value is not None:
                return value
        return None

    async def save(self, value: Any) -> None:
        for accessor in self._each():
            await accessor.aset(self.key, value)


async def poll_forever(
    *,
    databricks_conn_id: str,
    pipeline_id: str | None,
    pipeline_name: str | None,
    poll_interval: float,
    read_running: bool,
    wanted: Callable[[], Collection[str]],
) -> AsyncIterator[Snapshot]:
    """The shared poll: a snapshot every ``poll_interval`` seconds, forever. Faults are logged and polled through,
    never raised (a raising watcher would be restarted by the triggerer at once, again and again)."""
    hook = LakeflowHook(databricks_conn_id=databricks_conn_id)
    what = f"pipeline {pipeline_id or repr(pipeline_name)}"
    watch: PipelineWatch | None = None
    problem = ""
    async with hook.session_scope():
        while True:
            snapshot = None
            try:
                if watch is None:
                    host = (await hook.aconfig()).host
                    watch = PipelineWatch(
                        pipeline_id=pipeline_id, pipeline_name=pipeline_name, host=host, read_running=read_running
                    )
                snapshot = await hook.arun(watch.poll(wanted()))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
                if text != problem:
                    level = logging.WARNING if is_transient(exc) else logging.ERROR
                    log.log(level, "Watching %s failed (%s); polling again in %ss", what, text, poll_interval)
                problem = text
            else:
                if snapshot.problem != problem:
                    if snapshot.problem:
                        log.warning("Watching %s: %s; nothing fires until it exists", what, snapshot.problem)
                    elif problem:
                        log.info("Watching %s: polling again normally", what)
                problem = snapshot.problem
            if snapshot is not None:
                yield snapshot
            await asyncio.sleep(poll_interval)


class _Raw:
    """One snapshot as the shared stream carries it, with the producer that will commit cursors after it."""

    __slots__ = ("producer", "seq", "snapshot")

    def __init__(self, seq: int, snapshot: Snapshot, producer: Any) -> None:
        self.seq, self.snapshot, self.producer = seq, snapshot, producer


if SharedStreamProducer is not None:

    class LakeflowWatchProducer(SharedStreamProducer):
        """Ack mode: the shared poll, and cursor writes held back until the triggerer stored the events before them.

        A subscriber registers the write of its new cursor against the snapshot it came from; ``advance`` runs those
        writes once every subscriber's events from that snapshot (and all earlier ones) are in the metadata DB.
        """

        def __init__(self, kwargs: dict[str, Any], read_running: bool) -> None:
            self.kwargs = kwargs
            self.read_running = read_running
            self.commits: dict[int, list[Callable[[], Awaitable[None]]]] = {}
            self.wanted: dict[int, Collection[str]] = {}

        def all_wanted(self) -> set[str]:
            return {update_id for ids in self.wanted.values() for update_id in ids}

        async def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
            seq = 0
            async for snapshot in poll_forever(
                databricks_conn_id=self.kwargs.get("databricks_conn_id") or DEFAULT_CONN_ID,
                pipeline_id=self.kwargs.get("pipeline_id"),
                pipeline_name=self.kwargs.get("pipeline_name"),
                poll_interval=float(self.kwargs.get("poll_interval") or 60),
                read_running=self.read_running,
                wanted=self.all_wanted,
            ):
                seq += 1
                yield _Raw(seq, snapshot, self), seq

        async def advance(self, batch: Any) -> None:
            for item in batch:
                commits = self.commits.pop(item.broker_payload, [])
                if item.outcome.failed:
                    # An event was not stored in time: keep the old cursor; the next write carries the state on.
                    log.warning(
                        "A watcher event of snapshot %s was not stored; its cursor is not moved", item.broker_payload
                    )
                    continue
                for commit in commits:
                    try:
                        await commit()
                    except Exception:
                        log.exception("Could not store a Lakeflow watcher's cursor; it is stored with the next change")

        def on_advance(self, seq: int, commit: Callable[[], Awaitable[None]]) -> None:
            self.commits.setdefault(seq, []).append(commit)
else:  # Airflow before 3.3
    LakeflowWatchProducer = None  # type: ignore[assignment,misc]
