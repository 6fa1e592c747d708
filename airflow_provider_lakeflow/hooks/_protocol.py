"""Requests, responses and errors, for the sync and the async path alike (retries: ``_retrying``).

Operations are written sans-IO: a generator yields :class:`ApiRequest` objects and receives the decoded JSON of
each response (or has the final exception thrown into it). ``LakeflowHook.run`` drives a generator over
blocking ``requests``; ``LakeflowHook.arun`` drives the same generator over aiohttp. Errors are mapped by
databricks-sdk's own parser, so both paths raise the same ``DatabricksError`` subclasses for the same response.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlencode

T = TypeVar("T")

#: An operation: yields requests (or sleeps), receives decoded JSON bodies, returns its result.
Operation = Generator["ApiRequest | Sleep", Any, T]


class ApiRequest(NamedTuple):
    """One workspace API call; a named tuple because every poll of every wait builds one."""

    method: str
    path: str
    query: Mapping[str, Any] | None = None
    body: Mapping[str, Any] | None = None
    #: False for requests that change state (POST start_update, create): a dropped connection or a 5xx after
    #: sending may mean the server acted, so they are not blindly repeated; the operation reconciles instead.
    idempotent: bool = True

    def url(self, host: str) -> str:
        if not self.query:
            return f"{host.rstrip('/')}{self.path}"
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


class Sleep(NamedTuple):
    """Yielded by a polling operation between polls: ``time.sleep`` in a worker, ``asyncio.sleep`` in a trigger.

    A named tuple, like the other per-poll values: built on every poll of every wait, for the price of a tuple.
    """

    seconds: float
    #: What is being polled (e.g. an update) every ``interval`` seconds. On the event loop the pause then ends on
    #: that subject's own slot of the interval: waits on one update poll together (and share one request), waits on
    #: different updates spread evenly over the interval. A worker just sleeps ``seconds``.
    phase: str | None = None
    interval: float = 0.0


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
    from airflow_provider_lakeflow.hooks._sdk_errors import api_error

    raise api_error(raw)


# --- retries ---------------------------------------------------------------------------------------------------


class TransportError(ConnectionError):
    """A request that got no HTTP response. Each transport turns its library's exceptions into these, so deciding
    what to retry needs neither requests nor aiohttp; the library's exception is the ``__cause__``."""


class RequestNotSent(TransportError):
    """The connection could not be opened: the server never saw the request, so repeating it is always safe."""


class ConnectionLost(TransportError):
    """The connection failed after the request may have been sent (reset, dropped, a truncated body)."""


class RequestTimedOut(TransportError, TimeoutError):
    """No complete response within ``http_timeout_seconds``; the server may have acted."""


def is_connection_failure(exc: BaseException) -> bool:
    """A transport-level failure: refused, reset, dropped or timed-out connection."""
    if isinstance(exc, AmbiguousRequestError):
        return False
    return isinstance(exc, ConnectionError | TimeoutError)  # TransportError, and the builtins


def is_connect_refused(exc: BaseException) -> bool:
    """The request never reached the server, so repeating it is safe even for a state-changing call."""
    return isinstance(exc, RequestNotSent | ConnectionRefusedError)


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
