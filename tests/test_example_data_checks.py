"""The data-checks example: ingestion, a table check and an event-log query, through real Airflow and the emulator."""

from __future__ import annotations

import json

from conftest import make_pipeline, run_dag, task_state, xcom


def _plain(value):
    """Rows as stored in XCom: Airflow 3 keeps them in its serde envelope."""
    if isinstance(value, dict) and "__data__" in value:
        return _plain(value["__data__"])
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def test_example_data_checks(airflow_db, lakeflow_emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATABRICKS_SQL",
        json.dumps(
            {
                "conn_type": "lakeflow_sql",
                "host": lakeflow_emulator.url,
                "password": "emulator-token",
                "extra": {"warehouse_id": "emulator-warehouse"},
            }
        ),
    )
    make_pipeline("salesforce-to-main-sales", tables=("account", "opportunity"))
    lakeflow_emulator.set_default_script(phase_seconds=0.05, rows={"main.sales.account": 321})
    dag_run = run_dag("example_lakeflow_data_checks")
    for task_id in ("run_ingestion", "check_accounts", "flow_metrics"):
        assert task_state(dag_run, task_id) == "success", task_id
    rows = [tuple(_plain(r)) for r in _plain(xcom(dag_run, "flow_metrics"))]
    assert rows[0] == ("main.sales.account", 321)
    metrics = xcom(dag_run, "run_ingestion", "table_metrics")
    assert dict(rows) == {t: m["num_output_rows"] for t, m in metrics.items()}


def test_example_data_checks_fails_on_an_empty_table(airflow_db, lakeflow_emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATABRICKS_SQL",
        json.dumps(
            {
                "conn_type": "lakeflow_sql",
                "host": lakeflow_emulator.url,
                "password": "emulator-token",
                "extra": {"warehouse_id": "emulator-warehouse"},
            }
        ),
    )
    make_pipeline("salesforce-to-main-sales", tables=("account", "opportunity"))
    lakeflow_emulator.set_default_script(phase_seconds=0.05, rows={"main.sales.account": 0})
    dag_run = run_dag("example_lakeflow_data_checks")
    assert task_state(dag_run, "run_ingestion") == "success"
    assert task_state(dag_run, "check_accounts") == "failed"
