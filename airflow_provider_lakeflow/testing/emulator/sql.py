"""The SQL Statement Execution API (``/api/2.0/sql/statements``) on an embedded DuckDB.

- Landed tables: when a flow's ``flow_progress`` COMPLETED event (with ``metrics.num_output_rows`` = n) appears in a
  pipeline's event log, the destination table is (re)written with exactly n rows. Events are materialized lazily (see
  ``updates.py``), so rows land when the emulator first observes the event: before every statement the engine syncs the
  events it has not seen yet. No timers, and the table always agrees with the metrics the event log reported.
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

DuckDB is imported on first use only (it is a dependency of the ``testing`` extra).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import datetime as dt
import decimal
import json
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow._sql_lexer import CODE, COMMENT, IDENT, STRING, tokens, unquote_string
from airflow_provider_lakeflow.testing.emulator.errors import ApiError, invalid

if TYPE_CHECKING:
    from airflow_provider_lakeflow.testing.emulator.state import Workspace

DEFAULT_WAREHOUSE_ID = "emulator-warehouse"
DEFAULT_CHUNK_ROWS = 10_000
DEFAULT_CATALOG = "main"
DEFAULT_SCHEMA = "default"
MAX_STATEMENTS = 1000  # statements (and their results) kept for polling; older ones are forgotten
RESERVED = frozenset({"main", "system", "temp", "memory"})
RUNNING = frozenset({"PENDING", "RUNNING"})
BASE = "/api/2.0/sql/statements"
_EVENTS = "memory.__lakeflow.events"
_ORIGIN_FIELDS = (
    "pipeline_id",
    "pipeline_name",
    "update_id",
    "flow_id",
    "flow_name",
    "dataset_name",
    "ingestion_source_connection_name",
    "ingestion_source_catalog_name",
    "ingestion_source_schema_name",
    "ingestion_source_table_name",
)
_ORIGIN_SHAPE = json.dumps(dict.fromkeys(_ORIGIN_FIELDS, "VARCHAR"))
_SETUP = f"""
SET TimeZone = 'UTC';
CREATE SCHEMA IF NOT EXISTS memory.__lakeflow;
CREATE TABLE IF NOT EXISTS {_EVENTS} (
    pipeline_id VARCHAR, seq BIGINT, id VARCHAR, sequence JSON,
    origin STRUCT({", ".join(f"{f} VARCHAR" for f in _ORIGIN_FIELDS)}),
    "timestamp" TIMESTAMPTZ, message VARCHAR, level VARCHAR, maturity_level VARCHAR, error JSON, details JSON,
    event_type VARCHAR);
CREATE OR REPLACE MACRO memory.main.event_log(__pipeline_id) AS TABLE
    SELECT id, sequence, origin, "timestamp", message, level, maturity_level, error, details, event_type
    FROM {_EVENTS} WHERE pipeline_id = __pipeline_id ORDER BY seq;
"""


def duckdb_catalog(catalog: str) -> str:
    name = catalog.lower()
    return f"__uc_{name}" if name in RESERVED else name


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- SQL translation -----------------------------------------------------------------------------------------------
_PART = r"(?:[A-Za-z_]\w*|\x00\d+\x00)"
_THREE_PART = re.compile(rf"(?<![\w.$\x00])({_PART})(\s*\.\s*{_PART}\s*\.\s*{_PART})")
_JSON_PATH = re.compile(r"(?<![\w.$:])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?!:)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*)")
_PARAM = re.compile(r"(?<![\w:$\x00]):([A-Za-z_]\w*)")


def translate(sql: str) -> tuple[str, list[str]]:
    """Databricks SQL -> DuckDB SQL, and the parameter names it uses (in order of first use)."""
    pieces: list[str] = []
    masked: list[str] = []
    for kind, text in tokens(sql):
        if kind == CODE:
            masked.append(text)
            continue
        if kind == COMMENT:
            piece = " "
        elif kind == IDENT:
            piece = _q(text[1:-1].replace("``", "`") if text.endswith("`") and len(text) > 1 else text[1:])
        elif kind == STRING and text[0] == "'":
            piece = "'" + unquote_string(text).replace("'", "''") + "'"
        else:  # "...": a name in DuckDB
            piece = text
        masked.append(f"\x00{len(pieces)}\x00")
        pieces.append(piece)
    code = "".join(masked)
    names: list[str] = []

    def catalog(m: re.Match[str]) -> str:
        first = m.group(1)
        if first.startswith("\x00"):
            piece = pieces[int(first.strip("\x00"))]
            bare = piece[1:-1].replace('""', '"') if piece.startswith('"') else None
            if bare is not None and bare.lower() in RESERVED:
                pieces[int(first.strip("\x00"))] = _q(duckdb_catalog(bare))
            return m.group(0)
        if first.lower() in RESERVED:
            return _q(duckdb_catalog(first)) + m.group(2)
        return m.group(0)

    def param(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${m.group(1)}"

    code = _THREE_PART.sub(catalog, code)
    code = _JSON_PATH.sub(lambda m: f"json_extract_string({m.group(1)}, '$.{m.group(2)}')", code)
    code = _PARAM.sub(param, code)
    out = re.sub(r"\x00(\d+)\x00", lambda m: pieces[int(m.group(1))], code)
    return out, names


def parameter_value(item: dict[str, Any]) -> Any:
    """A StatementParameterListItem's value, cast to its type as Databricks would (ValueError when it cannot)."""
    value = item.get("value")
    if value is None:
        return None
    kind = str(item.get("type") or "STRING").strip().upper()
    base = kind.split("(", 1)[0].strip()
    text = str(value)
    if base in ("STRING", "VARCHAR", "CHAR"):
        return text
    if base in ("INT", "INTEGER", "BIGINT", "LONG", "SMALLINT", "SHORT", "TINYINT", "BYTE"):
        return int(text.strip())
    if base in ("DOUBLE", "FLOAT", "REAL"):
        return float(text.strip())
    if base in ("DECIMAL", "DEC", "NUMERIC"):
        try:
            return decimal.Decimal(text.strip())
        except decimal.InvalidOperation:
            raise ValueError(f"{text!r} is not a DECIMAL") from None
    if base == "BOOLEAN":
        low = text.strip().lower()
        if low not in ("true", "false"):
            raise ValueError(f"{text!r} is not a BOOLEAN")
        return low == "true"
    if base == "DATE":
        return dt.date.fromisoformat(text.strip())
    if base in ("TIMESTAMP", "TIMESTAMP_LTZ", "TIMESTAMP_NTZ"):
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if base == "TIMESTAMP_NTZ":
            return moment.replace(tzinfo=None)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    if base == "VOID":
        return None
    raise ValueError(f"unsupported parameter type {kind!r}")


