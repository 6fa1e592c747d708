"""Waiting for a pipeline update: one polling loop, driven by a worker (``hook.run``) or a trigger (``hook.arun``)."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, Protocol, cast

from airflow_provider_lakeflow.workspace import operations
from airflow_provider_lakeflow.workspace.messages import Operation, Sleep, is_connection_failure
from airflow_provider_lakeflow.workspace.progress import TableProgress

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


class Check(NamedTuple):
    """One poll's reading: ``verdict`` is "success", "failed" or None (keep waiting)."""

    verdict: str | None
    state: str | None
    message: str = ""


class _Outcome:
    """How a wait ended; its fields are the trigger event's payload."""

    def as_event(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class UpdateOutcome(_Outcome):
    """How a wait on an update ended."""

    status: str  # success | failed | timeout | error
    pipeline_id: str
    update_id: str
    state: str | None
    message: str


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


#: How often a running update's per-table progress is read from the event log (one extra request each time).
DEFAULT_PROGRESS_INTERVAL = 60.0


class PolledWait(Protocol):
    """One wait's own fields, as one record: what :func:`poll` checks on each poll and how its result reads.

    A sleeping wait keeps its record and the suspended :func:`poll` (one generator), not a closure's cells, a
    generator per layer or per-wait helpers: the collector walks whatever every sleeping wait keeps.
    """

    @property
    def known_states(self) -> Collection[str] | None:
        """The states this provider knows for what is polled (None: any); a class attribute in each wait."""
        ...

    def what(self) -> str:
        """What is polled, for the log (made when a line is logged, not kept through a sleep)."""
        ...

    def phase(self) -> str | None:
        """The subject whose polls share a slot of the interval (see :func:`poll`), or None."""
        ...

    def check(self) -> Operation[Check]: ...

    def outcome(self, result: Check) -> Any: ...


def poll(wait: PolledWait, *, poll_interval: float, end_time: float | None, log: Any) -> Operation[Any]:
    """Run ``wait.check()`` until it gives a verdict or ``end_time`` (epoch seconds) passes (verdict "timeout"), and
    return ``wait.outcome(result)``.

    Shared by every wait (worker or trigger). A state change is logged once, not once per poll; a state this provider
    does not know is logged raw and waited on like any running state. Transient faults that outlast the request layer's
    retries are logged and polled through, never reported as a failure.

    ``wait.phase()`` names what is polled (e.g. the update): on the event loop, polls of one subject then happen
    together (sharing one request) and polls of different subjects spread over the interval, the first one included.
    """
    last_state: object = _NO_STATE
    state: str | None = None
    phase = wait.phase()
    if phase is not None:
        yield Sleep(0.0, phase, poll_interval)
    while True:
        try:
            result = yield from wait.check()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("Polling %s failed (%s: %s); polling again", wait.what(), type(exc).__name__, exc)
        else:
            state = result.state
            if state != last_state:
                last_state = state
                if wait.known_states is not None and state not in wait.known_states:
                    log.warning("%s reports state %r, unknown to this provider: still waiting", wait.what(), state)
                else:
                    log.info("%s: %s", wait.what(), state)
            if result.verdict is not None:
                return wait.outcome(result)
            del result  # not kept through the sleep
        now = time.time()
        if end_time is not None and now >= end_time:
            return wait.outcome(Check("timeout", state, f"{wait.what()} was still {state} at the deadline"))
        pause = poll_interval if end_time is None else max(0.0, min(poll_interval, end_time - now))
        yield Sleep(pause, phase, poll_interval) if pause == poll_interval else Sleep(pause)


#: ``poll``'s "no state read yet": differs from every state, None included.
_NO_STATE = object()


class UpdateWait:
    """A wait on one update (see :func:`wait_for_update`): its fields, and one poll's reading of the update."""

    __slots__ = (
        "created_ms",
        "failure_states",
        "log",
        "pipeline_id",
        "progress",
        "progress_interval",
        "success_states",
        "update_id",
        "url",
    )
    known_states = KNOWN_UPDATE_STATES

    def __init__(
        self,
        pipeline_id: str,
        update_id: str,
        url: str,
        success_states: Collection[str],
        failure_states: Collection[str],
        log: Any,
        progress_interval: float | None,
    ) -> None:
        self.pipeline_id = pipeline_id
        self.update_id = update_id
        self.url = url
        self.success_states = success_states
        self.failure_states = failure_states
        self.log = log
        self.progress_interval = progress_interval
        #: built at the first RUNNING poll when progress is read at all
        self.progress: TableProgress | None = None
        self.created_ms: int | None = None

    def what(self) -> str:
        return f"Update {self.update_id} of pipeline {self.pipeline_id}"

    def phase(self) -> str | None:
        return f"update {self.pipeline_id}/{self.update_id}"

    def check(self) -> Operation[Check]:
        pipeline_id, update_id = self.pipeline_id, self.update_id
        update = yield from operations.get_update(pipeline_id, update_id)
        state = update.get("state")
        self.created_ms = update.get("creation_time") or self.created_ms
        if state == "RUNNING" and self.progress_interval is not None:
            if self.progress is None:
                self.progress = TableProgress(self.log)
            progress = self.progress
            if progress.due(self.progress_interval):
                events = yield from operations.update_events(
                    pipeline_id, update_id, since_ms=progress.since_ms or self.created_ms
                )
                progress.report(events)
        result = verdict(state, self.success_states, self.failure_states)
        if result == "failed":
            errors = yield from operations.update_errors(pipeline_id, update_id, since_ms=self.created_ms)
            return Check("failed", state, describe_failure(pipeline_id, update_id, state, self.url, errors))
        return Check(result, state, f"Update {update_id} is {state}: {self.url}" if result else "")

    def outcome(self, result: Check) -> UpdateOutcome:
        message = f"{result.message}: {self.url}" if result.verdict == "timeout" else result.message
        return UpdateOutcome(str(result.verdict), self.pipeline_id, self.update_id, result.state, message)


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
    progress_interval: float | None = DEFAULT_PROGRESS_INTERVAL,
) -> Operation[UpdateOutcome]:
    """Poll ``get_update`` (one request a poll) until a success or failure state, or ``end_time``.

    While the update is RUNNING, the event log is read at most every ``progress_interval`` seconds (None: never) to
    log rows per destination table; and once at the end of a failure for its error messages.
    """
    wait = UpdateWait(
        pipeline_id,
        update_id,
        operations.update_url(host, pipeline_id, update_id),
        success_states,
        failure_states,
        log,
        progress_interval,
    )
    return poll(wait, poll_interval=poll_interval, end_time=end_time, log=log)


