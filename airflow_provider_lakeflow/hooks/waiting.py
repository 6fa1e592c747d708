"""Waiting for a pipeline update: one polling loop, driven by a worker (``hook.run``) or a trigger (``hook.arun``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
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


@dataclass(frozen=True)
class Check:
    """One poll's reading: ``verdict`` is "success", "failed" or None (keep waiting)."""

    verdict: str | None
    state: str | None
    message: str = ""


@dataclass(frozen=True)
class UpdateOutcome:
    """How a wait on an update ended; its dict is the trigger event's payload."""

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


def poll(
    check: Callable[[], Operation[Check]],
    *,
    what: str,
    poll_interval: float,
    end_time: float | None,
    log: Any,
    known_states: Collection[str] | None = None,
) -> Operation[Check]:
    """Call ``check`` until it gives a verdict or ``end_time`` (epoch seconds) passes; a timeout is verdict "timeout".

    Shared by every wait (worker or trigger). A state change is logged once, not once per poll; a state this provider
    does not know is logged raw and waited on like any running state. Transient faults that outlast the request layer's
    retries are logged and polled through, never reported as a failure.
    """
    last_state: object = object()
    state: str | None = None
    while True:
        try:
            result = yield from check()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("Polling %s failed (%s: %s); polling again", what, type(exc).__name__, exc)
        else:
            state = result.state
            if state != last_state:
                last_state = state
                if known_states is not None and state not in known_states:
                    log.warning("%s reports state %r, unknown to this provider: still waiting", what, state)
                else:
                    log.info("%s: %s", what, state)
            if result.verdict is not None:
                return result
        now = time.time()
        if end_time is not None and now >= end_time:
            return Check("timeout", state, f"{what} was still {state} at the deadline")
        pause = poll_interval if end_time is None else max(0.0, min(poll_interval, end_time - now))
        yield Sleep(pause)


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
    """Poll ``get_update`` (one request a poll) until a success or failure state, or ``end_time``.

    The event log is read once, at the end of a failure, for its error messages.
    """
    url = api.update_url(host, pipeline_id, update_id)
    created_ms: list[int | None] = [None]

    def check() -> Operation[Check]:
        update = yield from api.get_update(pipeline_id, update_id)
        state = update.get("state")
        created_ms[0] = update.get("creation_time") or created_ms[0]
        result = verdict(state, success_states, failure_states)
        if result == "failed":
            errors = yield from api.update_errors(pipeline_id, update_id, since_ms=created_ms[0])
            return Check("failed", state, describe_failure(pipeline_id, update_id, state, url, errors))
        return Check(result, state, f"Update {update_id} is {state}: {url}" if result else "")

    result = yield from poll(
        check,
        what=f"Update {update_id} of pipeline {pipeline_id}",
        poll_interval=poll_interval,
        end_time=end_time,
        log=log,
        known_states=KNOWN_UPDATE_STATES,
    )
    message = f"{result.message}: {url}" if result.verdict == "timeout" else result.message
    return UpdateOutcome(str(result.verdict), pipeline_id, update_id, result.state, message)
