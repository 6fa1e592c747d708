"""Query-based ingestion from Teradata into Unity Catalog with Lakeflow Connect. **Public Preview**.

Teradata is read query-based (``connector_type: QUERY_BASED``): one serverless, triggered pipeline that selects new and
changed rows by *cursor columns* whose values only grow. No gateway and no change-log set-up on the warehouse. Rows
deleted in Teradata are not seen by cursor queries; ``customer_dim`` sets
``query_based_connector_config.hard_deletion_sync_min_interval_in_seconds`` (the least time between hard-deletion
syncs, once a day here). The spec reference gives only the field's name and type, so check the connector's docs for
what such a sync costs on a large table.

Teradata has no catalog level: a Teradata *database* is the ``source_schema``.

This DAG creates the connection (credentials from the Airflow connection ``teradata_edw``, templated and masked),
waits for it, creates the pipeline (idempotent by name) and runs one update a day, waited for in the triggerer.

Prerequisites: a Teradata user allowed to read the tables, network access from serverless compute to the system, and
an Airflow connection ``teradata_edw`` with host, port, login and password.
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
CONNECTION_NAME = "teradata_edw"


def _table(name: str, table_configuration: dict) -> dict:
    return {
        "table": {
            "source_schema": "sales_dw",
            "source_table": name,
            "destination_catalog": "main",
            "destination_schema": "edw",
            "table_configuration": table_configuration,
        }
    }


PIPELINE_SPEC = {
    "name": "teradata-edw-query-based",
    "serverless": True,
    "catalog": "main",
    "schema": "edw",
    "ingestion_definition": {
        "connection_name": CONNECTION_NAME,
        "connector_type": "QUERY_BASED",
        "objects": [
            _table(
                "sales_fact",
                {
                    # Facts are only inserted, never updated: append them.
                    "scd_type": "APPEND_ONLY",
                    "query_based_connector_config": {"cursor_columns": ["load_ts"]},
                },
            ),
            _table(
                "customer_dim",
                {
                    "scd_type": "SCD_TYPE_2",
                    "primary_keys": ["customer_key"],
                    "sequence_by": ["updated_ts"],
                    "query_based_connector_config": {
                        "cursor_columns": ["updated_ts"],
                        "hard_deletion_sync_min_interval_in_seconds": 24 * 60 * 60,
                    },
                },
            ),
            _table(
                "store_dim",
                {
                    "scd_type": "SCD_TYPE_1",
                    "primary_keys": ["store_key"],
                    "query_based_connector_config": {"cursor_columns": ["updated_ts"]},
                },
            ),
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_teradata_query_based",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "teradata", "query-based", "public-preview"],
) as dag:
    create_connection = LakeflowCreateConnectionOperator(
        task_id="create_connection",
        name=CONNECTION_NAME,
        connection_type="TERADATA",
        options={
            "host": "{{ conn.teradata_edw.host }}",
            "port": "{{ conn.teradata_edw.port }}",
            "user": "{{ conn.teradata_edw.login }}",
            "password": "{{ conn.teradata_edw.password }}",
        },
        comment="Enterprise data warehouse on Teradata, query-based Lakeflow Connect ingestion (managed by Airflow)",
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
        timeout=pendulum.duration(hours=4),
    )
    create_connection >> connection_ready >> create_pipeline
