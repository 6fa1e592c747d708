"""The one retry loop, sans-IO: what to send, when to wait, when to refresh a token, for both drivers.

``plan(operation, policy_for)`` turns an operation (which yields :class:`ApiRequest` and :class:`Sleep`) into a
generator of I/O steps: :class:`Send` (answer it with the transport's :class:`RawResponse`, or throw the transport's
exception into it), :class:`Sleep` and :class:`RefreshAuth`. ``LakeflowHook.run`` carries the steps out with blocking
calls, ``LakeflowHook.arun`` on the event loop; neither knows anything about retries.

The first attempt of a request goes straight out; tenacity is built only once it failed in a retryable way, so the
common case costs no retry machinery. tenacity decides (its ``Retrying.iter`` state machine, the same one its own
``Retrying`` and ``AsyncRetrying`` run); this module only turns its ``DoAttempt`` and ``DoSleep`` into steps.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from airflow_provider_lakeflow._engine.poll_schedule import SHARED_ANSWER_FRACTION
from airflow_provider_lakeflow._engine.responses import decode_response
from airflow_provider_lakeflow.workspace.messages import (
    AmbiguousRequestError,
    ApiRequest,
    Operation,
    Sleep,
    is_connect_refused,
    is_connection_failure,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 120.0


class Send(NamedTuple):
    """Send this request once; reply with the :class:`RawResponse` or throw the transport's exception."""

    request: ApiRequest
    #: A GET whose answer this old (seconds) is as good as a new one: polls of the same update share it.
    max_age: float = 0.0


@dataclass(frozen=True)
class RefreshAuth:
    """Forget the cached token (a 401 came back) before the next attempt."""


Step = Send | Sleep | RefreshAuth
Plan = Generator[Step, Any, T]


@dataclass
class RetryPolicy:
    """When to try a request again and how long to wait (tenacity's ``retry``, ``wait`` and ``stop``)."""

    retry_timeout_seconds: float
    #: jitter bound added to every wait, so a thousand triggers do not retry in lockstep
    jitter_seconds: float = 1.0
    #: injectable in tests: the clock the budget is measured with, and the jitter source ``uniform(a, b)``
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    uniform: Callable[[float, float], float] = field(default=random.uniform, repr=False)
    refreshed_auth: bool = field(default=False, repr=False)
    #: ``clock()`` at the first attempt: the retry budget counts from there
    started: float = field(default=0.0, repr=False)

    def out_of_time(self, upcoming_sleep: float = 0.0) -> bool:
        """Stop before a sleep that would end past the budget, not after it."""
        return self.clock() + upcoming_sleep - self.started >= self.retry_timeout_seconds

    def classify(self, request: ApiRequest, exc: BaseException) -> str | None:
        """The reason to retry, or None to give up."""
        if isinstance(exc, AmbiguousRequestError):
            return None
        if is_connection_failure(exc):
            if request.idempotent or is_connect_refused(exc):
                return "connection"
            return None
        try:
            kind = _status_class(exc)
        except ImportError:  # pragma: no cover
            return None
        if kind == "throttled":
            return "throttled"
        if kind == "unauthenticated" and not self.refreshed_auth:
            # An OAuth token can expire or be revoked before its advertised expiry: refresh once, then give up.
            self.refreshed_auth = True
            return "unauthenticated"
        if kind == "server" and request.idempotent:
            return "server"
        return None

    def wait_seconds(self, exc: BaseException | None, attempt: int) -> float:
        retry_after = getattr(exc, "retry_after_secs", None)
        if retry_after is not None:
            return min(float(retry_after), MAX_RETRY_AFTER_SECONDS) + self.uniform(0, self.jitter_seconds)
        if _safe_status_class(exc) == "unauthenticated":
            return 0.0
        backoff = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (attempt - 1))
        return backoff + self.uniform(0, self.jitter_seconds)

    def retrying(self, request: ApiRequest) -> Any:
        """A ``tenacity.Retrying`` whose strategies are this policy's; the plan drives its ``iter`` (no sleeping)."""
        from tenacity import Retrying, retry_if_exception

        def _wait(state: Any) -> float:
            return self.wait_seconds(state.outcome.exception(), state.attempt_number)

        def _before_sleep(state: Any) -> None:
            exc = state.outcome.exception()
            log.warning(
                "%s failed (attempt %d: %s: %s); retrying in %.1fs",
                request.describe(),
                state.attempt_number,
                type(exc).__name__,
                exc,
                state.next_action.sleep,
            )

        return Retrying(
            retry=retry_if_exception(lambda exc: self.classify(request, exc) is not None),
            wait=_wait,
            stop=lambda state: self.out_of_time(state.upcoming_sleep),
            before_sleep=_before_sleep,
            sleep=_never_sleep,
            reraise=True,
        )


