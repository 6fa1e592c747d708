"""Updates started on a schedule from outside Airflow, as a Databricks Jobs schedule with a ``pipeline_task`` does.

A schedule names its pipeline by id or name and is resolved at every tick, so it can be set before the pipeline
exists (a DAG creates it later). A tick while the pipeline already has an active update starts nothing and is
counted as skipped, as a Jobs run of a busy pipeline fails. Each schedule runs on its own daemon thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_lakeflow.testing.emulator.errors import ApiError
from airflow_provider_lakeflow.testing.emulator.lifecycle.update import Update
from airflow_provider_lakeflow.testing.emulator.model import Pipeline


class ScheduledWorkspace(Protocol):
    """What the schedules use of ``Workspace``: its lock, and starting an update as ``start_update`` does."""

    _lock: threading.RLock

    def _resolve(self, pipeline_id_or_name: str) -> Pipeline: ...

    def _start(self, p: Pipeline, body: dict[str, Any], cause: str) -> Update: ...


@dataclass
class Schedule:
    pipeline: str
    every_seconds: float
    cause: str
    count: int | None
    started: list[str] = field(default_factory=list)
    skipped: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def info(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "every_seconds": self.every_seconds,
            "cause": self.cause,
            "count": self.count,
            "started": list(self.started),
            "skipped": self.skipped,
        }


class UpdateScheduler:
    """The workspace's schedules (its control operations ``schedule_updates``, ``unschedule_updates``,
    ``schedules``); starts updates through the workspace, under its lock, with the same rules as ``start_update``."""

    def __init__(self, workspace: ScheduledWorkspace) -> None:
        self._workspace = workspace
        self._table: dict[str, Schedule] = {}

    def schedule(
        self,
        pipeline_id_or_name: str,
        every_seconds: float,
        *,
        cause: str = "JOB_TASK",
        count: int | None = None,
        first_in_seconds: float | None = None,
    ) -> None:
        """Start an update of the pipeline every ``every_seconds`` (the first after ``first_in_seconds``, default
        one period), ``count`` times or until unscheduled; replaces the pipeline's earlier schedule."""
        if isinstance(every_seconds, bool) or not isinstance(every_seconds, (int, float)) or every_seconds <= 0:
            raise ValueError(f"every_seconds must be a positive number, got {every_seconds!r}")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError(f"count must be a positive integer or None, got {count!r}")
        self.unschedule(pipeline_id_or_name)
        schedule = Schedule(pipeline_id_or_name, float(every_seconds), cause, count)
        first = float(every_seconds if first_in_seconds is None else first_in_seconds)
        with self._workspace._lock:
            self._table[pipeline_id_or_name] = schedule
        threading.Thread(
            target=self._run, args=(schedule, first), name=f"lakeflow-schedule-{pipeline_id_or_name}", daemon=True
        ).start()

    def _run(self, schedule: Schedule, wait: float) -> None:
        workspace = self._workspace
        while not schedule.stop.wait(wait):
            wait = schedule.every_seconds
            with workspace._lock:
                try:
                    update = workspace._start(workspace._resolve(schedule.pipeline), {}, schedule.cause)
                except ApiError:  # no such pipeline (yet), or an update is still active
                    schedule.skipped += 1
                    continue
                schedule.started.append(update.update_id)
                if schedule.count is not None and len(schedule.started) >= schedule.count:
                    return

    def unschedule(self, pipeline_id_or_name: str | None = None) -> None:
        """Stop one pipeline's schedule, or every schedule (None)."""
        with self._workspace._lock:
            names = list(self._table) if pipeline_id_or_name is None else [pipeline_id_or_name]
            for name in names:
                schedule = self._table.pop(name, None)
                if schedule is not None:
                    schedule.stop.set()

    def list(self) -> list[dict[str, Any]]:
        """Every schedule with the updates it started and the ticks it skipped."""
        with self._workspace._lock:
            return [s.info() for s in self._table.values()]
