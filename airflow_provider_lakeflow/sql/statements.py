"""The life cycle of one SQL statement, sans-IO: submit, poll, cancel, read a result chunk, raise for its end state.

Operations like those in :mod:`airflow_provider_lakeflow.workspace.operations`, run through ``LakeflowHook.run``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_lakeflow.sql.errors import (
    OperationalError,
    ProgrammingError,
    StatementCanceled,
    StatementFailed,
    StatementTimeout,
)
from airflow_provider_lakeflow.workspace.messages import ApiRequest, Operation, Sleep

log = logging.getLogger(__name__)

STATEMENTS = "/api/2.0/sql/statements"
RUNNING_STATES = frozenset({"PENDING", "RUNNING"})


@dataclass
class StatementOptions:
    """How a cursor submits and waits; set on the hook (see ``LakeflowSqlHook``)."""

    warehouse_id: str | None
    catalog: str | None = None
    schema: str | None = None
    wait_timeout: int = 10
    statement_timeout: float | None = 3600.0
    poll_interval: float = 2.0
    row_limit: int | None = None
    byte_limit: int | None = None

    def __post_init__(self) -> None:
        if self.wait_timeout != 0 and not 5 <= self.wait_timeout <= 50:
            raise ValueError(f"wait_timeout must be 0 or between 5 and 50 seconds, got {self.wait_timeout}.")
        if self.statement_timeout is not None and self.statement_timeout <= 0:
            raise ValueError(f"statement_timeout must be positive (seconds) or None, got {self.statement_timeout}.")
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {self.poll_interval}.")

    def submit_wait(self) -> int:
        """The server-side wait for the submit call: never longer than the statement's own time limit."""
        limit = self.statement_timeout
        if limit is None or limit >= self.wait_timeout:
            return self.wait_timeout
        return int(limit) if limit >= 5 else 0

    def body(self, sql: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
        if not self.warehouse_id:
            raise ProgrammingError(
                "No SQL warehouse id: pass warehouse_id= to LakeflowSqlHook (hook_params={'warehouse_id': ...} on a "
                "common-sql operator) or set the connection extra 'warehouse_id'."
            )
        body: dict[str, Any] = {
            "statement": sql,
            "warehouse_id": self.warehouse_id,
            "wait_timeout": f"{self.submit_wait()}s",
            "on_wait_timeout": "CONTINUE",
            "disposition": "INLINE",
            "format": "JSON_ARRAY",
        }
        if parameters:
            body["parameters"] = parameters
        for key in ("catalog", "schema", "row_limit", "byte_limit"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


def state_of(response: Mapping[str, Any]) -> str:
    return str((response.get("status") or {}).get("state") or "")


def run_statement(
    body: dict[str, Any],
    *,
    idempotent: bool,
    timeout: float | None,
    poll_interval: float,
    on_submitted: Callable[[str], None],
) -> Operation[dict[str, Any]]:
    """Submit, then poll until the statement is terminal; cancel it and raise when ``timeout`` passes."""
    started = time.monotonic()
    response = yield ApiRequest("POST", STATEMENTS, body=body, idempotent=idempotent)
    statement_id = str(response.get("statement_id") or "")
    on_submitted(statement_id)
    delay = min(0.1, poll_interval)
    logged = False
    while state_of(response) in RUNNING_STATES:
        elapsed = time.monotonic() - started
        if timeout is not None and elapsed >= timeout:
            yield from cancel_statement(statement_id)
            raise StatementTimeout(
                f"Statement {statement_id} was still {state_of(response)} after {elapsed:.1f}s (statement_timeout="
                f"{timeout:g}s); it was canceled."
            )
        if not logged:
            log.info("Statement %s is %s; polling for its result.", statement_id, state_of(response))
            logged = True
        pause = delay if timeout is None else max(0.0, min(delay, timeout - elapsed))
        yield Sleep(pause)
        delay = min(delay * 2, poll_interval)
        response = yield ApiRequest("GET", f"{STATEMENTS}/{statement_id}")
    return response


def cancel_statement(statement_id: str) -> Operation[None]:
    """Ask the warehouse to cancel; best effort (the statement may have finished meanwhile)."""
    try:
        yield ApiRequest("POST", f"{STATEMENTS}/{statement_id}/cancel", body={})
    except Exception as exc:
        log.warning("Could not cancel statement %s: %s", statement_id, exc)


def result_chunk(statement_id: str, chunk_index: int) -> Operation[dict[str, Any]]:
    return (yield ApiRequest("GET", f"{STATEMENTS}/{statement_id}/result/chunks/{chunk_index}"))


def raise_for_state(response: Mapping[str, Any]) -> None:
    status = response.get("status") or {}
    state = status.get("state")
    statement_id = str(response.get("statement_id") or "?")
    if state == "SUCCEEDED":
        return
    if state == "FAILED":
        error = status.get("error") or {}
        raise StatementFailed(
            statement_id,
            str(error.get("message") or "no error message"),
            error.get("error_code"),
            status.get("sql_state"),
        )
    if state in ("CANCELED", "CLOSED"):
        raise StatementCanceled(f"Statement {statement_id} ended {state} without a result.")
    raise OperationalError(f"Statement {statement_id} is in an unexpected state {state!r}.")