def _never_sleep(seconds: float) -> None:  # pragma: no cover - the plan yields Sleep steps instead
    raise AssertionError("the retry plan sleeps through its driver")


def _retries(send: Send, policy: RetryPolicy, first: BaseException) -> Plan[Any]:
    """After a failed first attempt: tenacity decides whether, when and how often to try again."""
    from tenacity import DoAttempt, DoSleep, RetryCallState

    retrying = policy.retrying(send.request)
    retrying.begin()
    state = RetryCallState(retrying, fn=None, args=(), kwargs={})
    state.set_exception((type(first), first, first.__traceback__))
    del first
    while True:
        action = retrying.iter(state)  # raises the last error once tenacity gives up
        if isinstance(action, DoAttempt):
            try:
                result = decode_response((yield send))
            except Exception:
                state.set_exception(sys.exc_info())  # type: ignore[arg-type]
            else:
                state.set_result(result)
        elif isinstance(action, DoSleep):
            failed = state.outcome.exception() if state.outcome is not None else None
            refresh = policy.refreshed_auth and _safe_status_class(failed) == "unauthenticated"
            state.prepare_for_next_attempt()
            if action:
                yield Sleep(float(action))
            if refresh:
                yield RefreshAuth()
        else:
            return action


def plan(operation: Operation[T], policy_for: Callable[[], RetryPolicy]) -> Plan[T]:
    """The I/O steps of a whole operation: its sleeps, and each of its requests with retries.

    A state-changing request that failed in a way that may have taken effect reaches the operation as
    :class:`AmbiguousRequestError`, so that it reconciles (looks for what it created) instead of repeating.
    The first attempt of each request is sent from here, without a generator per request (this is every poll's
    path); only a failure builds the retry machinery (:func:`_retries`).
    """
    max_age = 0.0
    try:
        step = next(operation)
        while True:
            if isinstance(step, Sleep):
                if step.phase is not None:
                    max_age = step.interval * SHARED_ANSWER_FRACTION
                yield step
                step = operation.send(None)
                continue
            policy = policy_for()
            policy.started = policy.clock()
            send = Send(step, max_age if step.method == "GET" else 0.0)
            retries = None
            try:
                response = decode_response((yield send))
            except Exception as exc:
                retries = _retries(send, policy, exc)  # run outside this handler: no chained "during handling"
            if retries is not None:
                try:
                    response = yield from retries
                except Exception as exc:
                    del send, policy, retries  # not kept alive through the operation's next sleep
                    step = operation.throw(ambiguous(step, exc))
                    continue
            step = operation.send(response)
            del response, send, policy, retries  # not kept alive through the operation's next sleep
    except StopIteration as done:
        return done.value


def _status_class(exc: BaseException) -> str:
    from databricks.sdk import errors

    if isinstance(exc, errors.TooManyRequests):
        return "throttled"  # rejected before it was processed: safe to repeat, even a state-changing call
    if isinstance(exc, errors.Unauthenticated):
        return "unauthenticated"
    # 503 is "server", not "throttled": a gateway can answer 503 after the backend acted, so a state-changing call
    # that gets one is reconciled (AmbiguousRequestError), never blindly repeated (that started a second update).
    if isinstance(exc, errors.InternalError | errors.DeadlineExceeded | errors.TemporarilyUnavailable):
        return "server"
    if type(exc) is errors.DatabricksError and "unable to parse response" not in str(exc):
        return "server"  # 502 and other unmapped 5xx; databricks-sdk has no class for them
    return "final"


def _safe_status_class(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    try:
        return _status_class(exc)
    except ImportError:  # pragma: no cover
        return None


def ambiguous(request: ApiRequest, exc: BaseException) -> BaseException:
    """What the operation sees when a state-changing request failed in a way that may have taken effect."""
    if request.idempotent:
        return exc
    if (is_connection_failure(exc) and not is_connect_refused(exc)) or _safe_status_class(exc) == "server":
        error = AmbiguousRequestError(f"{request.describe()} failed after it may have reached the server: {exc}")
        error.__cause__ = exc
        return error
    return exc
