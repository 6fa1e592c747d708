"""A DAG for tests/test_sql_hook.py: land a table with LakeflowRunPipelineOperator, then check it and read the
pipeline's event log with common-sql operators over LakeflowSqlHook (connection ``databricks_sql`` of type
``lakeflow_sql``, which also serves the run operator: one connection for both)."""

from __future__ import annotations

import pendulum
from airflow import DAG
from airflow.providers.common.sql.operators.sql import (
    SQLColumnCheckOperator,
    SQLExecuteQueryOperator,
    SQLTableCheckOperator,
    SQLValueCheckOperator,
)

from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator

ROWS = 1234  # the test scripts the pipeline to land this many rows per table
TABLE = "main.sales.account"
CONN = "databricks_sql"
METRICS = "ti.xcom_pull(task_ids='run', key='table_metrics')"

with DAG(
    dag_id="lf_sql_checks",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow-tests"],
):
    run = LakeflowRunPipelineOperator(
        task_id="run", pipeline_name="{{ dag_run.conf['pipeline_name'] }}", poll_interval=0.05, databricks_conn_id=CONN
    )
    table_check = SQLTableCheckOperator(
        task_id="table_check",
        conn_id=CONN,
        table=TABLE,
        checks={
            "row_count_check": {"check_statement": f"COUNT(*) = {ROWS}"},
            "ids_unique": {"check_statement": "COUNT(DISTINCT id) = COUNT(*)"},
        },
    )
    column_check = SQLColumnCheckOperator(
        task_id="column_check",
        conn_id=CONN,
        table=TABLE,
        column_mapping={
            "id": {
                "null_check": {"equal_to": 0},
                "unique_check": {"equal_to": 0},
                "min": {"geq_to": 1},
                "max": {"equal_to": ROWS},
            },
            "name": {"null_check": {"equal_to": 0}},
        },
    )
    count_matches_metrics = SQLValueCheckOperator(
        task_id="count_matches_metrics",
        conn_id=CONN,
        sql=f"SELECT COUNT(*) FROM {TABLE}",
        pass_value="{{ " + METRICS + "['" + TABLE + "']['num_output_rows'] }}",
    )
    event_log_rows = SQLValueCheckOperator(
        task_id="event_log_rows",
        conn_id=CONN,
        sql="SELECT SUM(details:flow_progress.metrics.num_output_rows::BIGINT) FROM "
        "event_log('{{ ti.xcom_pull(task_ids='run', key='pipeline_id') }}') "
        "WHERE event_type = 'flow_progress' AND details:flow_progress.status = 'COMPLETED'",
        pass_value=2 * ROWS,
    )
    flow_metrics = SQLExecuteQueryOperator(
        task_id="flow_metrics",
        conn_id=CONN,
        sql="SELECT origin.dataset_name, details:flow_progress.metrics.num_output_rows::BIGINT AS num_output_rows "
        "FROM event_log(:pipeline_id) WHERE event_type = 'flow_progress' "
        "AND details:flow_progress.status = 'COMPLETED' ORDER BY 1",
        parameters={"pipeline_id": "{{ ti.xcom_pull(task_ids='run', key='pipeline_id') }}"},
    )
    run >> [table_check, column_check, count_matches_metrics, event_log_rows, flow_metrics]
