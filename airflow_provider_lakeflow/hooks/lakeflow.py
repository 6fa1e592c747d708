"""LakeflowHook: databricks-sdk auth from an Airflow connection, and one request engine for sync and async."""

from __future__ import annotations

import asyncio
import logging
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow.hooks._auth import ConnectionSettings, settings_from_connection
from airflow_provider_lakeflow.hooks._protocol import (
    ApiRequest,
    Operation,
    RetryPolicy,
    Sleep,
    ambiguous,
    decode_response,
)

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    from airflow_provider_lakeflow.hooks._transport import Credentials

T = TypeVar("T")
log = logging.getLogger(__name__)


def _mask(secrets: tuple[str, ...]) -> None:
    from airflow.providers.common.compat.sdk import mask_secret

    for secret in secrets:
        mask_secret(secret)


class LakeflowHook(BaseHook):
    """Talk to a Databricks workspace for Lakeflow Connect pipelines and Unity Catalog connections.

    ``run(operation)`` executes an operation from ``airflow_provider_lakeflow.hooks.api`` with blocking I/O;
    ``await arun(operation)`` executes the very same operation on aiohttp without blocking the event loop.

    :param databricks_conn_id: Airflow connection of type ``lakeflow`` (or the official ``databricks`` type).
    """

    conn_name_attr = "databricks_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "lakeflow"
    hook_name = "Databricks Lakeflow Connect"

    def __init__(self, databricks_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.databricks_conn_id = databricks_conn_id
        self._settings: ConnectionSettings | None = None
        self._credentials: Credentials | None = None

    # -- connection ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _settings_from(conn: Any) -> ConnectionSettings:
        settings = settings_from_connection(
            conn.conn_id,
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extra=conn.extra,
            schema=conn.schema,
            port=conn.port,
        )
        _mask(settings.secrets)
        return settings

    @property
    def settings(self) -> ConnectionSettings:
        if self._settings is None:
            self._settings = self._settings_from(self.get_connection(self.databricks_conn_id))
        return self._settings

    async def asettings(self) -> ConnectionSettings:
        """Load the connection without blocking the loop (``aget_connection`` on Airflow 3, a thread on 2.x).

        Triggers that start together share one load per connection id (kept for ``SETTINGS_TTL_SECONDS``), so a
        triggerer picking up a thousand waits does not load the same connection a thousand times.
        """
        await _import_runtime_off_loop()
        if self._settings is None:
            from airflow_provider_lakeflow.hooks._transport import loop_state

            cached = _SHARED_SETTINGS.get(self.databricks_conn_id)
            if cached is None or cached[0] < time.monotonic():
                async with loop_state().lock_for(f"connection:{self.databricks_conn_id}"):
                    cached = _SHARED_SETTINGS.get(self.databricks_conn_id)
                    if cached is None or cached[0] < time.monotonic():
                        cached = (time.monotonic() + SETTINGS_TTL_SECONDS, self._settings_from(await self._aload()))
                        _SHARED_SETTINGS[self.databricks_conn_id] = cached
            self._settings = cached[1]
        return self._settings

    async def _aload(self) -> Any:
        aget = getattr(BaseHook, "aget_connection", None)
        if aget is not None:
            return await aget(self.databricks_conn_id)
        return await asyncio.to_thread(self.get_connection, self.databricks_conn_id)

    @property
    def credentials(self) -> Credentials:
        """This connection's process-wide credentials (one SDK Config and token cache), looked up once per hook."""
        if self._credentials is None:
            from airflow_provider_lakeflow.hooks._transport import credentials_for

            self._credentials = credentials_for(self.settings)
        return self._credentials

    async def acredentials(self) -> Credentials:
        if self._credentials is None:
            from airflow_provider_lakeflow.hooks._transport import credentials_for

            self._credentials = credentials_for(await self.asettings())
        return self._credentials

    async def aconfig(self) -> Config:
        """The SDK Config, built off the event loop the first time (it probes the host)."""
        return await (await self.acredentials()).aconfig()

    @property
    def host(self) -> str:
        return self.credentials.config().host

    @cached_property
    def workspace_client(self) -> WorkspaceClient:
        from databricks.sdk import WorkspaceClient

        return WorkspaceClient(config=self.credentials.config())

    def get_conn(self) -> WorkspaceClient:
        """A cached databricks-sdk ``WorkspaceClient`` whose User-Agent names this provider."""
        return self.workspace_client

    # -- the request engine -------------------------------------------------------------------------------------------
    def _policy(self, settings: ConnectionSettings) -> RetryPolicy:
        return RetryPolicy(retry_timeout_seconds=float(settings.config_kwargs["retry_timeout_seconds"]))

    @staticmethod
    def _log_retry(request: ApiRequest, exc: BaseException | None, attempt: int, sleep: float) -> None:
        log.warning(
            "%s failed (attempt %d: %s: %s); retrying in %.1fs",
            request.describe(),
            attempt,
            type(exc).__name__,
            exc,
            sleep,
        )

    def request(self, request: ApiRequest) -> Any:
        """Send one request with the shared retry policy and error mapping; return its JSON body.

        The first attempt goes straight out; tenacity takes over only once it failed in a retryable way, so the
        common case costs no retry machinery (and leaves no garbage for the cycle collector).
        """
        credentials = self.credentials
        started = time.monotonic()
        try:
            return decode_response(credentials.send(request))
        except Exception as exc:
            policy, pause = self._first_retry(credentials, request, exc, started)
        from tenacity import Retrying

        time.sleep(pause)
        if policy.refreshed_auth:
            credentials.invalidate()
        for attempt in Retrying(**policy.tenacity_kwargs(request, self._on_retry(policy, credentials))):
            with attempt:
                return decode_response(credentials.send(request))
        raise AssertionError("unreachable")  # pragma: no cover

    async def arequest(self, request: ApiRequest) -> Any:
        """The transport call on the event loop: same policy, same decoding, same first-attempt fast path."""
        credentials = await self.acredentials()
        started = time.monotonic()
        try:
            return decode_response(await credentials.asend(request))
        except Exception as exc:
            policy, pause = self._first_retry(credentials, request, exc, started)
        from tenacity import AsyncRetrying

        await asyncio.sleep(pause)
        if policy.refreshed_auth:
            await credentials.ainvalidate()
        refresh = self._on_retry(policy, None)
        async for attempt in AsyncRetrying(**policy.tenacity_kwargs(request, refresh)):
            with attempt:
                if refresh.pending:
                    refresh.pending = False
                    await credentials.ainvalidate()
                return decode_response(await credentials.asend(request))
        raise AssertionError("unreachable")  # pragma: no cover

    def _first_retry(
        self, credentials: Credentials, request: ApiRequest, exc: Exception, started: float
    ) -> tuple[RetryPolicy, float]:
        """After a failed first attempt: the policy for the rest and the pause before the second, or re-raise."""
        policy = self._policy(credentials.settings)
        policy.started = started
        if policy.classify(request, exc) is None:
            raise exc
        pause = policy.wait_seconds(exc, 1)
        if policy.out_of_time(pause):
            raise exc
        self._log_retry(request, exc, 1, pause)
        policy.attempt_offset = 1
        return policy, pause

    def _on_retry(self, policy: RetryPolicy, credentials: Credentials | None) -> _RetryLog:
        return _RetryLog(self, policy, credentials)

    def run(self, operation: Operation[T]) -> T:
        """Drive an operation with blocking I/O."""
        try:
            step = next(operation)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = operation.send(None)
                    continue
                try:
                    response = self.request(step)
                except Exception as exc:
                    step = operation.throw(ambiguous(step, exc))
                else:
                    step = operation.send(response)
        except StopIteration as done:
            return done.value

    async def arun(self, operation: Operation[T]) -> T:
        """Drive the same operation on the event loop."""
        try:
            step = next(operation)
            while True:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    step = operation.send(None)
                    continue
                try:
                    response = await self.arequest(step)
                except Exception as exc:
                    step = operation.throw(ambiguous(step, exc))
                else:
                    step = operation.send(response)
        except StopIteration as done:
            return done.value

    def session_scope(self) -> Any:
        """``async with hook.session_scope():`` around a trigger's run keeps the shared session tidy."""
        from airflow_provider_lakeflow.hooks._transport import SessionScope

        return SessionScope()

    # -- UI ----------------------------------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """For the UI's Test button: ``GET /api/2.0/preview/scim/v2/Me``; returns ``(ok, message)``."""
        from airflow_provider_lakeflow.hooks import api

        try:
            me = self.run(api.current_user())
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to {self.host} as {me.get('userName') or me.get('displayName') or 'unknown'}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 2.11 reads this; Airflow 3 reads the declarative form in provider info."""
        from airflow_provider_lakeflow.provider_info import UI_FIELD_BEHAVIOUR

        return UI_FIELD_BEHAVIOUR

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Airflow 2.11 form widgets; everything else goes in the JSON extra."""
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
            from flask_babel import lazy_gettext
            from wtforms import StringField
        except ImportError:  # Airflow 3 without the FAB UI
            return {}
        return {
            "warehouse_id": StringField(lazy_gettext("SQL warehouse id"), widget=BS3TextFieldWidget()),
        }


class _RetryLog:
    """tenacity's ``before_sleep``: log the retry; after a 401, refresh the token (now in sync, before the next
    attempt on the loop, where the refresh itself runs in a thread)."""

    def __init__(self, hook: LakeflowHook, policy: RetryPolicy, credentials: Credentials | None) -> None:
        self.hook, self.policy, self.credentials = hook, policy, credentials
        self.pending = False

    def __call__(self, request: ApiRequest, exc: BaseException | None, attempt: int, sleep: float) -> None:
        self.hook._log_retry(request, exc, attempt, sleep)
        if _is_unauthenticated(exc) and self.policy.refreshed_auth:
            if self.credentials is not None:
                self.credentials.invalidate()
            else:
                self.pending = True


#: Connection settings shared by the triggers of a process, per connection id, for this long.
SETTINGS_TTL_SECONDS = 60.0
_SHARED_SETTINGS: dict[str, tuple[float, ConnectionSettings]] = {}

#: Modules the async path needs. databricks-sdk alone takes over a second to import; imported on the event loop it
#: would stall every trigger in the triggerer, so the first trigger of a process imports them in a thread.
RUNTIME_MODULES = (
    "databricks.sdk",
    "databricks.sdk.errors",
    "databricks.sdk.config",
    "aiohttp",
    "tenacity",
    "requests",
    "airflow_provider_lakeflow.hooks._transport",
    "airflow_provider_lakeflow.hooks.api",
    "airflow_provider_lakeflow.hooks.waiting",
)
_runtime_imported = False


def _import_runtime() -> None:
    """Import the async path's modules and freeze the process's long-lived objects (in a worker thread, once).

    Importing databricks-sdk allocates enough objects to set off two or three full garbage collections, each 100+ ms
    on a triggerer-sized heap, and a collection holds the GIL: the event loop would stall even though the import runs
    in another thread. So the collector is paused for the import, and everything loaded so far (Airflow, the SDK,
    these modules: they live as long as the process) is frozen out of the collector's reach. Later full collections
    then walk only what the triggers allocate, which keeps them short for every trigger in the process. This is done
    once per process even when the modules were imported already, since the heap is what makes collections slow.
    """
    import gc
    import importlib

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for name in RUNTIME_MODULES:
            importlib.import_module(name)
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


async def _import_runtime_off_loop() -> None:
    global _runtime_imported
    if not _runtime_imported:
        await asyncio.to_thread(_import_runtime)
        _runtime_imported = True


def _is_unauthenticated(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    from databricks.sdk.errors import Unauthenticated

    return isinstance(exc, Unauthenticated)
