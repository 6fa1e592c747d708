"""PostgreSQL change data capture into Unity Catalog with Lakeflow Connect, end to end from Airflow.

The same shape as ``example_lakeflow_sqlserver_cdc``: a Unity Catalog connection, a readiness wait, an ingestion
gateway (classic compute, continuous) and a serverless ingestion pipeline reading it. PostgreSQL specifics:

- CDC reads a logical replication slot through a publication. Name them in ``source_configurations`` (per source
  catalog, i.e. database): ``slot_config.slot_name`` and ``slot_config.publication_name``. They are passed to
  Lakeflow Connect as written.
- The replication user's password comes from the Airflow Variable ``appdb_replication_password`` (templated; masked).

Prerequisites: ``wal_level = logical`` on the database, the publication and slot created for the tables (see the
Lakeflow Connect PostgreSQL docs), and an Airflow Variable ``appdb_replication_password``.
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
CONNECTION_NAME = "pg_appdb"

GATEWAY_SPEC = {
    "name": "pg-appdb-gateway",
    "catalog": "main",
    "schema": "appdb_staging",
    "continuous": True,
    "clusters": [{"label": "default", "node_type_id": "m5d.large", "num_workers": 1}],  # a node type of your cloud
    "gateway_definition": {
        "connection_name": CONNECTION_NAME,
        "gateway_storage_catalog": "main",
        "gateway_storage_schema": "appdb_staging",
        "gateway_storage_name": "pg-appdb-gateway",
    },
}

INGESTION_SPEC = {
    "name": "pg-appdb-ingestion",
    "serverless": True,
    "catalog": "main",
    "schema": "appdb",
    "ingestion_definition": {
        "ingestion_gateway_id": "{{ ti.xcom_pull(task_ids='create_gateway') }}",
        "source_configurations": [
            {
                "catalog": {
                    "source_catalog": "appdb",
                    "postgres": {
                        "slot_config": {"slot_name": "lakeflow_appdb", "publication_name": "lakeflow_appdb_pub"}
                    },
                }
            }
        ],
        "objects": [
            {
                "schema": {
                    "source_catalog": "appdb",
                    "source_schema": "public",
                    "destination_catalog": "main",
                    "destination_schema": "appdb",
                }
            }
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_postgresql_cdc",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "postgresql", "cdc"],
) as dag:
    create_connection = LakeflowCreateConnectionOperator(
        task_id="create_connection",
        name=CONNECTION_NAME,
        connection_type="POSTGRESQL",
        options={
            "host": "appdb.internal.example.com",
            "port": "5432",
            "user": "lakeflow_replication",
            "password": "{{ var.value.appdb_replication_password }}",
        },
    )
    connection_ready = LakeflowConnectionReadySensor(
        task_id="wait_for_connection",
        connection_name=CONNECTION_NAME,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=30 * 60,
    )
    create_gateway = LakeflowCreateIngestionPipelineOperator(task_id="create_gateway", spec=GATEWAY_SPEC)
    ensure_gateway_running = LakeflowRunPipelineOperator(
        task_id="ensure_gateway_running",
        pipeline_id=create_gateway.output,
        on_active_update="reuse",
        wait_for_completion=False,
        cancel_on_kill=False,
    )
    create_ingestion = LakeflowCreateIngestionPipelineOperator(task_id="create_ingestion", spec=INGESTION_SPEC)
    run_ingestion = LakeflowRunPipelineOperator(
        task_id="run_ingestion",
        pipeline_id=create_ingestion.output,
        on_active_update="wait",
        deferrable=True,
        poll_interval=POLL_SECONDS,
        timeout=pendulum.duration(hours=2),
    )
    create_connection >> connection_ready >> create_gateway
    ensure_gateway_running >> create_ingestion
