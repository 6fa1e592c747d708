"""The emulator's SQL Statement Execution API on DuckDB: wire format (parsed by databricks-sdk), chunks, waits, cancel,
errors, warehouses, landed tables and the event log."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

pytest.importorskip("duckdb")

from airflow_provider_lakeflow.testing.emulator.sql.engine import DEFAULT_WAREHOUSE_ID
from airflow_provider_lakeflow.testing.emulator.sql.translation import translate

TOKEN = "emulator-token"
BASE = "/api/2.0/sql/statements"


def _post(emulator: Any, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(emulator.url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def _get(emulator: Any, path: str) -> requests.Response:
    return requests.get(emulator.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def _execute(emulator: Any, statement: str, **body: Any) -> dict[str, Any]:
    body = {"statement": statement, "warehouse_id": DEFAULT_WAREHOUSE_ID, **body}
    response = _post(emulator, BASE, body)
    assert response.status_code == 200, response.text
    return response.json()


def _sdk(emulator: Any) -> Any:
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient(host=emulator.url, token=TOKEN)


def _pipeline(emulator: Any, name: str = "sales", rows: int | dict[str, int] = 321) -> str:
    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.workspace import operations

    spec = {
        "name": name,
        "ingestion_definition": {
            "connection_name": "salesforce_conn",
            "objects": [
                {
                    "table": {
                        "source_schema": "objects",
                        "source_table": table,
                        "destination_catalog": "main",
                        "destination_schema": "sales",
                    }
                }
                for table in ("account", "contact")
            ],
        },
    }
    hook = LakeflowHook()
    pipeline_id = hook.run(operations.create_pipeline(spec))
    emulator.script_pipeline(pipeline_id, phase_seconds=0.01, rows=rows)
    hook.run(operations.start_update(pipeline_id))
    deadline = time.monotonic() + 10
    while emulator.update(pipeline_id)["state"] != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return pipeline_id


# --- wire format
def test_sdk_parses_a_result_with_chunks(lakeflow_emulator):
    from databricks.sdk.service.sql import ResultData, StatementResponse, StatementState

    lakeflow_emulator.set_sql_chunk_rows(4)
    raw = _execute(lakeflow_emulator, "SELECT range AS n, 'x' || range AS s FROM range(10) ORDER BY n")
    parsed = StatementResponse.from_dict(raw)
    assert parsed.status.state is StatementState.SUCCEEDED
    assert parsed.manifest.total_row_count == 10
    assert parsed.manifest.total_chunk_count == 3
    assert [c.row_count for c in parsed.manifest.chunks] == [4, 4, 2]
    assert [(c.name, c.type_name.value) for c in parsed.manifest.schema.columns] == [("n", "LONG"), ("s", "STRING")]
    assert parsed.result.data_array[0] == ["0", "x0"]
    assert parsed.result.next_chunk_index == 1
    assert parsed.result.next_chunk_internal_link == f"{BASE}/{parsed.statement_id}/result/chunks/1"

    last = ResultData.from_dict(_get(lakeflow_emulator, f"{BASE}/{parsed.statement_id}/result/chunks/2").json())
    assert last.chunk_index == 2 and last.row_offset == 8 and last.data_array == [["8", "x8"], ["9", "x9"]]
    assert last.next_chunk_index is None

    # and through databricks-sdk's own client end to end
    w = _sdk(lakeflow_emulator)
    chunk = w.statement_execution.get_statement_result_chunk_n(parsed.statement_id, 1)
    assert chunk.data_array == [["4", "x4"], ["5", "x5"], ["6", "x6"], ["7", "x7"]]
    assert w.statement_execution.get_statement(parsed.statement_id).status.state is StatementState.SUCCEEDED


def test_sdk_execute_statement_with_named_parameters(lakeflow_emulator):
    from databricks.sdk.service.sql import StatementParameterListItem

    w = _sdk(lakeflow_emulator)
    response = w.statement_execution.execute_statement(
        "SELECT :name AS name, :day AS day, :n + 1 AS n",
        DEFAULT_WAREHOUSE_ID,
        parameters=[
            StatementParameterListItem(name="name", value="O'Brien"),
            StatementParameterListItem(name="day", value="2024-02-29", type="DATE"),
            StatementParameterListItem(name="n", value="41", type="INT"),
        ],
        wait_timeout="10s",
    )
    assert response.result.data_array == [["O'Brien", "2024-02-29", "42"]]
    assert [c.type_name.value for c in response.manifest.schema.columns] == ["STRING", "DATE", "INT"]


def test_types_are_rendered_as_databricks_does(lakeflow_emulator):
    raw = _execute(
        lakeflow_emulator,
        "SELECT true AS b, 1.5::DECIMAL(10,2) AS d, 2.25::DOUBLE AS f, DATE '2024-01-02' AS day, "
        "TIMESTAMPTZ '2024-01-02 03:04:05.678+00' AS ts, NULL AS nothing, [1, 2] AS arr, {'a': 1} AS st",
    )
    assert raw["result"]["data_array"] == [
        ["true", "1.50", "2.25", "2024-01-02", "2024-01-02T03:04:05.678Z", None, "[1,2]", '{"a":1}']
    ]
    columns = raw["manifest"]["schema"]["columns"]
    assert [c["type_name"] for c in columns] == [
        "BOOLEAN",
        "DECIMAL",
        "DOUBLE",
        "DATE",
        "TIMESTAMP",
        "NULL",
        "ARRAY",
        "STRUCT",
    ]
    assert columns[1]["type_precision"] == 10 and columns[1]["type_scale"] == 2


def test_dml_answers_counts_and_ddl_no_result_set(lakeflow_emulator):
    ddl = _execute(lakeflow_emulator, "CREATE TABLE main.default.t (a INT)")
    assert ddl["status"]["state"] == "SUCCEEDED"
    assert ddl["manifest"]["schema"]["column_count"] == 0 and "result" not in ddl
    dml = _execute(lakeflow_emulator, "INSERT INTO main.default.t VALUES (1), (2), (3)")
    assert [c["name"] for c in dml["manifest"]["schema"]["columns"]] == ["num_affected_rows", "num_inserted_rows"]
    assert dml["result"]["data_array"] == [["3", "3"]]


# --- asynchronous execution, cancel, errors
def test_wait_timeout_zero_returns_at_once_then_polls(lakeflow_emulator):
    lakeflow_emulator.script_statement(r"slow_one", delay=0.5)
    raw = _execute(lakeflow_emulator, "SELECT 1 AS slow_one", wait_timeout="0s")
    assert raw["status"]["state"] in ("PENDING", "RUNNING") and "manifest" not in raw
    deadline = time.monotonic() + 10
    while (polled := _get(lakeflow_emulator, f"{BASE}/{raw['statement_id']}").json())["status"]["state"] != "SUCCEEDED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert polled["result"]["data_array"] == [["1"]]


def test_on_wait_timeout_cancel_and_explicit_cancel(lakeflow_emulator):
    lakeflow_emulator.script_statement(r"slow_two", delay=30)
    started = time.monotonic()
    raw = _execute(lakeflow_emulator, "SELECT 2 AS slow_two", wait_timeout="5s", on_wait_timeout="CANCEL")
    assert raw["status"]["state"] == "CANCELED"
    assert 4.5 <= time.monotonic() - started < 15

    raw = _execute(lakeflow_emulator, "SELECT 2 AS slow_two", wait_timeout="0s")
    assert _post(lakeflow_emulator, f"{BASE}/{raw['statement_id']}/cancel", {}).status_code == 200
    assert _get(lakeflow_emulator, f"{BASE}/{raw['statement_id']}").json()["status"]["state"] == "CANCELED"


def test_a_long_duckdb_query_is_interrupted_by_cancel(lakeflow_emulator):
    raw = _execute(lakeflow_emulator, "SELECT count(*) FROM range(100000000000) a", wait_timeout="0s")
    time.sleep(0.2)
    _post(lakeflow_emulator, f"{BASE}/{raw['statement_id']}/cancel", {})
    assert _get(lakeflow_emulator, f"{BASE}/{raw['statement_id']}").json()["status"]["state"] == "CANCELED"


def test_sql_errors_are_failed_statements(lakeflow_emulator):
    from databricks.sdk.service.sql import StatementResponse, StatementState

    raw = _execute(lakeflow_emulator, "SELECT * FROM main.sales.nope")
    parsed = StatementResponse.from_dict(raw)
    assert parsed.status.state is StatementState.FAILED
    assert "TABLE_OR_VIEW_NOT_FOUND" in parsed.status.error.message
    assert parsed.status.sql_state == "42P01"

    lakeflow_emulator.script_statement(r"boom", error_message="[DIVIDE_BY_ZERO] scripted", sql_state="22012")
    raw = _execute(lakeflow_emulator, "SELECT 1 AS boom")
    assert raw["status"] == {
        "state": "FAILED",
        "error": {"error_code": "BAD_REQUEST", "message": "[DIVIDE_BY_ZERO] scripted"},
        "sql_state": "22012",
    }
    unbound = _execute(lakeflow_emulator, "SELECT :missing")
    assert "UNBOUND_SQL_PARAMETER" in unbound["status"]["error"]["message"]
    bad = _execute(lakeflow_emulator, "SELECT :n", parameters=[{"name": "n", "value": "x", "type": "INT"}])
    assert bad["status"]["state"] == "FAILED"
    two = _execute(lakeflow_emulator, "SELECT 1; SELECT 2")
    assert "exactly one statement" in two["status"]["error"]["message"]


def test_request_errors(lakeflow_emulator):
    from databricks.sdk.errors import InvalidParameterValue, NotFound

    lakeflow_emulator.set_sql_warehouses(["abc123"])
    w = _sdk(lakeflow_emulator)
    with pytest.raises(NotFound, match="warehouse emulator-warehouse does not exist"):
        w.statement_execution.execute_statement("SELECT 1", DEFAULT_WAREHOUSE_ID)
    assert w.statement_execution.execute_statement("SELECT 1", "abc123").result.data_array == [["1"]]
    with pytest.raises(InvalidParameterValue, match="wait_timeout"):
        w.statement_execution.execute_statement("SELECT 1", "abc123", wait_timeout="3s")
    with pytest.raises(NotFound):
        w.statement_execution.get_statement("no-such-statement")
    assert _post(lakeflow_emulator, BASE, {"statement": "SELECT 1", "warehouse_id": "abc123"}).status_code == 200
    assert requests.post(lakeflow_emulator.url + BASE, json={}, timeout=10).status_code == 401


# --- landed tables and the event log
def test_completed_update_lands_rows_matching_its_metrics(lakeflow_emulator):
    pipeline_id = _pipeline(lakeflow_emulator, rows={"account": 321, "contact": 17})
    metrics = {
        e["origin"]["dataset_name"]: e["details"]["flow_progress"]["metrics"]["num_output_rows"]
        for e in lakeflow_emulator.events(pipeline_id)
        if (e.get("details") or {}).get("flow_progress", {}).get("status") == "COMPLETED"
    }
    assert metrics == {"main.sales.account": 321, "main.sales.contact": 17}
    for table, rows in metrics.items():
        assert _execute(lakeflow_emulator, f"SELECT count(*) FROM {table}")["result"]["data_array"] == [[str(rows)]]
    columns = _execute(lakeflow_emulator, "SELECT * FROM `main`.`sales`.`account` LIMIT 1")["manifest"]["schema"]
    assert [c["name"] for c in columns["columns"]] == [
        "id",
        "name",
        "amount",
        "is_active",
        "created_date",
        "updated_at",
        "_ingested_at",
    ]
    # catalog/schema fields of the request: unqualified names
    raw = _execute(lakeflow_emulator, "SELECT count(*) FROM contact", catalog="main", schema="sales")
    assert raw["result"]["data_array"] == [["17"]]


def test_a_second_update_replaces_the_rows(lakeflow_emulator):
    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.workspace import operations

    pipeline_id = _pipeline(lakeflow_emulator, rows=50)
    assert lakeflow_emulator.query_sql("SELECT count(*) FROM main.sales.account") == [[50]]
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.01, rows=80)
    LakeflowHook().run(operations.start_update(pipeline_id))
    time.sleep(0.2)
    assert lakeflow_emulator.query_sql("SELECT count(*) FROM main.sales.account") == [[80]]


def test_event_log_table_function(lakeflow_emulator):
    pipeline_id = _pipeline(lakeflow_emulator, rows=99)
    other = _pipeline(lakeflow_emulator, name="other", rows=5)
    raw = _execute(
        lakeflow_emulator,
        "SELECT origin.dataset_name AS t, details:flow_progress.metrics.num_output_rows::BIGINT AS n "
        "FROM event_log(:p) WHERE event_type = 'flow_progress' "
        "AND details:flow_progress.status = 'COMPLETED' ORDER BY t",
        parameters=[{"name": "p", "value": pipeline_id}],
    )
    assert raw["result"]["data_array"] == [["main.sales.account", "99"], ["main.sales.contact", "99"]]
    ids = _execute(lakeflow_emulator, f"SELECT DISTINCT origin.pipeline_id FROM event_log('{other}')")
    assert ids["result"]["data_array"] == [[other]]
    columns = _execute(lakeflow_emulator, f"SELECT * FROM event_log('{pipeline_id}') LIMIT 1")["manifest"]["schema"]
    assert [c["name"] for c in columns["columns"]] == [
        "id",
        "sequence",
        "origin",
        "timestamp",
        "message",
        "level",
        "maturity_level",
        "error",
        "details",
        "event_type",
    ]
    assert len(lakeflow_emulator.query_sql(f"SELECT * FROM event_log('{pipeline_id}')")) == len(
        lakeflow_emulator.events(pipeline_id)
    )


def test_reset_forgets_the_database(lakeflow_emulator):
    lakeflow_emulator.query_sql("CREATE TABLE main.default.gone AS SELECT 1 AS a")
    lakeflow_emulator.reset()
    with pytest.raises(Exception, match="gone"):
        lakeflow_emulator.query_sql("SELECT * FROM main.default.gone")


# --- translation
@pytest.mark.parametrize(
    ("databricks", "duckdb", "names"),
    [
        ("SELECT * FROM t WHERE a = :a AND b = :b", "SELECT * FROM t WHERE a = $a AND b = $b", ["a", "b"]),
        ("SELECT ':a', x::int, `a b` FROM t -- :c", "SELECT ':a', x::int, \"a b\" FROM t  ", []),
        ("SELECT 'it\\'s', 'a''b'", "SELECT 'it''s', 'a''b'", []),
        ("SELECT * FROM main.sales.t", 'SELECT * FROM "__uc_main".sales.t', []),
        ("SELECT * FROM `main`.sales.t", 'SELECT * FROM "__uc_main".sales.t', []),
        ("SELECT * FROM hive.sales.t, sales.t, main", "SELECT * FROM hive.sales.t, sales.t, main", []),
        (
            "SELECT details:flow_progress.metrics.num_output_rows FROM event_log(:p)",
            "SELECT json_extract_string(details, '$.flow_progress.metrics.num_output_rows') FROM event_log($p)",
            ["p"],
        ),
    ],
)
def test_translate(databricks, duckdb, names):
    assert translate(databricks) == (duckdb, names)
