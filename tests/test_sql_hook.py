"""LakeflowSqlHook against the emulator: DB-API behaviour, parameters, chunked results with flat memory, failures,
timeouts, auth, retries, connection-type resolution, and common-sql operators in a DAG."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import subprocess
import sys
import time
import tracemalloc

import pytest

pytest.importorskip("duckdb")

from conftest import make_pipeline, run_dag, task_state, xcom

from airflow_provider_lakeflow.sql import dbapi
from airflow_provider_lakeflow.testing.emulator.sql.engine import DEFAULT_WAREHOUSE_ID

STATEMENTS = r"/api/2\.0/sql/statements"


def _set_conn(monkeypatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


@pytest.fixture
def sql_conn(lakeflow_emulator, monkeypatch) -> str:
    """``databricks_sql``: type lakeflow_sql, PAT, the emulator's warehouse in the extras."""
    _set_conn(
        monkeypatch,
        "databricks_sql",
        conn_type="lakeflow_sql",
        host=lakeflow_emulator.url,
        password="emulator-token",
        extra={"warehouse_id": DEFAULT_WAREHOUSE_ID},
    )
    return "databricks_sql"


def _hook(conn_id: str = "databricks_sql", **kwargs):
    from airflow_provider_lakeflow.hooks import LakeflowSqlHook

    return LakeflowSqlHook(conn_id, **kwargs)


# --- DB-API --------------------------------------------------------------------------------------------------------
def test_cursor_description_fetch_and_rowcount(sql_conn, lakeflow_emulator):
    lakeflow_emulator.set_sql_chunk_rows(3)
    with _hook().get_conn() as conn:
        cur = conn.cursor()
        assert dbapi.paramstyle == "named" and cur.arraysize == 1
        cur.execute("SELECT range AS n, 'r' || range AS s, range % 2 = 0 AS even FROM range(8) ORDER BY n")
        assert cur.description == [
            ("n", "long", None, None, None, None, True),
            ("s", "string", None, None, None, None, True),
            ("even", "boolean", None, None, None, None, True),
        ]
        assert cur.rowcount == 8
        assert cur.statement_id and cur.query_id == cur.statement_id
        assert cur.fetchone() == (0, "r0", True)
        cur.arraysize = 2
        assert cur.fetchmany() == [(1, "r1", False), (2, "r2", True)]
        assert cur.fetchmany(4) == [(3, "r3", False), (4, "r4", True), (5, "r5", False), (6, "r6", True)]
        assert cur.fetchall() == [(7, "r7", False)]
        assert cur.fetchone() is None and cur.fetchall() == [] and cur.fetchmany(5) == []

        cur.execute("CREATE TABLE main.default.t (a INT)")
        assert cur.description is None and cur.rowcount == -1
        with pytest.raises(dbapi.ProgrammingError, match="no result set"):
            cur.fetchall()
        cur.execute("INSERT INTO main.default.t VALUES (1), (2)")
        assert cur.rowcount == 2
        assert list(cur.execute("SELECT a FROM main.default.t ORDER BY a")) == [(1,), (2,)]
        cur.close()
        with pytest.raises(dbapi.InterfaceError):
            cur.execute("SELECT 1")
    with pytest.raises(dbapi.InterfaceError):
        conn.cursor()


def test_dbapihook_methods(sql_conn):
    from airflow.providers.common.sql.hooks.handlers import fetch_all_handler

    hook = _hook()
    assert hook.get_first("SELECT 1 AS a, 'x' AS b") == (1, "x")
    assert hook.get_records("SELECT range FROM range(3)") == [(0,), (1,), (2,)]
    assert hook.run("SELECT 42 AS answer", handler=fetch_all_handler) == [(42,)]
    assert hook.last_description[0][0] == "answer"
    assert hook.run("SELECT 1; SELECT 2", split_statements=True, return_last=False, handler=fetch_all_handler) == [
        [(1,)],
        [(2,)],
    ]
    hook.run("CREATE TABLE main.default.people (id INT, name STRING)")
    hook.insert_rows("main.default.people", [(1, "Ann"), (2, "O'Brien")], target_fields=["id", "name"])
    assert hook.get_records("SELECT id, name FROM main.default.people ORDER BY id") == [(1, "Ann"), (2, "O'Brien")]
    assert hook.test_connection() == (
        True,
        "Connected to " + hook.api.host + " as emulator-user@example.com; SQL warehouse emulator-warehouse answered.",
    )


