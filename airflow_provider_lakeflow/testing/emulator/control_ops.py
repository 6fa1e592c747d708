"""The emulator's control operations, declared once: ``ControlMethods`` is the interface tests and tools call.

Three classes implement ``_call(op, **kwargs)``: ``Workspace`` (``workspace.py``: the operation itself),
``LakeflowEmulator`` (the same, in process) and ``EmulatorClient`` (a POST to ``/__emulator__/<op>``, whose route
calls the very same ``Workspace`` method). ``Workspace`` overrides the operations it owns (mypy holds each override to
the signature declared here); the ones that belong to a part of the workspace (fault injection and the request log in
``faults.py``, the rate limit in ``ratelimit.py``, the update schedules in ``schedules.py``, SQL warehouses in
``sql/engine.py``) are declared as ``delegated(<the part's method>, via=<where the workspace keeps the part>)``: their
signature and docstring are the part's method's, and ``DELEGATED`` routes them there. A new operation is declared
here, then implemented once: a ``Workspace`` method, or a part's method named by ``delegated``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from airflow_provider_lakeflow.testing.emulator.faults import FaultRegistry, RecordedRequest, RequestLog
from airflow_provider_lakeflow.testing.emulator.lifecycle.script import ScriptChanges
from airflow_provider_lakeflow.testing.emulator.ratelimit import RateLimit
from airflow_provider_lakeflow.testing.emulator.schedules import UpdateScheduler
from airflow_provider_lakeflow.testing.emulator.sql.engine import SqlEngine

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is Python 3.11+; annotations only


class WorkspaceParts(Protocol):
    """The parts of ``Workspace`` that implement control operations of their own (see ``DELEGATED``)."""

    scheduler: UpdateScheduler
    faults: FaultRegistry
    request_log: RequestLog
    rate_limit: RateLimit

    @property
    def sql_engine(self) -> SqlEngine: ...


P = ParamSpec("P")
R = TypeVar("R")
Part = TypeVar("Part")
# forwarding function -> (how to reach the part from the workspace, the part's method name); read into DELEGATED
_PART_METHODS: dict[Callable[..., Any], tuple[Callable[[WorkspaceParts], Any], str]] = {}


def delegated(
    implementation: Callable[Concatenate[Part, P], R], via: Callable[[WorkspaceParts], Part]
) -> Callable[Concatenate[ControlMethods, P], R]:
    """A control operation that a part of the workspace implements (``implementation``, a method of the part that
    ``via`` reaches): callers get its signature and docstring, and the call goes through ``_call`` like any other."""
    signature = inspect.signature(implementation)
    part_self = next(iter(signature.parameters))

    def operation(self: ControlMethods, *args: P.args, **kwargs: P.kwargs) -> R:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()  # every argument by name, as the declared operations send them
        arguments = {k: v for k, v in bound.arguments.items() if k != part_self}
        result: R = self._call(operation.__name__, **arguments)
        return result

    operation.__doc__ = implementation.__doc__
    operation.__wrapped__ = implementation  # type: ignore[attr-defined]  # inspect.signature and help() show it
    _PART_METHODS[operation] = (via, implementation.__name__)
    return operation


class ControlMethods:
    """The control interface; see ``Workspace`` (or the ``DELEGATED`` owner) for what each operation does."""

    def _call(self, op: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    # ---- scripting updates
    def script_pipeline(self, pipeline_id_or_name: str, **changes: Unpack[ScriptChanges]) -> None:
        """How the next updates of one pipeline play out, on top of the default script (``ScriptChanges`` lists the
        keyword arguments: phase_seconds, outcome (default ``COMPLETED``), error_message, rows, tables, data_quality,
        table_seconds)."""
        self._call("script_pipeline", pipeline_id_or_name=pipeline_id_or_name, **changes)

    def set_default_script(self, *, update_seconds: float | None = None, **changes: Unpack[ScriptChanges]) -> None:
        """The same for every pipeline without its own script; ``update_seconds`` rescales the default phases."""
        self._call("set_default_script", update_seconds=update_seconds, **changes)

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
    schedule_updates = delegated(UpdateScheduler.schedule, via=lambda ws: ws.scheduler)
    unschedule_updates = delegated(UpdateScheduler.unschedule, via=lambda ws: ws.scheduler)
    schedules = delegated(UpdateScheduler.list, via=lambda ws: ws.scheduler)

    # ---- network faults and the request log
    inject_fault = delegated(FaultRegistry.add, via=lambda ws: ws.faults)
    clear_faults = delegated(FaultRegistry.clear, via=lambda ws: ws.faults)

    def requests(self, path_regex: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        items = self._call("requests", path_regex=path_regex, method=method)
        return [r if isinstance(r, RecordedRequest) else RecordedRequest(**r) for r in items]

    clear_requests = delegated(RequestLog.clear, via=lambda ws: ws.request_log)

    # ---- the workspace's request rate limit (ratelimit.py)
    set_rate_limit = delegated(RateLimit.set, via=lambda ws: ws.rate_limit)
    request_rate = delegated(RateLimit.stats, via=lambda ws: ws.rate_limit)

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

    set_sql_chunk_rows = delegated(SqlEngine.set_chunk_rows, via=lambda ws: ws.sql_engine)
    script_statement = delegated(SqlEngine.script_statement, via=lambda ws: ws.sql_engine)
    clear_statement_scripts = delegated(SqlEngine.clear_scripts, via=lambda ws: ws.sql_engine)
    statements = delegated(SqlEngine.statements, via=lambda ws: ws.sql_engine)
    query_sql = delegated(SqlEngine.query, via=lambda ws: ws.sql_engine)

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


def _part_method(via: Callable[[WorkspaceParts], Any], method: str) -> Callable[[WorkspaceParts], Callable[..., Any]]:
    return lambda ws: getattr(via(ws), method)


def _delegated_operations() -> dict[str, Callable[[WorkspaceParts], Callable[..., Any]]]:
    """Name each ``delegated`` operation after its attribute, and map it to its part's method."""
    out: dict[str, Callable[[WorkspaceParts], Callable[..., Any]]] = {}
    for op, member in vars(ControlMethods).items():
        if member in _PART_METHODS:
            via, method = _PART_METHODS[member]
            member.__name__ = member.__qualname__ = op
            out[op] = _part_method(via, method)
    return out


# Operations implemented by a part of the workspace rather than by ``Workspace`` itself.
DELEGATED: dict[str, Callable[[WorkspaceParts], Callable[..., Any]]] = {
    **_delegated_operations(),
    "requests": lambda ws: ws.request_log.select,
    "set_sql_warehouses": lambda ws: ws.sql_engine.set_warehouses,
}


def to_jsonable(value: Any) -> Any:
    """Control results over HTTP: RecordedRequest -> dict; everything else is JSON already."""
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, RecordedRequest):
        return value.to_dict()
    return value
