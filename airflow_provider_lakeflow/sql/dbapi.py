"""A DB-API 2.0 (PEP 249) connection and cursor over the Databricks SQL Statement Execution API.

Requests go through ``LakeflowHook.run`` (the shared retry policy, auth and databricks-sdk error mapping); the
statement life cycle is a sans-IO operation like those in :mod:`airflow_provider_lakeflow.workspace.operations`.

- Parameters are bound server-side as the API's named parameters (``:name`` markers); ``%(name)s``, ``%s`` and ``?``
  markers are rewritten to ``:name`` markers (outside literals and comments) and values are never formatted into SQL.
- Results are requested ``INLINE`` as ``JSON_ARRAY`` and read chunk by chunk: the next chunk is fetched only when the
  current one is consumed, and a consumed chunk is dropped, so memory stays flat however many rows a query returns.
- Values arrive as strings and are converted back using each column's ``type_name`` from the result manifest.

This module holds the PEP 249 objects; type conversion is in ``_sql_types``, the statement life cycle in
``_sql_statements``, the exceptions in ``_sql_errors``.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow.sql.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    StatementCanceled,
    StatementFailed,
    StatementTimeout,
    Warning,
)
from airflow_provider_lakeflow.sql.statements import (
    StatementOptions,
    cancel_statement,
    raise_for_state,
    result_chunk,
    run_statement,
)
from airflow_provider_lakeflow.sql.types import _safe, bind, converter, is_read_only

if TYPE_CHECKING:
    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook

__all__ = [
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "StatementCanceled",
    "StatementFailed",
    "StatementOptions",
    "StatementTimeout",
    "Warning",
    "apilevel",
    "bind",
    "paramstyle",
    "threadsafety",
]

log = logging.getLogger(__name__)

# --- PEP 249 module globals and exceptions -------------------------------------------------------------------------
apilevel = "2.0"
threadsafety = 1  # threads may share the module, not connections
paramstyle = "named"  # :name, as the Statement Execution API; pyformat, format and qmark are also accepted


# --- PEP 249 objects -----------------------------------------------------------------------------------------------
class Connection:
    """A PEP 249 connection: statements auto-commit (each is its own transaction on a SQL warehouse)."""

    def __init__(self, api: LakeflowHook, options: StatementOptions) -> None:
        self.api = api
        self.options = options
        self.autocommit = True
        self.closed = False
        self._cursors: weakref.WeakSet[Cursor] = weakref.WeakSet()

    def cursor(self) -> Cursor:
        if self.closed:
            raise InterfaceError("The connection is closed.")
        cursor = Cursor(self)
        self._cursors.add(cursor)
        return cursor

    def close(self) -> None:
        for cursor in list(self._cursors):
            cursor.close()
        self.closed = True

    def commit(self) -> None:
        """Nothing to do: every statement commits on its own."""

    def rollback(self) -> None:
        raise NotSupportedError("The Statement Execution API commits each statement; there is nothing to roll back.")

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Cursor:
    """A PEP 249 cursor. ``statement_id`` (also ``query_id``) names the last statement run."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.arraysize = 1
        self.description: list[tuple[Any, ...]] | None = None
        self.rowcount = -1
        self.statement_id: str | None = None
        self._running: str | None = None  # a statement submitted and not seen terminal
        self._closed = False
        self._reset_result()

    @property
    def query_id(self) -> str | None:
        return self.statement_id

    def _reset_result(self) -> None:
        self._rows: list[list[Any]] = []
        self._pos = 0
        self._next_chunk: int | None = None
        self._converters: list[Callable[[str], Any] | None] = []
        self._convert_any = False
        self._has_result = False

    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError("The cursor is closed.")
        if self.connection.closed:
            raise InterfaceError("The connection is closed.")

    # -- execute --------------------------------------------------------------------------------------------------
    def execute(self, operation: str, parameters: Any = None) -> Cursor:
        self._check_open()
        self._reset_result()
        self.description, self.rowcount, self.statement_id = None, -1, None
        sql, params = bind(operation, parameters)
        options = self.connection.options
        body = options.body(sql, params)

        def submitted(statement_id: str) -> None:
            self.statement_id = self._running = statement_id

        try:
            response = self.connection.api.run(
                run_statement(
                    body,
                    idempotent=is_read_only(sql),
                    timeout=options.statement_timeout,
                    poll_interval=options.poll_interval,
                    on_submitted=submitted,
                )
            )
        except StatementTimeout:
            self._running = None  # canceled already
            raise
        except BaseException:
            self._cancel_running()  # interrupted while waiting (task timeout, kill): do not leave it running
            raise
        self._running = None
        raise_for_state(response)
        self._load_result(response)
        return self

    def executemany(self, operation: str, seq_of_parameters: Any) -> Cursor:
        total = 0
        for parameters in seq_of_parameters:
            self.execute(operation, parameters)
            total += max(self.rowcount, 0)
        self.rowcount = total
        return self

    def _load_result(self, response: Mapping[str, Any]) -> None:
        manifest = response.get("manifest") or {}
        columns = (manifest.get("schema") or {}).get("columns") or []
        if columns:
            self.description = [
                (
                    c.get("name"),
                    str(c.get("type_name") or "STRING").lower(),
                    None,
                    None,
                    c.get("type_precision"),
                    c.get("type_scale"),
                    True,
                )
                for c in columns
            ]
            converters = [converter(c.get("type_name")) for c in columns]
            self._converters = [None if f is None else _safe(f) for f in converters]
            self._convert_any = any(f is not None for f in converters)
            self._has_result = True
        total = manifest.get("total_row_count")
        self.rowcount = int(total) if total is not None and columns else -1
        result = response.get("result") or {}
        self._rows = result.get("data_array") or []
        self._next_chunk = result.get("next_chunk_index")
        names = [c.get("name") for c in columns]
        if names and names[0] == "num_affected_rows" and self._rows and manifest.get("total_row_count") == 1:
            with contextlib.suppress(TypeError, ValueError):  # DML: Databricks answers one row of counts
                self.rowcount = int(self._rows[0][0])

    # -- fetch ----------------------------------------------------------------------------------------------------
    def _convert(self, row: list[Any]) -> tuple[Any, ...]:
        if not self._convert_any:
            return tuple(row)
        return tuple([v if v is None or f is None else f(v) for v, f in zip(row, self._converters, strict=False)])

    def _ensure_rows(self) -> bool:
        """True when an unread row is buffered, fetching the next chunk (and dropping the last) if needed."""
        while self._pos >= len(self._rows):
            if self._next_chunk is None or self.statement_id is None:
                return False
            chunk = self.connection.api.run(result_chunk(self.statement_id, self._next_chunk))
            self._rows, self._pos = chunk.get("data_array") or [], 0
            self._next_chunk = chunk.get("next_chunk_index")
        return True

    def _check_result(self) -> None:
        self._check_open()
        if not self._has_result:
            raise ProgrammingError("The last statement produced no result set (or nothing was executed).")

    def fetchone(self) -> tuple[Any, ...] | None:
        self._check_result()
        if not self._ensure_rows():
            return None
        row = self._rows[self._pos]
        self._pos += 1
        return self._convert(row)

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        self._check_result()
        wanted = self.arraysize if size is None else size
        out: list[tuple[Any, ...]] = []
        while len(out) < wanted and self._ensure_rows():
            take = self._rows[self._pos : self._pos + wanted - len(out)]
            self._pos += len(take)
            out.extend(self._convert(r) for r in take)
        return out

    def fetchall(self) -> list[tuple[Any, ...]]:
        self._check_result()
        out: list[tuple[Any, ...]] = []
        while self._ensure_rows():
            out.extend(self._convert(r) for r in self._rows[self._pos :])
            self._pos = len(self._rows)
        return out

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    # -- the rest of PEP 249 ------------------------------------------------------------------------------------
    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    def cancel(self) -> None:
        """Cancel the statement this cursor is running (from another thread)."""
        self._cancel_running()

    def _cancel_running(self) -> None:
        statement_id, self._running = self._running, None
        if statement_id:
            try:
                self.connection.api.run(cancel_statement(statement_id))
            except Exception as exc:  # best effort: never mask the error that brought us here
                log.warning("Could not cancel statement %s: %s", statement_id, exc)

    def close(self) -> None:
        if self._closed:
            return
        self._cancel_running()
        self._reset_result()
        self._closed = True

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
