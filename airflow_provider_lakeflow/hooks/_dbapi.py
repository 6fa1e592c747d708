"""A DB-API 2.0 (PEP 249) connection and cursor over the Databricks SQL Statement Execution API.

Requests go through ``LakeflowHook.run`` (the shared retry policy, auth and databricks-sdk error mapping); the
statement life cycle is a sans-IO operation like those in :mod:`airflow_provider_lakeflow.hooks.operations`.

- Parameters are bound server-side as the API's named parameters (``:name`` markers); ``%(name)s``, ``%s`` and ``?``
  markers are rewritten to ``:name`` markers (outside literals and comments) and values are never formatted into SQL.
- Results are requested ``INLINE`` as ``JSON_ARRAY`` and read chunk by chunk: the next chunk is fetched only when the
  current one is consumed, and a consumed chunk is dropped, so memory stays flat however many rows a query returns.
- Values arrive as strings and are converted back using each column's ``type_name`` from the result manifest.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import json
import logging
import math
import re
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow._sql_lexer import CODE, tokens
from airflow_provider_lakeflow.hooks._protocol import ApiRequest, Operation, Sleep

if TYPE_CHECKING:
    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook

log = logging.getLogger(__name__)

STATEMENTS = "/api/2.0/sql/statements"
RUNNING_STATES = frozenset({"PENDING", "RUNNING"})

# --- PEP 249 module globals and exceptions -------------------------------------------------------------------------
apilevel = "2.0"
threadsafety = 1  # threads may share the module, not connections
paramstyle = "named"  # :name, as the Statement Execution API; pyformat, format and qmark are also accepted


class Warning(Exception):
    """PEP 249 Warning."""


class Error(Exception):
    """PEP 249 base error."""


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


class StatementFailed(DatabaseError):
    """The warehouse ran the statement and it failed (``status.state == FAILED``); the message is the server's."""

    def __init__(self, statement_id: str, message: str, error_code: str | None, sql_state: str | None) -> None:
        detail = f" (SQLSTATE {sql_state})" if sql_state and sql_state not in message else ""
        super().__init__(f"Statement {statement_id} failed: {message}{detail}")
        self.statement_id = statement_id
        self.error_code = error_code
        self.sql_state = sql_state


class StatementCanceled(OperationalError):
    """The statement ended CANCELED (or CLOSED) before it produced a result."""


class StatementTimeout(OperationalError):
    """The statement ran longer than ``statement_timeout``; it was canceled."""


# --- parameters: Python values -> the API's named parameters -------------------------------------------------------
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PYFORMAT = re.compile(r"%\((?P<name>[^)]*)\)s|%%")
_FORMAT = re.compile(r"%s|%%")
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1


def _decimal_type(value: decimal.Decimal) -> str:
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise NotSupportedError(f"Decimal {value} (NaN or infinity) has no DECIMAL representation; pass a float.")
    scale = max(0, -exponent)
    precision = max(len(digits) + max(0, exponent), scale, 1)
    if precision > 38:
        raise NotSupportedError(f"Decimal {value} needs {precision} digits; DECIMAL holds at most 38.")
    return f"DECIMAL({precision},{scale})"


def api_parameter(name: str, value: Any) -> dict[str, Any]:
    """One ``StatementParameterListItem``: the value as a string plus the SQL type it is cast to."""
    if not _NAME.match(name):
        raise ProgrammingError(f"Parameter name {name!r} is not a valid SQL identifier (letters, digits, _).")
    if value is None:
        return {"name": name}  # value omitted: NULL
    if isinstance(value, bool):
        return {"name": name, "value": "true" if value else "false", "type": "BOOLEAN"}
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            kind = "INT"
        elif _BIGINT_MIN <= value <= _BIGINT_MAX:
            kind = "BIGINT"
        else:
            kind = _decimal_type(decimal.Decimal(value))
        return {"name": name, "value": str(value), "type": kind}
    if isinstance(value, float):
        text = (
            "NaN"
            if math.isnan(value)
            else ("Infinity" if value > 0 else "-Infinity")
            if math.isinf(value)
            else repr(value)
        )
        return {"name": name, "value": text, "type": "DOUBLE"}
    if isinstance(value, decimal.Decimal):
        return {"name": name, "value": format(value, "f"), "type": _decimal_type(value)}
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMP_NTZ" if value.tzinfo is None else "TIMESTAMP"
        return {"name": name, "value": value.isoformat(), "type": kind}
    if isinstance(value, dt.date):
        return {"name": name, "value": value.isoformat(), "type": "DATE"}
    if isinstance(value, str):
        return {"name": name, "value": value, "type": "STRING"}
    raise NotSupportedError(
        f"Parameter {name!r}: values of type {type(value).__name__} cannot be bound (supported: str, int, float, bool, "
        "None, decimal.Decimal, datetime.date, datetime.datetime)."
    )