# --- Unity Catalog connections ----------------------------------------------------------------------------------------

#: ``provisioning_info.state`` values databricks-sdk 0.162.0 knows, plus this provider's NOT_FOUND (no connection yet).
NOT_FOUND = "NOT_FOUND"
CONNECTION_WAITING_STATES = frozenset({NOT_FOUND, "PROVISIONING", "UPDATING"})
CONNECTION_FAILURE_STATES = frozenset({"FAILED", "DELETING"})
KNOWN_CONNECTION_STATES = frozenset({"ACTIVE", "DEGRADED", *CONNECTION_WAITING_STATES, *CONNECTION_FAILURE_STATES})
_CONNECTION_FIXES = {
    "FAILED": "check the connection's host, port, credentials and network access in Catalog Explorer (Catalog > "
    "External Data > Connections), then update or recreate it.",
    "DELETING": "the connection is being deleted; recreate it (LakeflowCreateConnectionOperator, or Catalog Explorer "
    "for sign-in sources) before running this again.",
}


@dataclass(frozen=True)
class ConnectionOutcome(_Outcome):
    """How a wait on a connection ended."""

    status: str  # success | failed | timeout | error
    connection_name: str
    state: str | None
    message: str


def _server_message(info: dict) -> str:
    """Any explanation the server attached to the provisioning state (not in databricks-sdk's model, kept raw)."""
    provisioning = info.get("provisioning_info") or {}
    for key in ("message", "state_message", "status_message", "error_message"):
        text = provisioning.get(key) if isinstance(provisioning, dict) else None
        if text:
            return str(text)
    return ""


def connection_verdict(name: str, info: dict) -> Check:
    """Read one ``ConnectionInfo``: ACTIVE, DEGRADED or no provisioning state succeed; FAILED and DELETING fail.

    DEGRADED succeeds: the connection exists and was provisioned, and Databricks does not say it is unusable; the
    message carries a warning instead. Anything else (PROVISIONING, UPDATING, a state unknown to this provider) waits.
    """
    provisioning = info.get("provisioning_info")
    state = provisioning.get("state") if isinstance(provisioning, dict) else None
    kind = info.get("connection_type") or "connection"
    if state is None:
        return Check("success", None, f"Connection '{name}' ({kind}) exists and reports no provisioning state: ready")
    if state == "ACTIVE":
        return Check("success", state, f"Connection '{name}' ({kind}) is ACTIVE: ready")
    if state == "DEGRADED":
        return Check(
            "success",
            state,
            f"Connection '{name}' ({kind}) is DEGRADED: treated as ready, but pipelines using it may fail; check it "
            "in Catalog Explorer (Catalog > External Data > Connections)",
        )
    if state in CONNECTION_FAILURE_STATES:
        text = f"Connection '{name}' ({kind}) is {state}"
        server = _server_message(info)
        if server:
            text += f": {server}"
        return Check("failed", state, f"{text}. Fix: {_CONNECTION_FIXES[state]}")
    return Check(None, state)


def check_connection(name: str) -> Operation[Check]:
    """One poll of a connection; a 404 is state NOT_FOUND (keep waiting), not an error."""
    from databricks.sdk.errors import NotFound

    try:
        info = yield from operations.get_connection(name)
    except NotFound:
        return Check(None, NOT_FOUND, f"Connection '{name}' does not exist yet")
    return connection_verdict(name, info)


class ConnectionWait:
    """A wait on one Unity Catalog connection (see :func:`wait_for_connection`)."""

    __slots__ = ("log", "name")
    #: None: a connection without provisioning info, which is ready (no warning about an unknown state).
    known_states = cast("Collection[str]", frozenset({*KNOWN_CONNECTION_STATES, None}))

    def __init__(self, name: str, log: Any) -> None:
        self.name = name
        self.log = log

    def what(self) -> str:
        return f"Connection '{self.name}'"

    def phase(self) -> str | None:
        return f"connection {self.name}"

    def check(self) -> Operation[Check]:
        return check_connection(self.name)

    def outcome(self, result: Check) -> ConnectionOutcome:
        if result.verdict == "success" and result.state == "DEGRADED":
            self.log.warning("%s", result.message)
        return ConnectionOutcome(str(result.verdict), self.name, result.state, result.message)


def wait_for_connection(
    name: str, *, poll_interval: float, end_time: float | None, log: Any
) -> Operation[ConnectionOutcome]:
    """Poll ``get_connection`` (one request a poll) until the connection is ready or has failed, or ``end_time``."""
    return poll(ConnectionWait(name, log), poll_interval=poll_interval, end_time=end_time, log=log)
