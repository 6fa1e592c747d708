"""Transports: the only part that differs between the sync (requests) and async (aiohttp) paths.

Both send an :class:`~._protocol.ApiRequest` with headers from databricks-sdk's credential provider and return a
:class:`~._protocol.RawResponse`, and turns its library's exceptions into the protocol's ``TransportError`` kinds.
Everything else lives in ``_protocol`` (errors), ``_retrying`` (retries) and ``_workspace_gate`` (the budget).

Per process there is one :class:`Credentials` per connection, for its current settings (one databricks-sdk ``Config``,
so one token cache) and, per event loop, one aiohttp session: a thousand triggers on one triggerer share them.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow import __version__
from airflow_provider_lakeflow._engine.auth import ConnectionConfigError
from airflow_provider_lakeflow._engine.poll_schedule import PollTicks
from airflow_provider_lakeflow._engine.responses import RawResponse
from airflow_provider_lakeflow.workspace.messages import (
    ApiRequest,
    ConnectionLost,
    RequestNotSent,
    RequestTimedOut,
    TransportError,
)

if TYPE_CHECKING:
    import aiohttp
    from databricks.sdk.config import Config

    from airflow_provider_lakeflow._engine.auth import ConnectionSettings

PRODUCT = "airflow-provider-lakeflow"
#: How long headers of a credential provider without a visible expiry (Azure, GCP, ...) are reused on the
#: event loop before asking the SDK again (the SDK keeps its own token cache; this only bounds thread hops).
OPAQUE_HEADER_TTL_SECONDS = 60.0
#: Keep-alive connections per event loop: triggers share them instead of opening one each.
ASYNC_POOL_SIZE = 64


class Credentials:
    """One databricks-sdk ``Config`` (and so one token cache) per connection, shared by the whole process."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.fingerprint = settings.fingerprint()
        self._config: Config | None = None
        self._build_lock = threading.Lock()
        self._headers: dict[str, str] | None = None
        self._headers_valid_until = 0.0
        self._session: Any = None  # requests.Session for the sync path
        self._timeout: Any = None  # aiohttp.ClientTimeout for the async path

    # -- the SDK config ------------------------------------------------------------------------------------------
    def config(self) -> Config:
        """Build (once) the SDK Config. Blocking: it may probe the host and fetch a token."""
        if self._config is None:
            with self._build_lock:
                if self._config is None:
                    self._config = build_config(self.settings)
        return self._config

    async def aconfig(self) -> Config:
        if self._config is not None:
            return self._config
        # Single flight per loop: triggers that start together wait for one build in one thread, instead of each
        # queueing a thread-pool job that blocks on the build lock.
        async with loop_state().lock_for(self):
            if self._config is not None:
                return self._config
            return await asyncio.to_thread(self.config)

    def invalidate(self) -> None:
        """Forget cached headers and re-initialise the SDK's credential provider (a fresh token next time)."""
        self._headers = None
        self._headers_valid_until = 0.0
        config = self._config
        if config is not None:
            with self._build_lock:
                config.init_auth()

    # -- headers ---------------------------------------------------------------------------------------------------
    def _fresh_headers(self) -> dict[str, str]:
        config = self.config()
        headers = {
            "Accept": "application/json",
            "User-Agent": config.user_agent,
            **config.authenticate(),
        }
        if config.workspace_id:
            headers["X-Databricks-Workspace-Id"] = str(config.workspace_id)
        self._headers = headers
        self._headers_valid_until = time.monotonic() + _header_lifetime(config)
        return headers

    def headers(self) -> dict[str, str]:
        if self._headers is not None and time.monotonic() < self._headers_valid_until:
            return self._headers
        return self._fresh_headers()

    async def aheaders(self, loop_state: _LoopState) -> dict[str, str]:
        """Cached headers without leaving the loop; a refresh (token POST, file read...) runs in a thread."""
        if self._headers is not None and time.monotonic() < self._headers_valid_until:
            return self._headers
        async with loop_state.lock_for(self):
            if self._headers is not None and time.monotonic() < self._headers_valid_until:
                return self._headers
            return await asyncio.to_thread(self._fresh_headers)

    async def ainvalidate(self) -> None:
        await asyncio.to_thread(self.invalidate)

    # -- sync transport ------------------------------------------------------------------------------------------------
    def send(self, request: ApiRequest) -> RawResponse:
        import requests

        config = self.config()
        if self._session is None:
            self._session = requests.Session()
        headers = dict(self.headers())
        body = request.json_body()
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = request.url(config.host)
        try:
            response = self._session.request(
                request.method, url, data=body, headers=headers, timeout=config.http_timeout_seconds
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _requests_failure(request, exc, config.http_timeout_seconds) from exc
        return RawResponse(
            status=response.status_code,
            reason=response.reason or "",
            headers=dict(response.headers),
            content=response.content,
            url=url,
            method=request.method,
        )

    # -- async transport -------------------------------------------------------------------------------------------
    async def asend(self, request: ApiRequest) -> RawResponse:
        # The per-poll path of every trigger: no copies of headers it does not need, nothing rebuilt or imported
        # per call, and no extra coroutine when the headers are cached.
        config = self._config if self._config is not None else await self.aconfig()
        state = loop_state()
        headers = self._headers
        if headers is None or time.monotonic() >= self._headers_valid_until:
            headers = await self.aheaders(state)
        body = request.json_body() if request.body is not None else None
        if body is not None:
            headers = {**headers, "Content-Type": "application/json"}
        url = request.url(config.host)
        aiohttp = _aiohttp()
        if self._timeout is None:
            self._timeout = aiohttp.ClientTimeout(total=config.http_timeout_seconds)
        try:
            async with state.session().request(
                request.method, url, data=body, headers=headers, timeout=self._timeout
            ) as response:
                return RawResponse(
                    response.status, response.reason or "", response.headers, await response.read(), url, request.method
                )
        except asyncio.TimeoutError as exc:  # aiohttp's ServerTimeoutError included
            raise RequestTimedOut(f"{request.describe()} timed out after {config.http_timeout_seconds}s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise RequestNotSent(f"{request.describe()}: {exc}") from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ConnectionLost(f"{request.describe()}: {type(exc).__name__}: {exc}") from exc


def _aiohttp() -> Any:
    """aiohttp, imported on first use (DAG parsing never needs it), then without an import statement per request."""
    global _AIOHTTP
    if _AIOHTTP is None:
        import aiohttp

        _AIOHTTP = aiohttp
    return _AIOHTTP


_AIOHTTP: Any = None


def _requests_failure(request: ApiRequest, exc: Exception, timeout: Any) -> TransportError:
    """requests' exceptions as the protocol's: was the request sent, and did it time out."""
    import requests
    import urllib3.exceptions

    if isinstance(exc, requests.ConnectTimeout):
        return RequestNotSent(f"{request.describe()}: could not connect within {timeout}s")
    if isinstance(exc, requests.Timeout):
        return RequestTimedOut(f"{request.describe()} timed out after {timeout}s")
    cause = exc.args[0] if exc.args else None
    if isinstance(getattr(cause, "reason", None), urllib3.exceptions.NewConnectionError):
        return RequestNotSent(f"{request.describe()}: {exc}")
    return ConnectionLost(f"{request.describe()}: {type(exc).__name__}: {exc}")


def _header_lifetime(config: Config) -> float:
    if config.auth_type == "pat":
        return float("inf")
    try:
        token = config.oauth_token()
    except Exception:
        return OPAQUE_HEADER_TTL_SECONDS
    expiry = getattr(token, "expiry", None)
    if expiry is None:
        return OPAQUE_HEADER_TTL_SECONDS
    import datetime

    remaining = (expiry - datetime.datetime.now(tz=expiry.tzinfo)).total_seconds()
    # Come back well before expiry so the SDK refreshes the token (in its own thread) before it lapses.
    return max(0.0, remaining - min(remaining / 2, 300.0))


def build_config(settings: ConnectionSettings) -> Config:
    from databricks.sdk.config import Config

    try:
        return Config(product=PRODUCT, product_version=__version__, **settings.config_kwargs)
    except ValueError as exc:
        # The SDK's message lists the config with secrets shown as ***; keep it, it says what is missing.
        raise ConnectionConfigError(
            f"Cannot authenticate with Airflow connection '{settings.conn_id}' (read as {settings.strategy}): {exc}"
        ) from None


#: Connections whose credentials a process keeps (least recently used beyond it are dropped).
MAX_CACHED_CONNECTIONS = 256
_CREDENTIALS: OrderedDict[str, Credentials] = OrderedDict()
_CREDENTIALS_LOCK = threading.Lock()


def credentials_for(settings: ConnectionSettings) -> Credentials:
    """The process's credentials for this connection: one entry per connection id, replaced when its settings (a
    rotated secret, say) change, so a long-lived triggerer does not keep a token cache per old secret."""
    key = settings.fingerprint()
    found = _CREDENTIALS.get(settings.conn_id)
    if found is not None and found.fingerprint == key:
        return found
    with _CREDENTIALS_LOCK:
        found = _CREDENTIALS.get(settings.conn_id)
        if found is None or found.fingerprint != key:
            found = _CREDENTIALS[settings.conn_id] = Credentials(settings)
        _CREDENTIALS.move_to_end(settings.conn_id)
        while len(_CREDENTIALS) > MAX_CACHED_CONNECTIONS:
            _CREDENTIALS.popitem(last=False)
        return found


class _LoopState:
    """Per event loop: the shared aiohttp session and the locks that keep token refreshes single-flight."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._locks: dict[int | str, asyncio.Lock] = {}
        self.users = 0
        self._poll_ticks: PollTicks | None = None

    def poll_ticks(self) -> PollTicks:
        """The loop's shared timer for pollers' scheduled polls (``poll_schedule.PollTicks``)."""
        if self._poll_ticks is None:
            self._poll_ticks = PollTicks(asyncio.get_running_loop())
        return self._poll_ticks

    def session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            aiohttp = _aiohttp()
            connector = aiohttp.TCPConnector(limit=ASYNC_POOL_SIZE, keepalive_timeout=60)
            session = self._session = aiohttp.ClientSession(connector=connector)
        return session

    def lock_for(self, subject: Credentials | str) -> asyncio.Lock:
        """A loop-bound lock per credentials object or per name, for single-flight loads and refreshes."""
        key: int | str = subject if isinstance(subject, str) else id(subject)
        return self._locks.setdefault(key, asyncio.Lock())

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


_LOOP_STATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()


def loop_state() -> _LoopState:
    global _LAST_LOOP_STATE
    loop = asyncio.get_running_loop()
    last = _LAST_LOOP_STATE
    if last is not None and last[0]() is loop:  # a triggerer has one loop: skip the weak dictionary's lookup
        return last[1]
    state = _LOOP_STATES.get(loop)
    if state is None:
        state = _LOOP_STATES[loop] = _LoopState()
    _LAST_LOOP_STATE = (weakref.ref(loop), state)
    return state


_LAST_LOOP_STATE: tuple[weakref.ref[asyncio.AbstractEventLoop], _LoopState] | None = None


class SessionScope:
    """Holds the loop's shared session open while any trigger uses it; the last one out closes it.

    Without this, ``asyncio.run`` (``dag.test()``, tests) would leave a session bound to a closed loop. It holds no
    state of its own (the count is the loop's), so every trigger shares :data:`SESSION_SCOPE`.
    """

    async def __aenter__(self) -> SessionScope:
        loop_state().users += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        state = loop_state()
        state.users -= 1
        if state.users <= 0:
            state.users = 0
            await state.close()


SESSION_SCOPE = SessionScope()


def connection_pool_stats() -> Mapping[str, int]:
    """Open TCP connections of this loop's shared session (for benchmarks and tests)."""
    state = _LOOP_STATES.get(asyncio.get_running_loop())
    if state is None or state._session is None or state._session.connector is None:
        return {"open": 0}
    connector = state._session.connector
    acquired = len(getattr(connector, "_acquired", ()))
    idle = sum(len(v) for v in getattr(connector, "_conns", {}).values())
    return {"open": acquired + idle}