def _rewrite_code(sql: str, rewrite: Callable[[str], str]) -> str:
    return "".join(rewrite(text) if kind == CODE else text for kind, text in tokens(sql))


def _code_contains(sql: str, needle: str) -> bool:
    return any(kind == CODE and needle in text for kind, text in tokens(sql))


def bind(sql: str, parameters: Any) -> tuple[str, list[dict[str, Any]]]:
    """The statement with ``:name`` markers, and its ``parameters`` list for the API.

    - a mapping binds ``:name`` markers, or ``%(name)s`` markers (pyformat; ``%%`` is then a literal ``%``);
    - a sequence binds ``?`` markers (qmark) or ``%s`` markers (format), rewritten to ``:p1``, ``:p2``, ...
    Markers inside string literals, quoted names and comments are left alone. Without parameters the SQL is sent as is.
    """
    if parameters is None:
        return sql, []
    if isinstance(parameters, Mapping):
        if _code_contains(sql, "%("):
            missing: list[str] = []

            def named(text: str) -> str:
                def repl(m: re.Match[str]) -> str:
                    if m.group() == "%%":
                        return "%"
                    if m.group("name") not in parameters:
                        missing.append(m.group("name"))
                    return f":{m.group('name')}"

                return _PYFORMAT.sub(repl, text)

            sql = _rewrite_code(sql, named)
            if missing:
                raise ProgrammingError(f"No value for parameter(s) {sorted(set(missing))}.")
        return sql, [api_parameter(str(k), v) for k, v in parameters.items()]
    if isinstance(parameters, str | bytes) or not isinstance(parameters, Sequence):
        raise ProgrammingError(
            f"parameters must be a mapping (for :name or %(name)s markers) or a sequence (for ? or %s markers), "
            f"not {type(parameters).__name__}."
        )
    values = list(parameters)
    if not values:
        return sql, []
    marker = _FORMAT if _code_contains(sql, "%s") and not _code_contains(sql, "?") else re.compile(r"\?")
    count = 0

    def positional(text: str) -> str:
        def repl(m: re.Match[str]) -> str:
            nonlocal count
            if m.group() == "%%":
                return "%"
            count += 1
            return f":p{count}"

        return marker.sub(repl, text)

    sql = _rewrite_code(sql, positional)
    if count != len(values):
        raise ProgrammingError(
            f"The statement has {count} positional marker(s) but {len(values)} parameter(s) were given."
        )
    return sql, [api_parameter(f"p{i}", v) for i, v in enumerate(values, start=1)]


def is_read_only(sql: str) -> bool:
    """A statement that can be submitted again safely if its first submission's fate is unknown."""
    code = "".join(text for kind, text in tokens(sql) if kind == CODE).lstrip(" \t\r\n(;")
    first = code.split(None, 1)[0].upper() if code else ""
    return first in {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "VALUES", "TABLE", "FROM", "LIST"}


# --- results: strings -> Python values, by the manifest's type_name ------------------------------------------------
_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?\Z"
)


def parse_timestamp(text: str, *, naive: bool = False) -> dt.datetime:
    m = _TIMESTAMP.match(text.strip())
    if m is None:
        return dt.datetime.fromisoformat(text)
    y, mo, d = (int(x) for x in m.group("date").split("-"))
    micro = int((m.group("f") or "0")[:6].ljust(6, "0"))
    tzinfo: dt.tzinfo | None = None
    if not naive:
        tzinfo = dt.timezone.utc
        offset = m.group("tz")
        if offset and offset != "Z":
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
            tzinfo = dt.timezone(sign * dt.timedelta(minutes=minutes))
    return dt.datetime(y, mo, d, int(m.group("h")), int(m.group("m")), int(m.group("s") or 0), micro, tzinfo=tzinfo)


def _boolean(text: str) -> bool:
    return text.strip().lower() in ("true", "1")


def _binary(text: str) -> bytes | str:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return text


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    **dict.fromkeys(("BYTE", "SHORT", "INT", "LONG", "TINYINT", "SMALLINT", "INTEGER", "BIGINT"), int),
    **dict.fromkeys(("FLOAT", "DOUBLE", "REAL"), float),
    "DECIMAL": decimal.Decimal,
    "BOOLEAN": _boolean,
    "DATE": dt.date.fromisoformat,
    "TIMESTAMP": parse_timestamp,
    "TIMESTAMP_NTZ": lambda text: parse_timestamp(text, naive=True),
    "BINARY": _binary,
    **dict.fromkeys(("ARRAY", "MAP", "STRUCT", "VARIANT"), _json),
}


def converter(type_name: str | None) -> Callable[[str], Any] | None:
    """How to turn a JSON_ARRAY string of this column type back into a Python value (None: keep the string)."""
    return _CONVERTERS.get((type_name or "STRING").upper())