# --- result rendering ----------------------------------------------------------------------------------------------
_SIMPLE_TYPES = {
    "BOOLEAN": "BOOLEAN",
    "TINYINT": "BYTE",
    "SMALLINT": "SHORT",
    "INTEGER": "INT",
    "BIGINT": "LONG",
    "UTINYINT": "SHORT",
    "USMALLINT": "INT",
    "UINTEGER": "LONG",
    "FLOAT": "FLOAT",
    "DOUBLE": "DOUBLE",
    "VARCHAR": "STRING",
    "JSON": "STRING",
    "UUID": "STRING",
    "TIME": "STRING",
    "BLOB": "BINARY",
    "DATE": "DATE",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
    "TIMESTAMP": "TIMESTAMP_NTZ",
    "INTERVAL": "INTERVAL",
    '"NULL"': "NULL",
    "NULL": "NULL",
}
_TEXT = {"LONG": "BIGINT", "BYTE": "TINYINT", "SHORT": "SMALLINT", "TIMESTAMP_NTZ": "TIMESTAMP_NTZ", "NULL": "VOID"}


def column_info(name: str, duck_type: str, position: int) -> dict[str, Any]:
    """A ColumnInfo for a DuckDB column type, named as Databricks names types."""
    t = duck_type.upper()
    info: dict[str, Any] = {"name": name, "position": position}
    if m := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", t):
        p, s = int(m.group(1)), int(m.group(2))
        info.update(type_name="DECIMAL", type_text=f"DECIMAL({p},{s})", type_precision=p, type_scale=s)
    elif t in ("HUGEINT", "UHUGEINT", "UBIGINT"):
        info.update(type_name="DECIMAL", type_text="DECIMAL(38,0)", type_precision=38, type_scale=0)
    elif t.endswith("]"):
        info.update(type_name="ARRAY", type_text=f"ARRAY<{t.rsplit('[', 1)[0]}>")
    elif t.startswith("STRUCT"):
        info.update(type_name="STRUCT", type_text=t)
    elif t.startswith("MAP"):
        info.update(type_name="MAP", type_text=t)
    else:
        kind = _SIMPLE_TYPES.get(t, "STRING")
        info.update(type_name=kind, type_text=_TEXT.get(kind, kind))
    return info


def _plain(value: Any) -> Any:
    """A nested value (in a STRUCT, MAP or ARRAY) as JSON-friendly data."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else render(value)
    return render(value)


def render(value: Any) -> str | None:
    """A value as the JSON_ARRAY format writes it: a string, or None for NULL."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
            return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict | list | tuple):
        return json.dumps(_plain(value), separators=(",", ":"))
    return str(value)


