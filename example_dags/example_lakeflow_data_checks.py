"""Ingest, then check what landed, all in Airflow: common-sql's operators over LakeflowSqlHook.

- Run the Salesforce ingestion pipeline (created by ``example_lakeflow_salesforce``).
- ``SQLTableCheckOperator`` on the landed table: it is not empty and its ids are unique.
- ``SQLExecuteQueryOperator`` on the pipeline's event log (``event_log('<pipeline_id>')``): this update's rows per
  table, as Databricks reported them.

The SQL runs on a SQL warehouse through the Statement Execution API. It needs an Airflow connection of type
``lakeflow_sql`` (id ``databricks_sql`` here) with the warehouse in its extra, e.g.
``{"warehouse_id": "1234567890abcdef"}``; the same connection also serves the Lakeflow operators.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator, SQLTableCheckOperator

from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator

POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONN = "databricks_sql"
PIPELINE = "{{ ti.xcom_pull(task_ids='run_ingestion', key='pipeline_id') }}"
UPDATE = "{{ ti.xcom_pull(task_ids='run_ingestion', key='update_id') }}"

with DAG(
    dag_id="example_lakeflow_data_checks",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "sql"],
):
    run = LakeflowRunPipelineOperator(
        task_id="run_ingestion",
        pipeline_name="salesforce-to-main-sales",
        databricks_conn_id=CONN,
        deferrable=True,
        poll_interval=POLL_SECONDS,
    )
    check_accounts = SQLTableCheckOperator(
        task_id="check_accounts",
        conn_id=CONN,
        table="main.sales.account",
        checks={
            "not_empty": {"check_statement": "COUNT(*) > 0"},
            "ids_unique": {"check_statement": "COUNT(DISTINCT id) = COUNT(*)"},
        },
    )
    flow_metrics = SQLExecuteQueryOperator(
        task_id="flow_metrics",
        conn_id=CONN,
        sql="SELECT origin.dataset_name AS table_name, "
        "details:flow_progress.metrics.num_output_rows::BIGINT AS num_output_rows "
        "FROM event_log(:pipeline_id) "
        "WHERE event_type = 'flow_progress' AND origin.update_id = :update_id "
        "AND details:flow_progress.status = 'COMPLETED' ORDER BY 1",
        parameters={"pipeline_id": PIPELINE, "update_id": UPDATE},
    )
    run >> [check_accounts, flow_metrics]
