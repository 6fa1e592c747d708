"""The one retry loop (hooks/_retrying.py), driven step by step with an injected clock and jitter.

These are counts of steps the sans-IO plan asks for (sends, sleeps, token refreshes), for scripted responses; the same
plan runs under ``hook.run`` and ``hook.arun``, which tests/test_faults.py and tests/test_auth_modes.py exercise
against the emulator over real HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from databricks.sdk import errors

from airflow_provider_lakeflow._engine.responses import RawResponse
from airflow_provider_lakeflow._engine.retrying import RefreshAuth, RetryPolicy, Send, plan
from airflow_provider_lakeflow.workspace import operations
from airflow_provider_lakeflow.workspace.messages import (
    AmbiguousRequestError,
    ApiRequest,
    ConnectionLost,
    RequestNotSent,
    Sleep,
)

JITTER = 0.25


def _raw(status: int, body: dict[str, Any] | None = None, **headers: str) -> RawResponse:
    content = json.dumps(body if body is not None else {}).encode()
    return RawResponse(status, "", {k.replace("_", "-"): v for k, v in headers.items()}, content, "http://w/x", "GET")


OK = _raw(200, {"ok": True})
THROTTLED = _raw(429, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}, Retry_After="2")
SERVER = _raw(500, {"error_code": "INTERNAL_ERROR", "message": "boom"})
EXPIRED = _raw(401, {"error_code": "UNAUTHENTICATED", "message": "expired"})


def single(request: ApiRequest) -> Any:
    return (yield request)


def drive(operation: Any, responses: list[Any], retry_timeout: float = 60.0) -> tuple[Any, list[Any]]:
    """Carry the plan's steps out against scripted responses; a Sleep advances the injected clock."""
    clock = [100.0]
    steps = plan(
        operation,
        lambda: RetryPolicy(retry_timeout, clock=lambda: clock[0], uniform=lambda a, b: JITTER),
    )
    seen: list[Any] = []
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(reply) if error is None else steps.throw(error)
        except StopIteration as done:
            return done.value, seen
        reply = error = None
        if isinstance(step, Send):
            seen.append("send")
            answer = responses.pop(0)
            if isinstance(answer, BaseException):
                error = answer
            else:
                reply = answer
        elif isinstance(step, Sleep):
            seen.append(step.seconds)
            clock[0] += step.seconds
        else:
            assert isinstance(step, RefreshAuth)
            seen.append("refresh")


GET = ApiRequest("GET", "/api/2.0/pipelines/p")
POST = ApiRequest("POST", "/api/2.0/pipelines/p/updates", body={}, idempotent=False)


def test_first_attempt_success_is_one_send() -> None:
    assert drive(single(GET), [OK]) == ({"ok": True}, ["send"])


def test_429_waits_retry_after_plus_jitter() -> None:
    result, steps = drive(single(GET), [THROTTLED, THROTTLED, OK])
    assert result == {"ok": True}
    assert steps == ["send", 2 + JITTER, "send", 2 + JITTER, "send"]


def test_backoff_stops_before_a_sleep_that_would_end_past_the_budget() -> None:
    # Waits 0.75, 1.25, 2.25 (cumulative 4.25 s); the next, 4.25 s, would end at 8.5 s > 5 s: give up first.
    with pytest.raises(errors.InternalError):
        drive(single(GET), [SERVER] * 10, retry_timeout=5)
    _, steps = drive(single(GET), [SERVER, SERVER, SERVER, OK], retry_timeout=5)
    assert steps == ["send", 0.5 + JITTER, "send", 1 + JITTER, "send", 2 + JITTER, "send"]


def test_401_refreshes_the_token_once() -> None:
    assert drive(single(GET), [EXPIRED, OK]) == ({"ok": True}, ["send", "refresh", "send"])
    with pytest.raises(errors.Unauthenticated):
        drive(single(GET), [EXPIRED, EXPIRED, OK])


def test_state_changing_call_is_reconciled_not_repeated() -> None:
    # A lost connection after sending: the operation sees AmbiguousRequestError (start_update then looks for the
    # update it may have started); a refused connection never reached the server, so it is simply sent again.
    def start() -> Any:
        try:
            return (yield POST)
        except AmbiguousRequestError:
            return "reconcile"

    assert drive(start(), [ConnectionLost("reset")]) == ("reconcile", ["send"])
    assert drive(start(), [RequestNotSent("refused"), OK])[0] == {"ok": True}
    assert drive(start(), [SERVER]) == ("reconcile", ["send"])
    assert drive(start(), [THROTTLED, OK]) == ({"ok": True}, ["send", 2 + JITTER, "send"])


def test_a_polling_operation_shares_recent_answers() -> None:
    """Within a poll loop, GETs may be answered from a poll made a tenth of the interval ago (by another wait)."""

    def poll_twice() -> Any:
        yield Sleep(0.0, "update p/u", 30.0)
        first = yield from operations.get_update("p", "u")
        return first

    clock = [0.0]
    steps = plan(poll_twice(), lambda: RetryPolicy(60, clock=lambda: clock[0]))
    assert next(steps) == Sleep(0.0, "update p/u", 30.0)
    send = steps.send(None)
    assert isinstance(send, Send) and send.max_age == pytest.approx(3.0)
    assert drive(single(GET), [OK]) == ({"ok": True}, ["send"])  # outside a poll loop: no sharing window
