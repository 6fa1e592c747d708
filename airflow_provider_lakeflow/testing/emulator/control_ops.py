"""The emulator's control operations, declared once: ``ControlMethods`` is the interface tests and tools call.

Three classes implement ``_call(op, **kwargs)``: ``Workspace`` (``workspace.py``: the operation itself),
``LakeflowEmulator`` (the same, in process) and ``EmulatorClient`` (a POST to ``/__emulator__/<op>``, whose route
calls the very same ``Workspace`` method). ``Workspace`` overrides the operations it owns (mypy holds each override to
the signature declared here); the ones that belong to a part of the workspace (fault injection and the request log in
``faults.py``, the rate limit in ``ratelimit.py``, the update schedules in ``schedules.py``, SQL warehouses in
``sql/engine.py``) are handed to that part by ``DELEGATED``. A new operation is declared here, then implemented once: a
``Workspace`` method, or a ``DELEGATED`` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from airflow_provider_lakeflow.testing.emulator.faults import FaultRegistry, RecordedRequest, RequestLog
from airflow_provider_lakeflow.testing.emulator.ratelimit import RateLimit
from airflow_provider_lakeflow.testing.emulator.schedules import UpdateScheduler
from airflow_provider_lakeflow.testing.emulator.sql.engine import SqlEngine


class ControlMethods:
    """The control interface; see ``Workspace`` (or the ``DELEGATED`` owner) for what each operation does."""

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

    def script_condition(
        self,
        pipeline_id_or_name: str,
        condition: str,
        *,
        table: str | None = None,
        parameters: dict[str, Any] | None = None,
        updates: int | None = None,
    ) -> None:
        self._call(
            "script_condition",
            pipeline_id_or_name=pipeline_id_or_name,
            condition=condition,
            table=table,
            parameters=parameters,
            updates=updates,
        )

    def clear_conditions(self, pipeline_id_or_name: str) -> None:
        self._call("clear_conditions", pipeline_id_or_name=pipeline_id_or_name)

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

    # ---- updates on a schedule from outside Airflow (a Databricks Jobs schedule; ``schedules.UpdateScheduler``)
    def schedule_updates(
        self,
        pipeline_id_or_name: str,
        every_seconds: float,
        *,
        cause: str = "JOB_TASK",
        count: int | None = None,
        first_in_seconds: float | None = None,
    ) -> None:
        """Start an update of the pipeline every ``every_seconds``, as a Databricks Jobs schedule would."""
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
        """Answer requests whose path matches ``path_regex`` with a fault (``faults.FaultRegistry.add``)."""
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

    # ---- the workspace's request rate limit (ratelimit.py)
    def set_rate_limit(self, requests_per_second: float | None, burst: float | None = None) -> None:
        """Answer ``/api/`` requests beyond ``requests_per_second`` (bursts of ``burst``, default one second's worth)
        with 429 and Retry-After; None lifts the limit. Also restarts the counts of ``request_rate``."""
        self._call("set_rate_limit", requests_per_second=requests_per_second, burst=burst)

    def request_rate(self) -> dict[str, Any]:
        """The ``/api/`` requests seen since the last ``set_rate_limit``/``reset``: ``requests``, ``throttled``
        (429s of the rate limit), ``peak_per_second`` (any one-second window), ``peak_per_second_over_5s`` (any
        five-second window, divided by 5), ``mean_per_second``."""
        return dict(self._call("request_rate"))

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
        """The SQL warehouse ids statements may name (default: ``emulator-warehouse``); others get 404."""
        self._call("set_sql_warehouses", warehouse_ids=list(warehouse_ids))

    def set_sql_chunk_rows(self, rows: int) -> None:
        """Rows per result chunk (default 10,000)."""
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
        """Statements matching ``pattern`` (regex) run ``delay`` seconds longer and/or fail with ``error_message``."""
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
        """Every SQL statement received so far (text, parameters, state), oldest first."""
        return list(self._call("statements"))

    def query_sql(self, statement: str, parameters: dict[str, Any] | None = None) -> list[list[Any]]:
        """Query the emulator's DuckDB directly (landed tables, ``event_log(...)``), for assertions."""
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


# Every control operation, by name: the ``/__emulator__/<op>`` routes accept these and nothing else.
CONTROL_OPS = tuple(name for name in vars(ControlMethods) if not name.startswith("_"))


class WorkspaceParts(Protocol):
    """The parts of ``Workspace`` that implement control operations of their own (see ``DELEGATED``)."""

    scheduler: UpdateScheduler
    faults: FaultRegistry
    request_log: RequestLog
    rate_limit: RateLimit

    @property
    def sql_engine(self) -> SqlEngine: ...


# Operations implemented by a part of the workspace rather than by ``Workspace`` itself.
DELEGATED: dict[str, Callable[[WorkspaceParts], Callable[..., Any]]] = {
    "schedule_updates": lambda ws: ws.scheduler.schedule,
    "unschedule_updates": lambda ws: ws.scheduler.unschedule,
    "schedules": lambda ws: ws.scheduler.list,
    "inject_fault": lambda ws: ws.faults.add,
    "clear_faults": lambda ws: ws.faults.clear,
    "requests": lambda ws: ws.request_log.select,
    "clear_requests": lambda ws: ws.request_log.clear,
    "set_rate_limit": lambda ws: ws.rate_limit.set,
    "request_rate": lambda ws: ws.rate_limit.stats,
    "set_sql_warehouses": lambda ws: ws.sql_engine.set_warehouses,
    "set_sql_chunk_rows": lambda ws: ws.sql_engine.set_chunk_rows,
    "script_statement": lambda ws: ws.sql_engine.script_statement,
    "clear_statement_scripts": lambda ws: ws.sql_engine.clear_scripts,
    "statements": lambda ws: ws.sql_engine.statements,
    "query_sql": lambda ws: ws.sql_engine.query,
}


def to_jsonable(value: Any) -> Any:
    """Control results over HTTP: RecordedRequest -> dict; everything else is JSON already."""
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, RecordedRequest):
        return value.to_dict()
    return value
