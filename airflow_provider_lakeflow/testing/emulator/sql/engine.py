"""The SQL Statement Execution API (``/api/2.0/sql/statements``) on an embedded DuckDB.

- Landed tables: when a flow's ``flow_progress`` COMPLETED event (with ``metrics.num_output_rows`` = n) appears in a
  pipeline's event log, the destination table is (re)written with exactly n rows. Events are materialized lazily
  (see ``lifecycle/update.py``), so rows land when the emulator first observes the event: before every statement the
  engine syncs the events it has not seen yet. No timers, and the table always agrees with the metrics the event log
  reported.
- Names: a Unity Catalog catalog is a DuckDB database attached under the same name, its schemas DuckDB schemas, so
  ``catalog.schema.table`` works as written. DuckDB reserves four database names; catalogs called ``main``, ``system``,
  ``temp`` or ``memory`` are attached as ``__uc_<name>`` and three-part names starting with them are rewritten.
  Default catalog and schema: ``main.default`` (the API's ``catalog``/``schema`` fields change them).
- ``event_log('<pipeline_id>')`` is a DuckDB table macro over the synced events (columns as on Databricks: id,
  sequence, origin STRUCT, timestamp, message, level, maturity_level, error, details, event_type; details and error are
  JSON). Databricks' ``details:flow_progress.metrics.num_output_rows`` path syntax is translated to
  ``json_extract_string``.
- Dialect: backtick names become double-quoted names; string literals may use backslash escapes; ``:name`` markers
  become DuckDB's ``$name``. Everything else is DuckDB SQL (``"..."`` is a name in DuckDB, a string in Databricks).
- Statements run on a small thread pool (the aiohttp loop never blocks); results are kept as rows and rendered to
  JSON_ARRAY strings one chunk at a time (``chunk_rows`` rows a chunk).

Layout: ``translation`` (Databricks SQL and values to DuckDB and back), ``landing`` (the event log table and landed
tables), ``statement`` (a statement's record); this module is the engine: warehouses, statements and
their results.

DuckDB is imported on first use only (it is a dependency of the ``testing`` extra).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

from airflow_provider_lakeflow.testing.emulator.errors import ApiError, invalid
from airflow_provider_lakeflow.testing.emulator.sql.landing import _SETUP, EventSource, LandedTables
from airflow_provider_lakeflow.testing.emulator.sql.statement import Statement, StatementRule
from airflow_provider_lakeflow.testing.emulator.sql.translation import (
    _SQL_STATES,
    _q,
    column_info,
    duckdb_catalog,
    jsonable,
    parameter_value,
    render,
    translate,
)

DEFAULT_WAREHOUSE_ID = "emulator-warehouse"
DEFAULT_CHUNK_ROWS = 10_000
DEFAULT_CATALOG = "main"
DEFAULT_SCHEMA = "default"
MAX_STATEMENTS = 1000  # statements (and their results) kept for polling; older ones are forgotten
RUNNING = frozenset({"PENDING", "RUNNING"})
BASE = "/api/2.0/sql/statements"


class SqlEngine(LandedTables):
    """The warehouses, the DuckDB database and the statements of one emulated workspace."""

    def __init__(self, workspace: EventSource) -> None:
        import duckdb  # here, not at the top: DuckDB loads only when the first SQL request arrives (a testing extra)

        self._duckdb = duckdb
        self.workspace = workspace
        self.warehouses: set[str] = {DEFAULT_WAREHOUSE_ID}
        self.chunk_rows = DEFAULT_CHUNK_ROWS
        self.rules: list[StatementRule] = []
        self._lock = threading.RLock()  # statements, rules
        self._sync_lock = threading.Lock()  # event sync and landing: one writer at a time
        self._statements: OrderedDict[str, Statement] = OrderedDict()
        self._seen: dict[str, int] = {}  # pipeline id -> events synced
        self._db = duckdb.connect(":memory:")
        for stmt in filter(str.strip, _SETUP.split(";")):
            self._db.execute(stmt)
        self._ensure_schema(DEFAULT_CATALOG, DEFAULT_SCHEMA)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="lakeflow-emulator-sql")
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            statements = list(self._statements.values())
        for st in statements:
            self._cancel(st)
        self._pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(self._duckdb.Error):
            self._db.close()

    # -- statements ---------------------------------------------------------------------------------------------
    def _rule_for(self, text: str) -> StatementRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.pattern.search(text):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self.rules.remove(rule)
                    return rule
        return None

    def submit(self, body: dict[str, Any]) -> tuple[Statement, float, str]:
        """Validate an ExecuteStatement request and start the statement; returns it, the wait, on_wait_timeout."""
        text = body.get("statement")
        if not isinstance(text, str) or not text.strip():
            raise invalid("statement: is required.")
        warehouse = body.get("warehouse_id")
        if not warehouse:
            raise invalid("warehouse_id: is required.")
        if warehouse not in self.warehouses:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"SQL warehouse {warehouse} does not exist.")
        m = re.fullmatch(r"(\d+)s", str(body.get("wait_timeout", "10s")))
        wait = int(m.group(1)) if m else -1
        if wait != 0 and not 5 <= wait <= 50:
            raise invalid(f"wait_timeout: must be 0s or between 5s and 50s, got {body.get('wait_timeout')!r}.")
        on_timeout = str(body.get("on_wait_timeout") or "CONTINUE")
        if on_timeout not in ("CONTINUE", "CANCEL"):
            raise invalid(f"on_wait_timeout: must be CONTINUE or CANCEL, got {on_timeout!r}.")
        disposition = str(body.get("disposition") or "INLINE")
        fmt = str(body.get("format") or "JSON_ARRAY")
        if disposition != "INLINE":
            raise invalid(f"disposition: the emulator supports INLINE only, got {disposition!r}.")
        if fmt != "JSON_ARRAY":
            raise invalid(f"format: INLINE disposition supports JSON_ARRAY only, got {fmt!r}.")
        parameters = body.get("parameters") or []
        if not isinstance(parameters, list) or not all(isinstance(p, dict) and p.get("name") for p in parameters):
            raise invalid("parameters: must be a list of {name, value, type} objects, each with a name.")
        row_limit = body.get("row_limit")
        if row_limit is not None and (not isinstance(row_limit, int) or row_limit < 0):
            raise invalid(f"row_limit: must be a non-negative integer, got {row_limit!r}.")
        st = Statement(
            statement_id=str(uuid.uuid4()),
            text=text,
            warehouse_id=str(warehouse),
            catalog=str(body.get("catalog") or DEFAULT_CATALOG),
            schema=str(body.get("schema") or DEFAULT_SCHEMA),
            parameters=parameters,
            row_limit=row_limit,
            rule=self._rule_for(text),
        )
        with self._lock:
            if self._closed:
                raise ApiError(503, "TEMPORARILY_UNAVAILABLE", "The SQL warehouse is shutting down.")
            self._statements[st.statement_id] = st
            while len(self._statements) > MAX_STATEMENTS:
                self._statements.popitem(last=False)
            st.future = self._pool.submit(self._run, st)
        return st, float(wait), on_timeout

    def _finish(self, st: Statement, state: str, **fields: Any) -> bool:
        with self._lock:
            if st.state not in RUNNING:
                return False
            st.state = state
            for k, v in fields.items():
                setattr(st, k, v)
            return True

    def _fail(self, st: Statement, message: str, code: str = "BAD_REQUEST", sql_state: str | None = None) -> None:
        self._finish(st, "FAILED", error={"error_code": code, "message": message}, sql_state=sql_state)

    def _run(self, st: Statement) -> None:
        with self._lock:
            if st.state != "PENDING":
                return
            st.state = "RUNNING"
        rule = st.rule
        if rule is not None and rule.delay > 0 and st.cancel_event.wait(rule.delay):
            return  # canceled while "running"
        if rule is not None and rule.error_message:
            self._fail(st, rule.error_message, rule.error_code, rule.sql_state)
            return
        try:
            sql, names = translate(st.text)
            given = {str(p["name"]): p for p in st.parameters}
            missing = [n for n in names if n not in given]
            if missing:
                self._fail(st, f"[UNBOUND_SQL_PARAMETER] Found the unbound parameter: {missing[0]}.", sql_state="42P02")
                return
            try:
                params = {n: parameter_value(given[n]) for n in names}
            except (ValueError, ArithmeticError) as exc:
                self._fail(st, f"[INVALID_PARAMETER_MARKER_VALUE] {exc}.", sql_state="22023")
                return
            self.sync()
            self._execute(st, sql, params)
        except Exception as exc:  # an emulator bug: report it as the warehouse would
            self._fail(st, f"[INTERNAL_ERROR] {type(exc).__name__}: {exc}", "INTERNAL_ERROR", "XX000")

    def _execute(self, st: Statement, sql: str, params: dict[str, Any]) -> None:
        duckdb = self._duckdb
        con = self._db.cursor()
        st.cursor = con
        try:
            if st.cancel_event.is_set():
                return
            try:
                self._ensure_schema(st.catalog, st.schema, con)
                location = f"{_q(duckdb_catalog(st.catalog))}.{_q(st.schema.lower())}"
                con.execute(f"USE {location}")
                con.execute(f"SET search_path = '{location.replace(chr(39), chr(39) * 2)},memory.main'")
                kinds = [s.type.name for s in duckdb.extract_statements(sql)]
                if len(kinds) != 1:
                    self._fail(
                        st,
                        "[PARSE_SYNTAX_ERROR] The Statement Execution API runs exactly one statement per request, "
                        f"got {len(kinds)}.",
                        sql_state="42601",
                    )
                    return
                con.execute(sql, params or None)
                description = con.description or []
                limit = st.row_limit
                rows = (con.fetchmany(limit + 1) if limit is not None else con.fetchall()) if description else []
            except duckdb.InterruptException:
                self._finish(st, "CANCELED")
                return
            except duckdb.Error as exc:
                label, sql_state = _SQL_STATES.get(type(exc).__name__, ("SQL_ERROR", "42000"))
                self._fail(st, f"[{label}] {exc}", sql_state=sql_state)
                return
            truncated = limit is not None and len(rows) > limit
            rows = rows[:limit] if truncated else rows
            columns = [column_info(d[0], str(d[1]), i) for i, d in enumerate(description)]
            kind = kinds[0]
            if kind in ("INSERT", "UPDATE", "DELETE") and [c["name"] for c in columns] == ["Count"]:
                columns = [column_info("num_affected_rows", "BIGINT", 0)]
                if kind == "INSERT":
                    columns.append(column_info("num_inserted_rows", "BIGINT", 1))
                    rows = [(r[0], r[0]) for r in rows]
            elif kind not in ("SELECT", "EXPLAIN", "PRAGMA", "CALL"):
                columns, rows = [], []  # DDL and the like: no result set, as on Databricks
            self._finish(st, "SUCCEEDED", columns=columns, rows=rows, truncated=truncated)
        finally:
            st.cursor = None
            con.close()

    def _statement(self, statement_id: str) -> Statement:
        with self._lock:
            st = self._statements.get(statement_id)
        if st is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Statement {statement_id} does not exist.")
        return st

    def _cancel(self, st: Statement) -> None:
        st.cancel_event.set()
        if self._finish(st, "CANCELED"):
            cursor = st.cursor
            if cursor is not None:
                with contextlib.suppress(Exception):  # the statement may have ended meanwhile
                    cursor.interrupt()

    def cancel(self, statement_id: str) -> dict[str, Any]:
        self._cancel(self._statement(statement_id))
        return {}

    async def wait(self, st: Statement, seconds: float) -> None:
        """Wait on the event loop (never blocking it) for the statement to end, at most ``seconds``."""
        if st.future is None or seconds <= 0:
            return
        deadline = time.monotonic() + seconds
        while st.state in RUNNING and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(st.future)), deadline - time.monotonic())
            except asyncio.TimeoutError:
                return
            except Exception:  # pragma: no cover - _run reports its own errors
                return
            if st.state in RUNNING:  # canceled before it started: the future ended, the state is final soon
                await asyncio.sleep(0.01)

    # -- responses ------------------------------------------------------------------------------------------------
    def _chunk_count(self, st: Statement) -> int:
        return math.ceil(len(st.rows) / self.chunk_rows) if st.rows else 0

    def chunk(self, st: Statement, index: int) -> dict[str, Any]:
        size = self.chunk_rows
        count = self._chunk_count(st)
        start = index * size
        rows = st.rows[start : start + size]
        out: dict[str, Any] = {
            "chunk_index": index,
            "row_offset": start,
            "row_count": len(rows),
            "data_array": [[render(v) for v in row] for row in rows],
        }
        if index + 1 < count:
            out["next_chunk_index"] = index + 1
            out["next_chunk_internal_link"] = f"{BASE}/{st.statement_id}/result/chunks/{index + 1}"
        return out

    def response(self, st: Statement) -> dict[str, Any]:
        with self._lock:
            state = st.state
        status: dict[str, Any] = {"state": state}
        out: dict[str, Any] = {"statement_id": st.statement_id, "status": status}
        if state == "FAILED":
            status["error"] = st.error
            if st.sql_state:
                status["sql_state"] = st.sql_state
        if state != "SUCCEEDED":
            return out
        count = self._chunk_count(st)
        size = self.chunk_rows
        manifest: dict[str, Any] = {
            "format": "JSON_ARRAY",
            "schema": {"column_count": len(st.columns), "columns": st.columns},
            "total_chunk_count": count,
            "total_row_count": len(st.rows),
            "truncated": st.truncated,
        }
        if count:
            manifest["chunks"] = [
                {"chunk_index": i, "row_offset": i * size, "row_count": min(size, len(st.rows) - i * size)}
                for i in range(count)
            ]
            out["result"] = self.chunk(st, 0)
        out["manifest"] = manifest
        return out

    def api_get(self, statement_id: str) -> dict[str, Any]:
        return self.response(self._statement(statement_id))

    def api_chunk(self, statement_id: str, index: int) -> dict[str, Any]:
        st = self._statement(statement_id)
        if st.state != "SUCCEEDED":
            raise invalid(f"Statement {statement_id} is {st.state}; it has no result to fetch.")
        if index < 0 or index >= self._chunk_count(st):
            raise invalid(f"chunk_index: {index} is out of range; the result has {self._chunk_count(st)} chunk(s).")
        return self.chunk(st, index)

    # -- control ----------------------------------------------------------------------------------------------------
    def set_warehouses(self, warehouse_ids: list[str]) -> None:
        self.warehouses = {str(w) for w in warehouse_ids}

    def set_chunk_rows(self, rows: int) -> None:
        """Rows per result chunk (default 10,000)."""
        if int(rows) < 1:
            raise ValueError("rows must be at least 1")
        self.chunk_rows = int(rows)

    def clear_scripts(self) -> None:
        """Forget every ``script_statement`` rule."""
        self.rules.clear()

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
        rule = StatementRule(re.compile(pattern), float(delay), error_message, error_code, sql_state, count)
        with self._lock:
            self.rules.append(rule)

    def statements(self) -> list[dict[str, Any]]:
        """Every SQL statement received so far (text, parameters, state), oldest first."""
        with self._lock:
            return [st.summary() for st in self._statements.values()]

    def query(self, statement: str, parameters: dict[str, Any] | None = None) -> list[list[Any]]:
        """Query the emulator's DuckDB directly (landed tables, ``event_log(...)``), for assertions: no HTTP, no
        warehouse check, after a sync; rows as JSON-friendly lists."""
        self.sync()
        sql, names = translate(statement)
        con = self._db.cursor()
        try:
            location = f"{_q(duckdb_catalog(DEFAULT_CATALOG))}.{_q(DEFAULT_SCHEMA)}"
            con.execute(f"USE {location}")
            con.execute(f"SET search_path = '{location},memory.main'")
            con.execute(sql, {n: (parameters or {})[n] for n in names} or None)
            rows = con.fetchall() if con.description else []
        finally:
            con.close()
        return [[jsonable(v) for v in row] for row in rows]