def jsonable(value: Any) -> Any:
    """Rows for the control API: numbers, booleans and None as they are; everything else as its rendering."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return render(value)


# --- statements ----------------------------------------------------------------------------------------------------
@dataclass
class StatementRule:
    """Scripted behaviour for statements whose text matches ``pattern`` (a regex, searched)."""

    pattern: re.Pattern[str]
    delay: float = 0.0
    error_message: str | None = None
    error_code: str = "BAD_REQUEST"
    sql_state: str | None = None
    remaining: int | None = None


@dataclass
class Statement:
    statement_id: str
    text: str
    warehouse_id: str
    catalog: str
    schema: str
    parameters: list[dict[str, Any]]
    row_limit: int | None
    rule: StatementRule | None
    state: str = "PENDING"
    error: dict[str, Any] | None = None
    sql_state: str | None = None
    columns: list[dict[str, Any]] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    truncated: bool = False
    cancel_event: threading.Event = field(default_factory=threading.Event)
    future: concurrent.futures.Future[None] | None = None
    cursor: Any = None

    def summary(self) -> dict[str, Any]:
        return {
            "statement_id": self.statement_id,
            "statement": self.text,
            "warehouse_id": self.warehouse_id,
            "parameters": self.parameters,
            "state": self.state,
            "error": self.error,
            "row_count": len(self.rows),
        }


_SQL_STATES = {
    "CatalogException": ("TABLE_OR_VIEW_NOT_FOUND", "42P01"),
    "ParserException": ("PARSE_SYNTAX_ERROR", "42601"),
    "BinderException": ("UNRESOLVED_COLUMN", "42703"),
    "ConversionException": ("CAST_INVALID_INPUT", "22018"),
    "InvalidInputException": ("INVALID_PARAMETER_VALUE", "22023"),
    "ConstraintException": ("CONSTRAINT_VIOLATION", "23000"),
    "OutOfRangeException": ("ARITHMETIC_OVERFLOW", "22003"),
}


class SqlEngine:
    """The warehouses, the DuckDB database and the statements of one emulated workspace."""

    def __init__(self, workspace: Workspace) -> None:
        import duckdb

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

    # -- landed tables and the event log --------------------------------------------------------------------------
    def _ensure_schema(self, catalog: str, schema: str, db: Any = None) -> None:
        con = db or self._db
        name = duckdb_catalog(catalog)
        if name != "memory":
            con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {_q(name)}")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(name)}.{_q(schema.lower())}")

    def sync(self) -> None:
        """Bring the event log table and the landed tables up to date with the workspace's events."""
        with self._sync_lock:
            batches = self.workspace.events_since(self._seen)
            if not batches:
                return
            con = self._db.cursor()
            try:
                rows = []
                for pipeline_id, events in batches:
                    for e in events:
                        rows.append(
                            (
                                pipeline_id,
                                e["sequence"]["control_plane_seq_no"],
                                e["id"],
                                json.dumps(e.get("sequence")),
                                json.dumps(e.get("origin") or {}),
                                e["_ms"] / 1000.0,
                                e.get("message"),
                                e.get("level"),
                                e.get("maturity_level"),
                                json.dumps(e["error"]) if e.get("error") else None,
                                json.dumps(e.get("details") or {}),
                                e.get("event_type"),
                            )
                        )
                        self._land(con, e)
                con.executemany(
                    f"INSERT INTO {_EVENTS} SELECT ?, ?, ?, ?::JSON, json_transform(?, '{_ORIGIN_SHAPE}'), "
                    "to_timestamp(?), ?, ?, ?, ?::JSON, ?::JSON, ?",
                    rows,
                )
            finally:
                con.close()

    def _land(self, con: Any, event: dict[str, Any]) -> None:
        progress = (event.get("details") or {}).get("flow_progress") or {}
        rows = (progress.get("metrics") or {}).get("num_output_rows")
        table = (event.get("origin") or {}).get("dataset_name")
        if progress.get("status") != "COMPLETED" or rows is None or not table or table.count(".") != 2:
            return
        catalog, schema, name = table.split(".")
        self._ensure_schema(catalog, schema, con)
        target = f"{_q(duckdb_catalog(catalog))}.{_q(schema.lower())}.{_q(name.lower())}"
        con.execute(
            f"""CREATE OR REPLACE TABLE {target} AS
            SELECT CAST(range + 1 AS BIGINT) AS id,
                   'row-' || CAST(range + 1 AS VARCHAR) AS name,
                   CAST(((range * 37) % 100000) / 100 AS DECIMAL(12, 2)) AS amount,
                   range % 3 <> 0 AS is_active,
                   DATE '2024-01-01' + CAST(range % 365 AS INTEGER) AS created_date,
                   to_timestamp($at) - to_seconds(CAST(range % 86400 AS BIGINT)) AS updated_at,
                   to_timestamp($at) AS _ingested_at
            FROM range($n)""",
            {"at": event["_ms"] / 1000.0, "n": int(rows)},
        )

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
        import asyncio

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
        if int(rows) < 1:
            raise ValueError("rows must be at least 1")
        self.chunk_rows = int(rows)

    def clear_scripts(self) -> None:
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
        rule = StatementRule(re.compile(pattern), float(delay), error_message, error_code, sql_state, count)
        with self._lock:
            self.rules.append(rule)

    def statements(self) -> list[dict[str, Any]]:
        with self._lock:
            return [st.summary() for st in self._statements.values()]

    def query(self, statement: str, parameters: dict[str, Any] | None = None) -> list[list[Any]]:
        """Run SQL directly (no HTTP, no warehouse check), after a sync: rows as JSON-friendly lists."""
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
