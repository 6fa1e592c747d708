"""SQL Server change data capture into Unity Catalog with Lakeflow Connect, end to end from Airflow.

Database CDC takes two pipelines: an ingestion *gateway* (``gateway_definition``) that runs continuously on classic
compute next to the database and stages its change log, and a serverless *ingestion pipeline* that reads the gateway
(``ingestion_definition.ingestion_gateway_id``) and lands the tables. This DAG:

1. creates (or updates) the Unity Catalog connection to SQL Server; the credentials come from the Airflow connection
   ``sqlserver_erp`` through templating and are masked in every log and rendered field;
2. waits until the connection is ready;
3. creates the gateway pipeline if it does not exist (idempotent by name) and makes sure it is running;
4. creates the ingestion pipeline, whose ``ingestion_gateway_id`` is the gateway task's XCom (``pipeline_id``);
5. runs one ingestion update and waits for it in the triggerer.

Prerequisites: CDC or change tracking enabled on the source database (see the Lakeflow Connect SQL Server docs), and an
Airflow connection ``sqlserver_erp`` with host, port, login and password.
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

# Against a real workspace 30 s is a sensible poll; the offline demo and tests set this lower.
POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "sqlserver_erp"

GATEWAY_SPEC = {
    "name": "sqlserver-erp-gateway",
    "catalog": "main",
    "schema": "erp_staging",
    # A gateway runs all the time, on classic compute (not serverless): size it for the change volume.
    "continuous": True,
    "clusters": [
        {
            "label": "default",
            "node_type_id": "Standard_E4d_v4",  # pick a node type of your cloud
            "num_workers": 1,
        }
    ],
    "gateway_definition": {
        "connection_name": CONNECTION_NAME,
        "gateway_storage_catalog": "main",
        "gateway_storage_schema": "erp_staging",
        "gateway_storage_name": "sqlserver-erp-gateway",
    },
}

INGESTION_SPEC = {
    "name": "sqlserver-erp-ingestion",
    "serverless": True,
    "catalog": "main",
    "schema": "erp",
    "ingestion_definition": {
        # The gateway task returns its pipeline_id; the spec is templated, so it arrives here at run time.
        "ingestion_gateway_id": "{{ ti.xcom_pull(task_ids='create_gateway') }}",
        "objects": [
            {
                "table": {
                    "source_catalog": "erp",
                    "source_schema": "dbo",
                    "source_table": "customers",
                    "destination_catalog": "main",
                    "destination_schema": "erp",
                }
            },
            {
                "table": {
                    "source_catalog": "erp",
                    "source_schema": "dbo",
                    "source_table": "orders",
                    "destination_catalog": "main",
                    "destination_schema": "erp",
                    # Keep the history of order status changes.
                    "table_configuration": {"scd_type": "SCD_TYPE_2"},
                }
            },
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_sqlserver_cdc",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "sqlserver", "cdc"],
) as dag:
    create_connection = LakeflowCreateConnectionOperator(
        task_id="create_connection",
        name=CONNECTION_NAME,
        connection_type="SQLSERVER",
        options={
            "host": "{{ conn.sqlserver_erp.host }}",
            "port": "{{ conn.sqlserver_erp.port }}",
            "user": "{{ conn.sqlserver_erp.login }}",
            "password": "{{ conn.sqlserver_erp.password }}",
            "trustServerCertificate": "true",
        },
        comment="ERP database, for Lakeflow Connect CDC (managed by Airflow)",
    )
    connection_ready = LakeflowConnectionReadySensor(
        task_id="wait_for_connection",
        connection_name=CONNECTION_NAME,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=30 * 60,
    )
    create_gateway = LakeflowCreateIngestionPipelineOperator(task_id="create_gateway", spec=GATEWAY_SPEC)
    # Starts the gateway when it is not running (e.g. someone stopped it); adopts its update when it is.
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
    # create_gateway >> ensure_gateway_running and create_ingestion >> run_ingestion come from the XComArgs above.
    create_connection >> connection_ready >> create_gateway
    ensure_gateway_running >> create_ingestion