def _safe(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def run(text: str) -> Any:
        try:
            return convert(text)
        except (ValueError, ArithmeticError):
            return text  # an unexpected rendering: hand over the server's text rather than fail the fetch

    return run


# --- the statement life cycle (sans-IO) ----------------------------------------------------------------------------
@dataclass
class StatementOptions:
    """How a cursor submits and waits; set on the hook (see ``LakeflowSqlHook``)."""

    warehouse_id: str | None
    catalog: str | None = None
    schema: str | None = None
    wait_timeout: int = 10
    statement_timeout: float | None = 3600.0
    poll_interval: float = 2.0
    row_limit: int | None = None
    byte_limit: int | None = None

    def __post_init__(self) -> None:
        if self.wait_timeout != 0 and not 5 <= self.wait_timeout <= 50:
            raise ValueError(f"wait_timeout must be 0 or between 5 and 50 seconds, got {self.wait_timeout}.")
        if self.statement_timeout is not None and self.statement_timeout <= 0:
            raise ValueError(f"statement_timeout must be positive (seconds) or None, got {self.statement_timeout}.")
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {self.poll_interval}.")

    def submit_wait(self) -> int:
        """The server-side wait for the submit call: never longer than the statement's own time limit."""
        limit = self.statement_timeout
        if limit is None or limit >= self.wait_timeout:
            return self.wait_timeout
        return int(limit) if limit >= 5 else 0

    def body(self, sql: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
        if not self.warehouse_id:
            raise ProgrammingError(
                "No SQL warehouse id: pass warehouse_id= to LakeflowSqlHook (hook_params={'warehouse_id': ...} on a "
                "common-sql operator) or set the connection extra 'warehouse_id'."
            )
        body: dict[str, Any] = {
            "statement": sql,
            "warehouse_id": self.warehouse_id,
            "wait_timeout": f"{self.submit_wait()}s",
            "on_wait_timeout": "CONTINUE",
            "disposition": "INLINE",
            "format": "JSON_ARRAY",
        }
        if parameters:
            body["parameters"] = parameters
        for key in ("catalog", "schema", "row_limit", "byte_limit"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


def state_of(response: Mapping[str, Any]) -> str:
    return str((response.get("status") or {}).get("state") or "")


def run_statement(
    body: dict[str, Any],
    *,
    idempotent: bool,
    timeout: float | None,
    poll_interval: float,
    on_submitted: Callable[[str], None],
) -> Operation[dict[str, Any]]:
    """Submit, then poll until the statement is terminal; cancel it and raise when ``timeout`` passes."""
    started = time.monotonic()
    response = yield ApiRequest("POST", STATEMENTS, body=body, idempotent=idempotent)
    statement_id = str(response.get("statement_id") or "")
    on_submitted(statement_id)
    delay = min(0.1, poll_interval)
    logged = False
    while state_of(response) in RUNNING_STATES:
        elapsed = time.monotonic() - started
        if timeout is not None and elapsed >= timeout:
            yield from cancel_statement(statement_id)
            raise StatementTimeout(
                f"Statement {statement_id} was still {state_of(response)} after {elapsed:.1f}s (statement_timeout="
                f"{timeout:g}s); it was canceled."
            )
        if not logged:
            log.info("Statement %s is %s; polling for its result.", statement_id, state_of(response))
            logged = True
        pause = delay if timeout is None else max(0.0, min(delay, timeout - elapsed))
        yield Sleep(pause)
        delay = min(delay * 2, poll_interval)
        response = yield ApiRequest("GET", f"{STATEMENTS}/{statement_id}")
    return response


def cancel_statement(statement_id: str) -> Operation[None]:
    """Ask the warehouse to cancel; best effort (the statement may have finished meanwhile)."""
    try:
        yield ApiRequest("POST", f"{STATEMENTS}/{statement_id}/cancel", body={})
    except Exception as exc:
        log.warning("Could not cancel statement %s: %s", statement_id, exc)


def result_chunk(statement_id: str, chunk_index: int) -> Operation[dict[str, Any]]:
    return (yield ApiRequest("GET", f"{STATEMENTS}/{statement_id}/result/chunks/{chunk_index}"))


def raise_for_state(response: Mapping[str, Any]) -> None:
    status = response.get("status") or {}
    state = status.get("state")
    statement_id = str(response.get("statement_id") or "?")
    if state == "SUCCEEDED":
        return
    if state == "FAILED":
        error = status.get("error") or {}
        raise StatementFailed(
            statement_id,
            str(error.get("message") or "no error message"),
            error.get("error_code"),
            status.get("sql_state"),
        )
    if state in ("CANCELED", "CLOSED"):
        raise StatementCanceled(f"Statement {statement_id} ended {state} without a result.")
    raise OperationalError(f"Statement {statement_id} is in an unexpected state {state!r}.")


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
