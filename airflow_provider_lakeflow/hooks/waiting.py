"""Waiting for a pipeline update: one polling loop, driven by a worker (``hook.run``) or a trigger (``hook.arun``)."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_lakeflow.hooks import api
from airflow_provider_lakeflow.hooks._protocol import Operation, Sleep, is_connection_failure

#: Every update state databricks-sdk 0.162.0 knows. Anything else is logged raw and treated as still running.
KNOWN_UPDATE_STATES = frozenset(
    {
        "CANCELED",
        "COMPLETED",
        "CREATED",
        "FAILED",
        "INITIALIZING",
        "QUEUED",
        "RESETTING",
        "RUNNING",
        "SETTING_UP_TABLES",
        "STOPPING",
        "WAITING_FOR_RESOURCES",
    }
)
EVENT_STATUSES = frozenset({"success", "failed", "timeout", "error"})


@dataclass(frozen=True)
class UpdateOutcome:
    """How a wait ended; its dict is the trigger event's payload."""

    status: str  # success | failed | timeout | error
    pipeline_id: str
    update_id: str
    state: str | None
    message: str

    def as_event(self) -> dict:
        return asdict(self)


def is_transient(exc: BaseException) -> bool:
    """A fault worth polling through: the request layer already retried it and ran out of its own budget."""
    if is_connection_failure(exc):
        return True
    try:
        from databricks.sdk import errors
    except ImportError:  # pragma: no cover
        return False
    transient = (errors.TooManyRequests, errors.TemporarilyUnavailable, errors.InternalError, errors.DeadlineExceeded)
    return isinstance(exc, transient) or type(exc) is errors.DatabricksError


def verdict(state: str | None, success_states: Collection[str], failure_states: Collection[str]) -> str | None:
    if state in success_states:
        return "success"
    if state in failure_states:
        return "failed"
    return None


def describe_failure(
    pipeline_id: str, update_id: str, state: str | None, url: str, errors: list[str], extra: str = ""
) -> str:
    text = f"Update {update_id} of pipeline {pipeline_id} ended in state {state}. See {url}"
    if extra:
        text += f". {extra}"
    if errors:
        text += "\nErrors from the pipeline's event log:\n" + "\n".join(f"- {e}" for e in errors)
    return text


def wait_for_update(
    pipeline_id: str,
    update_id: str,
    *,
    host: str,
    poll_interval: float,
    end_time: float | None,
    success_states: Collection[str] = ("COMPLETED",),
    failure_states: Collection[str] = ("FAILED", "CANCELED"),
    log: Any,
) -> Operation[UpdateOutcome]:
    """Poll ``get_update`` until a success or failure state, or ``end_time`` (epoch seconds).

    One request a poll; the event log is read once, at the end, for a failure's error messages. Transient faults that
    outlast the request layer's retries are logged and polled through, never reported as a failure. A state change is
    logged once, not once per poll.
    """
    url = api.update_url(host, pipeline_id, update_id)
    last_state: object = object()
    state: str | None = None
    created_ms: int | None = None
    while True:
        try:
            update = yield from api.get_update(pipeline_id, update_id)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("Polling update %s failed (%s: %s); polling again", update_id, type(exc).__name__, exc)
        else:
            state = update.get("state")
            created_ms = update.get("creation_time") or created_ms
            if state != last_state:
                last_state = state
                if state not in KNOWN_UPDATE_STATES:
                    log.warning("Update %s reports state %r, unknown to this provider: still waiting", update_id, state)
                else:
                    log.info("Update %s of pipeline %s: %s", update_id, pipeline_id, state)
            result = verdict(state, success_states, failure_states)
            if result == "success":
                return UpdateOutcome("success", pipeline_id, update_id, state, f"Update {update_id} is {state}: {url}")
            if result == "failed":
                errors = yield from api.update_errors(pipeline_id, update_id, since_ms=created_ms)
                message = describe_failure(pipeline_id, update_id, state, url, errors)
                return UpdateOutcome("failed", pipeline_id, update_id, state, message)
        now = time.time()
        if end_time is not None and now >= end_time:
            message = f"Update {update_id} of pipeline {pipeline_id} was still {state} at the deadline: {url}"
            return UpdateOutcome("timeout", pipeline_id, update_id, state, message)
        pause = poll_interval if end_time is None else max(0.0, min(poll_interval, end_time - now))
        yield Sleep(pause)
