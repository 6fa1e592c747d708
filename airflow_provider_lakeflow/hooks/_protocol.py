"""The one place that decides requests, responses, errors and retries, for the sync and the async path alike.

Operations are written sans-IO: a generator yields :class:`ApiRequest` objects and receives the decoded JSON of
each response (or has the final exception thrown into it). ``LakeflowHook.run`` drives a generator over
blocking ``requests``; ``LakeflowHook.arun`` drives the same generator over aiohttp. Errors are mapped by
databricks-sdk's own parser, so both paths raise the same ``DatabricksError`` subclasses for the same response.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

T = TypeVar("T")

#: An operation: yields requests (or sleeps), receives decoded JSON bodies, returns its result.
Operation = Generator["ApiRequest | Sleep", Any, T]

MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 120.0


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    query: Mapping[str, Any] | None = None
    body: Mapping[str, Any] | None = None
    #: False for requests that change state (POST start_update, create): a dropped connection or a 5xx after
    #: sending may mean the server acted, so they are not blindly repeated; the operation reconciles instead.
    idempotent: bool = True

    def url(self, host: str) -> str:
        query = encode_query(self.query)
        return f"{host.rstrip('/')}{self.path}" + (f"?{query}" if query else "")

    def json_body(self) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(self.body, allow_nan=False, separators=(",", ":")).encode()

    def describe(self) -> str:
        return f"{self.method} {self.path}"


def encode_query(query: Mapping[str, Any] | None) -> str:
    """Booleans as true/false and lists as repeated keys, as databricks-sdk sends them."""
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            pairs.append((key, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return urlencode(pairs)


@dataclass(frozen=True)
class Sleep:
    """Yielded by a polling operation between polls: ``time.sleep`` in a worker, ``asyncio.sleep`` in a trigger."""

    seconds: float


@dataclass
class RawResponse:
    """A transport-neutral HTTP response."""

    status: int
    reason: str
    headers: Mapping[str, str]
    content: bytes
    url: str
    method: str


class AmbiguousRequestError(ConnectionError):
    """A state-changing request failed after it may have reached the server; its effect is unknown."""


def _as_requests_response(raw: RawResponse) -> Any:
    import requests
    from requests.structures import CaseInsensitiveDict

    response = requests.Response()
    response.status_code = raw.status
    response.reason = raw.reason
    response.headers = CaseInsensitiveDict(raw.headers)
    response._content = raw.content
    response.url = raw.url
    request = requests.Request(raw.method, raw.url).prepare()
    response.request = request
    return response


_PARSER: Any = None


def decode_response(raw: RawResponse) -> Any:
    """Return the JSON body of a successful response, or raise the databricks-sdk exception for it."""
    if 200 <= raw.status < 300:
        if not raw.content:
            return {}
        try:
            return json.loads(raw.content)
        except ValueError:
            from databricks.sdk.errors import DatabricksError

            raise DatabricksError(
                f"{raw.method} {raw.url} returned HTTP {raw.status} with a body that is not JSON"
            ) from None
    global _PARSER
    if _PARSER is None:
        from databricks.sdk.errors import _Parser

        _PARSER = _Parser()
    error = _PARSER.get_api_error(_as_requests_response(raw))
    if error is None:  # pragma: no cover - the parser always maps a non-2xx response
        from databricks.sdk.errors import DatabricksError

        error = DatabricksError(f"HTTP {raw.status} {raw.reason}")
    raise error


# --- retries ---------------------------------------------------------------------------------------------------


def is_connection_failure(exc: BaseException) -> bool:
    """A transport-level failure: refused, reset, dropped or timed-out connection (either library)."""
    if isinstance(exc, AmbiguousRequestError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError):  # builtins; aiohttp and asyncio timeouts derive from them
        return True
    try:
        import requests

        if isinstance(exc, requests.ConnectionError | requests.Timeout):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return False


def is_connect_refused(exc: BaseException) -> bool:
    """The request never reached the server, so repeating it is safe even for a state-changing call."""
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientConnectorError):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        import requests
        import urllib3.exceptions

        if isinstance(exc, requests.ConnectionError):
            cause = exc.args[0] if exc.args else None
            reason = getattr(cause, "reason", None)
            return isinstance(reason, urllib3.exceptions.NewConnectionError)
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, ConnectionRefusedError)


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


@dataclass
class RetryPolicy:
    """When to try a request again and how long to wait: shared by both transports through tenacity."""

    retry_timeout_seconds: float
    #: ``random.uniform`` jitter bound added to every wait, so a thousand triggers do not retry in lockstep
    jitter_seconds: float = 1.0
    refreshed_auth: bool = field(default=False, repr=False)
    #: attempts already made before tenacity took over (the hook sends the first one itself)
    attempt_offset: int = 0
    #: ``time.monotonic()`` of the first attempt: the retry budget counts from there
    started: float = field(default_factory=time.monotonic)

    def out_of_time(self, upcoming_sleep: float = 0.0) -> bool:
        return time.monotonic() + upcoming_sleep - self.started >= self.retry_timeout_seconds

    def classify(self, request: ApiRequest, exc: BaseException) -> str | None:
        """The reason to retry, or None to give up. Transport-independent."""
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
            return min(float(retry_after), MAX_RETRY_AFTER_SECONDS) + random.uniform(0, self.jitter_seconds)
        if _safe_status_class(exc) == "unauthenticated":
            return 0.0
        backoff = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (attempt - 1))
        return backoff + random.uniform(0, self.jitter_seconds)

    def tenacity_kwargs(self, request: ApiRequest, on_retry: Any) -> dict[str, Any]:
        """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying``: the same policy objects for both."""
        from tenacity import retry_if_exception

        def _retry(exc: BaseException) -> bool:
            return self.classify(request, exc) is not None

        def _wait(state: Any) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_seconds(exc, state.attempt_number + self.attempt_offset)

        def _before_sleep(state: Any) -> None:
            exc = state.outcome.exception() if state.outcome else None
            attempt = state.attempt_number + self.attempt_offset
            on_retry(request, exc, attempt, state.next_action.sleep if state.next_action else 0.0)

        return {
            "retry": retry_if_exception(_retry),
            "wait": _wait,
            # Stop before a sleep that would end past the budget, not after it.
            "stop": lambda state: self.out_of_time(getattr(state, "upcoming_sleep", 0.0)),
            "before_sleep": _before_sleep,
            "reraise": True,
        }


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
