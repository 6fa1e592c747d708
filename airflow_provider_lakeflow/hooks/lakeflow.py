"""LakeflowHook: databricks-sdk auth from an Airflow connection, and one request engine for sync and async."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow._engine.auth import ConnectionSettings, settings_from_connection
from airflow_provider_lakeflow._engine.budget import gate_for
from airflow_provider_lakeflow._engine.poll_schedule import PollTicks, aligned_pause
from airflow_provider_lakeflow._engine.retrying import RetryPolicy, Send, plan
from airflow_provider_lakeflow._engine.transport import SESSION_SCOPE, credentials_for, loop_state
from airflow_provider_lakeflow.provider_info import UI_FIELD_BEHAVIOUR
from airflow_provider_lakeflow.workspace import operations
from airflow_provider_lakeflow.workspace.messages import Operation, Sleep

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    from airflow_provider_lakeflow._engine.transport import Credentials

T = TypeVar("T")
log = logging.getLogger(__name__)


def _mask(secrets: tuple[str, ...]) -> None:
    from airflow.providers.common.compat.sdk import mask_secret

    for secret in secrets:
        mask_secret(secret)


class LakeflowHook(BaseHook):
    """Talk to a Databricks workspace for Lakeflow Connect pipelines and Unity Catalog connections.

    ``run(operation)`` executes an operation from ``airflow_provider_lakeflow.workspace.operations`` with blocking I/O;
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
        fields = {name: getattr(conn, name) for name in ("host", "login", "password", "extra", "schema", "port")}
        settings = settings_from_connection(conn.conn_id, **fields)
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
            self._credentials = credentials_for(self.settings)
        return self._credentials

    async def acredentials(self) -> Credentials:
        if self._credentials is None:
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
    # ``plan`` (``_retrying``) is the whole request logic: retries, backoff, token refresh, reconciliation. The two
    # drivers below only carry its steps out, one with blocking calls, one on the event loop.
    @staticmethod
    def _policies(settings: ConnectionSettings) -> Callable[[], RetryPolicy]:
        return _policy_factory(float(settings.config_kwargs["retry_timeout_seconds"]))

    def run(self, operation: Operation[T]) -> T:
        """Drive an operation with blocking I/O."""
        credentials = self.credentials
        gate = gate_for(credentials.settings)
        steps = plan(operation, self._policies(credentials.settings))
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = steps.send(reply) if error is None else steps.throw(error)
            except StopIteration as done:
                return done.value
            reply = error = None
            if isinstance(step, Send):
                try:
                    reply = gate.send(credentials, step)
                except Exception as exc:
                    error = exc
            elif isinstance(step, Sleep):
                time.sleep(step.seconds)
            else:
                credentials.invalidate()

    async def arun(self, operation: Operation[T]) -> T:
        """Drive the same operation on the event loop (requests through the workspace's shared budget)."""
        credentials = await self.acredentials()
        gate = gate_for(credentials.settings)
        steps = plan(operation, self._policies(credentials.settings))
        reply: Any = None
        error: BaseException | None = None
        ticks: PollTicks | None = None
        while True:
            try:
                step = steps.send(reply) if error is None else steps.throw(error)
            except StopIteration as done:
                return done.value
            reply = error = None
            if isinstance(step, Send):
                try:
                    reply = await gate.asend(credentials, step)
                except Exception as exc:
                    error = exc
            elif isinstance(step, Sleep):
                if step.phase is None:
                    await asyncio.sleep(step.seconds)
                    continue
                if ticks is None:
                    ticks = loop_state().poll_ticks()
                await ticks.sleep(aligned_pause(step.seconds, step.interval, step.phase))
            else:
                await credentials.ainvalidate()

    def session_scope(self) -> Any:
        """``async with hook.session_scope():`` around a trigger's run keeps the shared session tidy."""
        return SESSION_SCOPE

    # -- UI ----------------------------------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """For the UI's Test button: ``GET /api/2.0/preview/scim/v2/Me``; returns ``(ok, message)``."""
        try:
            me = self.run(operations.current_user())
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to {self.host} as {me.get('userName') or me.get('displayName') or 'unknown'}"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 2.11 reads this; Airflow 3 reads the declarative form in provider info."""
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


@functools.lru_cache(maxsize=64)
def _policy_factory(retry_timeout_seconds: float) -> Callable[[], RetryPolicy]:
    """One factory per retry budget for the whole process, not one closure per operation (each wait keeps its own)."""
    return functools.partial(RetryPolicy, retry_timeout_seconds=retry_timeout_seconds)


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
    "airflow_provider_lakeflow._engine.transport",
    "airflow_provider_lakeflow.workspace.operations",
    "airflow_provider_lakeflow.workspace.waiting",
)
_runtime_imported = False


def _import_runtime() -> None:
    """Import the async path's modules (in a worker thread, once per process).

    The garbage collector is left alone: the triggerer is shared with every other provider's triggers, and pausing or
    freezing collection for our imports would change how their objects are collected too (docs/performance.md).
    """
    import importlib

    for name in RUNTIME_MODULES:
        importlib.import_module(name)


async def _import_runtime_off_loop() -> None:
    global _runtime_imported
    if not _runtime_imported:
        await asyncio.to_thread(_import_runtime)
        _runtime_imported = True
