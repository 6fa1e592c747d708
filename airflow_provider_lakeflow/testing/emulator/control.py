"""Driving the emulator: in process (``LakeflowEmulator``) or over HTTP (``EmulatorClient``), with one interface.

``ControlMethods`` declares every control operation once and forwards it to ``_call(op, **kwargs)``. The in-process
class calls ``Workspace.<op>`` directly (thread-safe: the workspace locks); the client POSTs the same kwargs to
``/__emulator__/<op>``, whose route calls the very same ``Workspace.<op>``. The logic exists once, in ``state.py``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from airflow_provider_lakeflow.testing.emulator.errors import ApiError
from airflow_provider_lakeflow.testing.emulator.faults import RecordedRequest
from airflow_provider_lakeflow.testing.emulator.server import CONTROL_PREFIX, EmulatorServer
from airflow_provider_lakeflow.testing.emulator.state import Workspace

DEFAULT_TOKEN = "emulator-token"
DEFAULT_CLIENT_ID = "emulator-client"
DEFAULT_CLIENT_SECRET = "emulator-secret"


class ControlMethods:
    """The control interface; see ``Workspace`` for what each operation does."""

    def _call(self, op: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    # ---- scripting updates
    def script_pipeline(
        self,
        pipeline_id_or_name: str,
        *,
        phase_seconds: float | dict[str, float] | None = None,
        outcome: str = "COMPLETED",
        error_message: str | None = None,
        rows: int | dict[str, int] | None = None,
        tables: list[str] | None = None,
        data_quality: dict[str, Any] | None = None,
        table_seconds: dict[str, float] | None = None,
    ) -> None:
        self._call(
            "script_pipeline",
            pipeline_id_or_name=pipeline_id_or_name,
            phase_seconds=phase_seconds,
            outcome=outcome,
            error_message=error_message,
            rows=rows,
            tables=tables,
            data_quality=data_quality,
            table_seconds=table_seconds,
        )

    def set_default_script(
        self,
        *,
        phase_seconds: float | dict[str, float] | None = None,
        outcome: str = "COMPLETED",
        error_message: str | None = None,
        rows: int | dict[str, int] | None = None,
        tables: list[str] | None = None,
        data_quality: dict[str, Any] | None = None,
        update_seconds: float | None = None,
        table_seconds: dict[str, float] | None = None,
    ) -> None:
        self._call(
            "set_default_script",
            phase_seconds=phase_seconds,
            outcome=outcome,
            error_message=error_message,
            rows=rows,
            tables=tables,
            data_quality=data_quality,
            update_seconds=update_seconds,
            table_seconds=table_seconds,
        )

    def start_update_externally(
        self,
        pipeline_id: str,
        *,
        cause: str = "USER_ACTION",
        full_refresh: bool = False,
        refresh_selection: list[str] | None = None,
        full_refresh_selection: list[str] | None = None,
    ) -> str:
        return str(
            self._call(
                "start_update_externally",
                pipeline_id=pipeline_id,
                cause=cause,
                full_refresh=full_refresh,
                refresh_selection=refresh_selection,
                full_refresh_selection=full_refresh_selection,
            )
        )

    # ---- updates on a schedule from outside Airflow (a Databricks Jobs schedule)
    def schedule_updates(
        self,
        pipeline_id_or_name: str,
        every_seconds: float,
        *,
        cause: str = "JOB_TASK",
        count: int | None = None,
        first_in_seconds: float | None = None,
    ) -> None:
        self._call(
            "schedule_updates",
            pipeline_id_or_name=pipeline_id_or_name,
            every_seconds=every_seconds,
            cause=cause,
            count=count,
            first_in_seconds=first_in_seconds,
        )

    def unschedule_updates(self, pipeline_id_or_name: str | None = None) -> None:
        self._call("unschedule_updates", pipeline_id_or_name=pipeline_id_or_name)

    def schedules(self) -> list[dict[str, Any]]:
        return list(self._call("schedules"))

    # ---- network faults and the request log
    def inject_fault(
        self,
        path_regex: str,
        *,
        method: str | None = None,
        kind: str = "status",
        status: int = 429,
        retry_after: int | float | None = None,
        count: int | None = 1,
        delay: float = 0.0,
        when: str = "before",
    ) -> None:
        self._call(
            "inject_fault",
            path_regex=path_regex,
            method=method,
            kind=kind,
            status=status,
            retry_after=retry_after,
            count=count,
            delay=delay,
            when=when,
        )

    def clear_faults(self) -> None:
        self._call("clear_faults")

    def requests(self, path_regex: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        items = self._call("requests", path_regex=path_regex, method=method)
        return [r if isinstance(r, RecordedRequest) else RecordedRequest(**r) for r in items]

    def clear_requests(self) -> None:
        self._call("clear_requests")

    # ---- auth
    def expire_tokens(self) -> None:
        self._call("expire_tokens")

    def set_token_ttl(self, seconds: float) -> None:
        self._call("set_token_ttl", seconds=seconds)

    # ---- connections
    def script_connections(
        self, *, provisioning_seconds: float = 0.0, final_state: str = "ACTIVE", message: str | None = None
    ) -> None:
        self._call(
            "script_connections", provisioning_seconds=provisioning_seconds, final_state=final_state, message=message
        )

    def set_connection_state(self, name: str, state: str, message: str | None = None) -> None:
        self._call("set_connection_state", name=name, state=state, message=message)

    def create_connection_as_ui(
        self, name: str, connection_type: str, options: dict[str, str], state: str = "ACTIVE"
    ) -> dict[str, Any]:
        return dict(
            self._call(
                "create_connection_as_ui", name=name, connection_type=connection_type, options=options, state=state
            )
        )

    # ---- SQL warehouses (the Statement Execution API on DuckDB)
    def set_sql_warehouses(self, warehouse_ids: list[str]) -> None:
        self._call("set_sql_warehouses", warehouse_ids=list(warehouse_ids))

    def set_sql_chunk_rows(self, rows: int) -> None:
        self._call("set_sql_chunk_rows", rows=rows)

    def script_statement(
        self,
        pattern: str,
        *,
        delay: float = 0.0,
        error_message: str | None = None,
        error_code: str = "BAD_REQUEST",
        sql_state: str | None = None,
        count: int | None = None,
    ) -> None:
        self._call(
            "script_statement",
            pattern=pattern,
            delay=delay,
            error_message=error_message,
            error_code=error_code,
            sql_state=sql_state,
            count=count,
        )

    def clear_statement_scripts(self) -> None:
        self._call("clear_statement_scripts")

    def statements(self) -> list[dict[str, Any]]:
        return list(self._call("statements"))

    def query_sql(self, statement: str, parameters: dict[str, Any] | None = None) -> list[list[Any]]:
        return list(self._call("query_sql", statement=statement, parameters=parameters))

    # ---- jobs, reset
    def create_job_run(self, duration_seconds: float) -> int:
        return int(self._call("create_job_run", duration_seconds=duration_seconds))

    def reset(self) -> None:
        self._call("reset")

    # ---- accessors (wire-shaped dicts)
    def pipeline(self, pipeline_id_or_name: str) -> dict[str, Any]:
        return dict(self._call("pipeline", pipeline_id_or_name=pipeline_id_or_name))

    def pipelines(self) -> list[dict[str, Any]]:
        return list(self._call("pipelines"))

    def update(self, pipeline_id: str, update_id: str | None = None) -> dict[str, Any]:
        return dict(self._call("update", pipeline_id=pipeline_id, update_id=update_id))

    def updates(self, pipeline_id: str) -> list[dict[str, Any]]:
        return list(self._call("updates", pipeline_id=pipeline_id))

    def events(self, pipeline_id: str, update_id: str | None = None) -> list[dict[str, Any]]:
        return list(self._call("events", pipeline_id=pipeline_id, update_id=update_id))

    def connection(self, name: str) -> dict[str, Any]:
        return dict(self._call("connection", name=name))

    def job_run(self, run_id: int) -> dict[str, Any]:
        return dict(self._call("job_run", run_id=run_id))


class LakeflowEmulator(ControlMethods):
    """The emulator in this process: ``start()`` serves from a background thread with its own event loop;
    ``async with`` (or ``start_async()``) serves inside the running loop instead.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: tuple[str, ...] | list[str] = (DEFAULT_TOKEN,),
        clients: dict[str, str] | None = None,
        update_seconds: float = 3.0,
        now: Callable[[], float] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"now": now} if now is not None else {}
        self.workspace = Workspace(
            tokens=tuple(tokens),
            clients=clients if clients is not None else {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET},
            update_seconds=update_seconds,
            **kwargs,
        )
        self._server = EmulatorServer(self.workspace, host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _call(self, op: str, **kwargs: Any) -> Any:
        return getattr(self.workspace, op)(**kwargs)

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    # ---- background thread
    def start(self) -> LakeflowEmulator:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._server.start())
            except BaseException as e:
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._server.stop())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="lakeflow-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = self._loop = None

    def __enter__(self) -> LakeflowEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- inside an existing event loop
    async def start_async(self) -> LakeflowEmulator:
        await self._server.start()
        return self

    async def stop_async(self) -> None:
        await self._server.stop()

    async def __aenter__(self) -> LakeflowEmulator:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()


class EmulatorClient(ControlMethods):
    """Controls an emulator in another process (``python -m airflow_provider_lakeflow.testing.emulator``).

    Stdlib only, so benchmarks and subprocess tests need nothing else.
    """

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, op: str, **kwargs: Any) -> Any:
        req = urllib.request.Request(
            f"{self.url}{CONTROL_PREFIX}{op}",
            data=json.dumps(kwargs).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())["result"]
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())
            except ValueError:
                err = {}
            raise ApiError(e.code, err.get("error_code", f"HTTP_{e.code}"), err.get("message", str(e))) from None
