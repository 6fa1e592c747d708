"""Query-based ingestion from Oracle into Unity Catalog with Lakeflow Connect. **Public Preview**.

A query-based pipeline (``connector_type: QUERY_BASED``) reads the tables over the connection and picks up new and
changed rows by *cursor columns* (values that only grow: a last-modified timestamp, an increasing id). No gateway, no
LogMiner or supplemental logging on the database: one serverless, triggered pipeline, run from Airflow on a schedule.
Hard deletes are not seen by cursor queries; rows the application marks as deleted can be treated as deletions with
``query_based_connector_config.deletion_condition``, a SQL condition (here on ``ORDERS.IS_DELETED``; the spec reference
gives only the field's name and type, so check the connector's docs for its exact semantics).

The spec names Oracle objects in Oracle's terms: ``source_schema`` is the owning schema (user), in upper case as
Oracle stores unquoted names. ``source_catalog`` is the database's service name; the pipeline spec reference only
states that for the gateway's ``connection_parameters``, so check it against your workspace when a table is not found.

This DAG creates the connection (credentials from the Airflow connection ``oracle_erp``, templated and masked), waits
for it, creates the pipeline (idempotent by name) and runs one update every hour, waited for in the triggerer.

Prerequisites: a database user allowed to read the tables, network access from serverless compute to the database, an
Airflow connection ``oracle_erp`` with host, port, login and password.
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
CONNECTION_NAME = "oracle_erp"


def _table(name: str, table_configuration: dict) -> dict:
    return {
        "table": {
            "source_catalog": "ERPPDB",  # the service name (see the docstring)
            "source_schema": "ERP",
            "source_table": name,
            "destination_catalog": "main",
            "destination_schema": "erp_oracle",
            "destination_table": name.lower(),
            "table_configuration": table_configuration,
        }
    }


PIPELINE_SPEC = {
    "name": "oracle-erp-query-based",
    "serverless": True,
    "catalog": "main",
    "schema": "erp_oracle",
    "ingestion_definition": {
        "connection_name": CONNECTION_NAME,
        "connector_type": "QUERY_BASED",
        "objects": [
            _table(
                "ORDERS",
                {
                    "scd_type": "SCD_TYPE_1",
                    "primary_keys": ["ORDER_ID"],
                    "query_based_connector_config": {
                        "cursor_columns": ["LAST_UPDATE_DATE"],
                        "deletion_condition": "IS_DELETED = 'Y'",
                    },
                },
            ),
            _table(
                "ORDER_LINES",
                {
                    "scd_type": "SCD_TYPE_1",
                    "primary_keys": ["ORDER_ID", "LINE_NO"],
                    "query_based_connector_config": {"cursor_columns": ["LAST_UPDATE_DATE"]},
                },
            ),
            _table(
                "PRICE_LIST",
                {
                    # Keep every price a product had, ordered by when it changed.
                    "scd_type": "SCD_TYPE_2",
                    "primary_keys": ["PRODUCT_ID"],
                    "sequence_by": ["LAST_UPDATE_DATE"],
                    "query_based_connector_config": {"cursor_columns": ["LAST_UPDATE_DATE"]},
                },
            ),
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_oracle_query_based",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "oracle", "query-based", "public-preview"],
) as dag:
    create_connection = LakeflowCreateConnectionOperator(
        task_id="create_connection",
        name=CONNECTION_NAME,
        connection_type="ORACLE",
        options={
            "host": "{{ conn.oracle_erp.host }}",
            "port": "{{ conn.oracle_erp.port }}",
            "user": "{{ conn.oracle_erp.login }}",
            "password": "{{ conn.oracle_erp.password }}",
        },
        comment="ERP on Oracle, query-based Lakeflow Connect ingestion (managed by Airflow)",
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
