"""Freshness: did the pipeline's latest COMPLETED update (started by anyone) end within ``max_age``?

One code path for a sensor's poke (``hook.run``) and the freshness trigger (``await hook.arun``). An update's end time
is not in ``UpdateInfo``: it is the timestamp of its ``update_progress`` COMPLETED event, read from the event log
within the window only, and remembered per update (it never changes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from airflow_provider_lakeflow.workspace import operations
from airflow_provider_lakeflow.workspace.messages import ApiRequest, Operation
from airflow_provider_lakeflow.workspace.progress import epoch_ms
from airflow_provider_lakeflow.workspace.waiting import Check, UpdateOutcome, poll

#: Updates read per check: the latest COMPLETED one is almost always among the newest few.
UPDATES_PER_CHECK = 25


@dataclass(frozen=True)
class FreshUpdate:
    update_id: str
    ended_ms: int


def _completed_at(events: list[dict]) -> int | None:
    for event in events:
        progress = (event.get("details") or {}).get("update_progress") or {}
        if event.get("event_type") == "update_progress" and progress.get("state") == "COMPLETED":
            return epoch_ms(event.get("timestamp") or "")
    return None


def fresh_update(pipeline_id: str, max_age: float, ended: dict[str, int | None]) -> Operation[FreshUpdate | None]:
    """The latest COMPLETED update if it ended within ``max_age`` seconds, else None.

    ``ended`` caches end times per update id (None: ended before an earlier cutoff, so before every later one).
    Costs one request, plus one event-log read the first time a COMPLETED update created before the cutoff is seen.
    """
    now_ms = int(time.time() * 1000)
    cutoff = now_ms - int(max_age * 1000)
    page = yield ApiRequest(
        "GET", f"{operations.PIPELINES}/{pipeline_id}/updates", query={"max_results": UPDATES_PER_CHECK}
    )
    latest = next((u for u in page.get("updates") or [] if u.get("state") == "COMPLETED"), None)
    if latest is None:
        return None
    update_id = str(latest["update_id"])
    if update_id not in ended:
        created = int(latest.get("creation_time") or 0)
        events = yield from operations.update_events(pipeline_id, update_id, since_ms=max(created, cutoff))
        ended[update_id] = _completed_at(events)
    end = ended[update_id]
    return FreshUpdate(update_id, end) if end is not None and end >= cutoff else None


def describe(pipeline_id: str, found: FreshUpdate) -> str:
    age = max(0.0, time.time() - found.ended_ms / 1000)
    return f"Update {found.update_id} of pipeline {pipeline_id} completed {age:.0f} s ago"


class FreshnessWait:
    """A wait for a fresh update of one pipeline (see :func:`wait_for_fresh_update`)."""

    __slots__ = ("ended", "found", "max_age", "pipeline_id")
    known_states = None

    def __init__(self, pipeline_id: str, max_age: float) -> None:
        self.pipeline_id = pipeline_id
        self.max_age = max_age
        #: end times per update id (see :func:`fresh_update`)
        self.ended: dict[str, int | None] = {}
        self.found: FreshUpdate | None = None

    def what(self) -> str:
        return f"Freshness of pipeline {self.pipeline_id} (a COMPLETED update within {self.max_age:.0f} s)"

    def phase(self) -> str | None:
        return None

    def check(self) -> Operation[Check]:
        found = yield from fresh_update(self.pipeline_id, self.max_age, self.ended)
        if found is None:
            return Check(None, "WAITING")
        self.found = found
        return Check("success", "COMPLETED", describe(self.pipeline_id, found))

    def outcome(self, result: Check) -> UpdateOutcome:
        found = self.found
        update_id = found.update_id if found is not None and result.verdict == "success" else ""
        return UpdateOutcome(str(result.verdict), self.pipeline_id, update_id, result.state, result.message)


def wait_for_fresh_update(
    pipeline_id: str, *, max_age: float, poll_interval: float, end_time: float | None, log: Any
) -> Operation[UpdateOutcome]:
    """Poll until the pipeline's latest COMPLETED update ended within ``max_age``, or ``end_time``."""
    return poll(FreshnessWait(pipeline_id, max_age), poll_interval=poll_interval, end_time=end_time, log=log)