TRICKY = "O'Brien said \"hi\" \\ '; DROP TABLE x; -- :name %(x)s ?"


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        ("SELECT :v AS v", {"v": TRICKY}),
        ("SELECT %(v)s AS v", {"v": TRICKY}),
        ("SELECT ? AS v", [TRICKY]),
        ("SELECT %s AS v", (TRICKY,)),
    ],
)
def test_parameters_are_bound_never_formatted(sql_conn, lakeflow_emulator, sql, parameters):
    assert _hook().get_first(sql, parameters=parameters) == (TRICKY,)
    (request,) = lakeflow_emulator.requests(path_regex=STATEMENTS + "$", method="POST")
    assert TRICKY not in request.body["statement"]
    assert request.body["parameters"][0]["value"] == TRICKY


def test_markers_inside_literals_and_comments_are_left_alone(sql_conn):
    row = _hook().get_first("SELECT '?' AS q, '%s' AS f, ':x' AS n, ? AS v -- ? in a comment\n", parameters=["bound"])
    assert row == ("?", "%s", ":x", "bound")
    assert _hook().get_first("SELECT '%%' AS lit, %(a)s AS a, 5 %% 3 AS m", parameters={"a": 1}) == ("%%", 1, 2)


VALUES = [
    42,
    2**40,
    -1.5,
    True,
    None,
    "text",
    dt.date(2024, 2, 29),
    dt.datetime(2024, 2, 29, 12, 30, 15, 123000, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 2, 29, 12, 30, 15),
    decimal.Decimal("12345.678"),
]


@pytest.mark.parametrize("value", VALUES, ids=[type(v).__name__ + str(i) for i, v in enumerate(VALUES)])
def test_typed_values_round_trip(sql_conn, value):
    (back,) = _hook().get_first("SELECT :v AS v", parameters={"v": value})
    assert back == value and type(back) is type(value)


def test_bind_errors():
    with pytest.raises(dbapi.ProgrammingError, match="2 positional marker"):
        dbapi.bind("SELECT ?, ?", [1])
    with pytest.raises(dbapi.ProgrammingError, match="No value for parameter"):
        dbapi.bind("SELECT %(a)s", {"b": 1})
    with pytest.raises(dbapi.NotSupportedError, match="bytes"):
        dbapi.bind("SELECT :a", {"a": b"x"})
    with pytest.raises(dbapi.ProgrammingError, match="not a valid SQL identifier"):
        dbapi.bind("SELECT 1", {"a-b": 1})
    assert dbapi.bind("SELECT '?'", None) == ("SELECT '?'", [])
    assert dbapi.bind("SELECT ?", [2**70])[1] == [{"name": "p1", "value": str(2**70), "type": "DECIMAL(22,0)"}]


