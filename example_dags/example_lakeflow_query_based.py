"""Query-based ingestion from MySQL into Unity Catalog with Lakeflow Connect: no gateway, no change log.

A query-based pipeline (``connector_type: QUERY_BASED``) reads the source tables directly over the connection and
picks up new and changed rows by *cursor columns*: columns whose values only grow (an ``updated_at`` timestamp, an
auto-increment id). It needs no CDC set-up on the database and no gateway pipeline, at the cost of not seeing
hard deletes unless the table configuration says how to detect them. The pipeline is serverless and triggered: this
DAG creates the connection, waits for it, creates the pipeline (idempotently) and runs one update per schedule.

Prerequisites: an Airflow connection ``mysql_shop`` with host, port, login and password.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import (
    LakeflowCreateConnectionOperator,
    LakeflowCreateIngestionPipelineOperator,
    LakeflowRunPipelineOperator,
)
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "mysql_shop"

PIPELINE_SPEC = {
    "name": "mysql-shop-query-based",
    "serverless": True,
    "catalog": "main",
    "schema": "shop",
    "ingestion_definition": {
        "connection_name": CONNECTION_NAME,
        "connector_type": "QUERY_BASED",
        "objects": [
            {
                "table": {
                    "source_schema": "shop",
                    "source_table": "orders",
                    "destination_catalog": "main",
                    "destination_schema": "shop",
                    "table_configuration": {
                        "primary_keys": ["order_id"],
                        "query_based_connector_config": {"cursor_columns": ["updated_at"]},
                    },
                }
            },
            {
                "table": {
                    "source_schema": "shop",
                    "source_table": "customers",
                    "destination_catalog": "main",
                    "destination_schema": "shop",
                    "table_configuration": {
                        "primary_keys": ["customer_id"],
                        "query_based_connector_config": {"cursor_columns": ["modified_at", "customer_id"]},
                    },
                }
            },
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_query_based",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "mysql", "query-based"],
) as dag:
    create_connection = LakeflowCreateConnectionOperator(
        task_id="create_connection",
        name=CONNECTION_NAME,
        connection_type="MYSQL",
        options={
            "host": "{{ conn.mysql_shop.host }}",
            "port": "{{ conn.mysql_shop.port }}",
            "user": "{{ conn.mysql_shop.login }}",
            "password": "{{ conn.mysql_shop.password }}",
        },
    )
    connection_ready = LakeflowConnectionReadySensor(
        task_id="wait_for_connection",
        connection_name=CONNECTION_NAME,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=30 * 60,
    )
    create_pipeline = LakeflowCreateIngestionPipelineOperator(task_id="create_pipeline", spec=PIPELINE_SPEC)
    run_pipeline = LakeflowRunPipelineOperator(
        task_id="run_pipeline",
        pipeline_id=create_pipeline.output,
        on_active_update="wait",
        deferrable=True,
        poll_interval=POLL_SECONDS,
        timeout=pendulum.duration(hours=1),
    )
    create_connection >> connection_ready >> create_pipeline
