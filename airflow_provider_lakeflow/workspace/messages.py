"""What an operation yields and what may be thrown back into it, for the sync and the async path alike.

Operations are written sans-IO: a generator yields :class:`ApiRequest` objects and receives the decoded JSON of
each response (or has the final exception thrown into it). ``LakeflowHook.run`` drives a generator over
blocking ``requests``; ``LakeflowHook.arun`` drives the same generator over aiohttp. A response's errors are
mapped by databricks-sdk's own parser (``_engine.responses``), so both paths throw the same ``DatabricksError``
subclasses into the operation for the same response; a request that got no response throws a ``TransportError``.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
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


class AmbiguousRequestError(ConnectionError):
    """A state-changing request failed after it may have reached the server; its effect is unknown."""


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