# --- many chunks, flat memory
@pytest.fixture
def emulator_process(monkeypatch):
    """An emulator in its own process, so that tracemalloc sees only the client's allocations."""
    from airflow_provider_lakeflow.testing import EmulatorClient

    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_lakeflow.testing.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        for line in proc.stdout:  # type: ignore[union-attr]
            if "listening on" in line:
                url = line.rsplit(" ", 1)[-1].strip()
            if line.strip() == "READY":
                break
        assert url, "the emulator did not start"
        _set_conn(
            monkeypatch,
            "sql_remote",
            conn_type="lakeflow_sql",
            host=url,
            password="emulator-token",
            extra={"warehouse_id": DEFAULT_WAREHOUSE_ID},
        )
        yield EmulatorClient(url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _deep_size(rows: list[tuple]) -> int:
    return sys.getsizeof(rows) + sum(sys.getsizeof(r) + sum(sys.getsizeof(v) for v in r) for r in rows)


def test_many_chunks_stream_with_flat_memory(emulator_process):
    emulator_process.set_sql_chunk_rows(500)  # 200 chunks (kept small: tracemalloc slows the client ~4x)
    query = "SELECT range AS id, 'row number ' || range AS label FROM range(100000) ORDER BY id"
    cur = _hook("sql_remote").get_conn().cursor()
    cur.execute(query)
    assert cur.rowcount == 100_000
    expected = len(cur.fetchmany(1000))  # warm up: lazy imports, the keep-alive connection
    tracemalloc.start()
    try:
        while batch := cur.fetchmany(500):
            assert batch[0][0] == expected
            expected += len(batch)
        _, stream_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert expected == 100_000
    cur.execute(query)
    total = _deep_size(cur.fetchall())  # what holding the whole result would cost
    chunk_requests = emulator_process.requests(path_regex=STATEMENTS + r"/[^/]+/result/chunks/\d+$")
    assert len(chunk_requests) == 2 * 199  # chunk 0 comes with the statement
    assert stream_peak < total / 20, (stream_peak, total)


# --- failures, time limits, cancel
def test_failed_statement_raises_the_servers_message(sql_conn, lakeflow_emulator):
    from airflow.providers.common.sql.hooks.handlers import fetch_all_handler

    with pytest.raises(dbapi.StatementFailed, match=r"(?s)TABLE_OR_VIEW_NOT_FOUND.*\(SQLSTATE 42P01\)") as info:
        _hook().run("SELECT * FROM main.sales.nope", handler=fetch_all_handler)
    assert info.value.sql_state == "42P01" and info.value.error_code == "BAD_REQUEST"
    lakeflow_emulator.script_statement("fails", error_message="[DELTA_TABLE_NOT_FOUND] scripted failure")
    with pytest.raises(dbapi.StatementFailed, match="scripted failure"):
        _hook().get_first("SELECT 'fails'")


def test_slow_statement_is_polled(sql_conn, lakeflow_emulator):
    lakeflow_emulator.script_statement("slowish", delay=0.6)
    assert _hook(wait_timeout=0, poll_interval=0.1).get_first("SELECT 'slowish' AS s") == ("slowish",)
    polls = lakeflow_emulator.requests(path_regex=STATEMENTS + r"/[^/]+$", method="GET")
    assert 2 <= len(polls) <= 12


def test_statement_timeout_cancels(sql_conn, lakeflow_emulator):
    lakeflow_emulator.script_statement("forever", delay=60)
    started = time.monotonic()
    with pytest.raises(dbapi.StatementTimeout, match="canceled"):
        _hook(statement_timeout=0.5, poll_interval=0.1).get_first("SELECT 'forever'")
    assert time.monotonic() - started < 5
    (statement,) = lakeflow_emulator.statements()
    assert statement["state"] == "CANCELED"
    assert len(lakeflow_emulator.requests(path_regex=STATEMENTS + r"/[^/]+/cancel$", method="POST")) == 1


def test_interrupted_wait_cancels_the_statement(sql_conn, lakeflow_emulator, monkeypatch):
    import airflow_provider_lakeflow.hooks.lakeflow as lakeflow_module

    class Killed(BaseException):
        pass

    def killed(seconds: float) -> None:
        raise Killed

    lakeflow_emulator.script_statement("long", delay=60)
    monkeypatch.setattr(lakeflow_module.time, "sleep", killed)
    cur = _hook(wait_timeout=0).get_conn().cursor()
    with pytest.raises(Killed):
        cur.execute("SELECT 'long'")
    monkeypatch.undo()
    (statement,) = lakeflow_emulator.statements()
    assert statement["state"] == "CANCELED"


def test_warehouse_errors(sql_conn, lakeflow_emulator, monkeypatch):
    from databricks.sdk.errors import NotFound

    with pytest.raises(NotFound, match="warehouse nope does not exist"):
        _hook(warehouse_id="nope").get_first("SELECT 1")
    _set_conn(monkeypatch, "no_wh", conn_type="lakeflow_sql", host=lakeflow_emulator.url, password="emulator-token")
    with pytest.raises(dbapi.ProgrammingError, match="warehouse_id"):
        _hook("no_wh").get_first("SELECT 1")
    assert _hook("no_wh", warehouse_id=DEFAULT_WAREHOUSE_ID).get_first("SELECT 1") == (1,)
    ok, message = _hook("no_wh").test_connection()
    assert ok and "No warehouse_id is set" in message
    with pytest.raises(ValueError, match="wait_timeout"):
        _hook(wait_timeout=3)


# --- auth and retries
def test_pat_and_oauth_m2m(sql_conn, lakeflow_emulator, monkeypatch):
    assert _hook().get_first("SELECT 1") == (1,)
    _set_conn(
        monkeypatch,
        "sql_m2m",
        conn_type="lakeflow_sql",
        host=lakeflow_emulator.url,
        login="emulator-client",
        password="emulator-secret",
        extra={"warehouse_id": DEFAULT_WAREHOUSE_ID},
    )
    assert _hook("sql_m2m").get_first("SELECT 2") == (2,)
    auths = [r.auth for r in lakeflow_emulator.requests(path_regex=STATEMENTS + "$", method="POST")]
    assert auths == ["pat", "oauth"]
    agents = {r.user_agent for r in lakeflow_emulator.requests(path_regex=STATEMENTS)}
    assert all("airflow-provider-lakeflow/" in (a or "") for a in agents)


@pytest.mark.parametrize("status", [429, 503])
def test_transient_faults_are_retried(sql_conn, lakeflow_emulator, status):
    lakeflow_emulator.set_sql_chunk_rows(2)
    lakeflow_emulator.inject_fault(STATEMENTS + "$", method="POST", status=status, retry_after=0)
    lakeflow_emulator.inject_fault(STATEMENTS + r"/[^/]+/result/chunks/1$", status=status, retry_after=0)
    assert _hook().get_records("SELECT range FROM range(5)") == [(0,), (1,), (2,), (3,), (4,)]
    statuses = [r.status for r in lakeflow_emulator.requests(path_regex=STATEMENTS)]
    assert statuses.count(status) == 2
    assert len(lakeflow_emulator.statements()) == 1  # the throttled submit did not run a second statement


# --- connection types and common-sql -------------------------------------------------------------------------------
def test_connection_types_resolve_to_the_right_hook(sql_conn, lakeflow_emulator, monkeypatch):
    from airflow.providers.common.sql.operators.sql import BaseSQLOperator

    from airflow_provider_lakeflow import get_provider_info
    from airflow_provider_lakeflow.hooks import LakeflowHook, LakeflowSqlHook

    types = {c["connection-type"]: c["hook-class-name"] for c in get_provider_info()["connection-types"]}
    assert types["lakeflow_sql"] == "airflow_provider_lakeflow.hooks.sql.LakeflowSqlHook"
    hook = BaseSQLOperator.get_hook("databricks_sql", hook_params={"catalog": "main"})
    assert isinstance(hook, LakeflowSqlHook)
    assert hook.warehouse_id == DEFAULT_WAREHOUSE_ID and hook.catalog == "main"
    assert LakeflowSqlHook.conn_type == "lakeflow_sql" and LakeflowSqlHook.default_conn_name == "databricks_default"
    # the same connection also serves LakeflowHook
    assert LakeflowHook("databricks_sql").test_connection()[0]


def test_importing_the_hooks_package_leaves_common_sql_unloaded():
    code = (
        "import sys, airflow_provider_lakeflow.hooks, airflow_provider_lakeflow.operators;"
        "heavy = [m for m in ('airflow.providers.common.sql.hooks.sql', 'duckdb', "
        "'airflow_provider_lakeflow.hooks.sql') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_common_sql_operators_in_a_dag(airflow_db, sql_conn, lakeflow_emulator):
    lakeflow_emulator.set_default_script(phase_seconds=0.05, rows=1234)
    pipeline_id = make_pipeline("sql_sales")
    dag_run = run_dag("lf_sql_checks", pipeline_name="sql_sales")
    for task in ("run", "table_check", "column_check", "count_matches_metrics", "event_log_rows", "flow_metrics"):
        assert task_state(dag_run, task) == "success", task
    metrics = xcom(dag_run, "run", "table_metrics")
    assert metrics["main.sales.account"]["num_output_rows"] == 1234
    rows = [r["__data__"] if isinstance(r, dict) else r for r in xcom(dag_run, "flow_metrics")]  # serde'd tuples
    assert [list(r) for r in rows] == [["main.sales.account", 1234], ["main.sales.contact", 1234]]
    assert xcom(dag_run, "run", "pipeline_id") == pipeline_id


def test_a_failing_check_fails_its_task(airflow_db, sql_conn, lakeflow_emulator):
    lakeflow_emulator.set_default_script(phase_seconds=0.05, rows=1000)  # not the 1234 the checks expect
    make_pipeline("sql_sales")
    dag_run = run_dag("lf_sql_checks", pipeline_name="sql_sales")
    assert task_state(dag_run, "run") == "success"
    assert task_state(dag_run, "table_check") == "failed"
    assert task_state(dag_run, "count_matches_metrics") == "success"  # the count still matches the metrics
