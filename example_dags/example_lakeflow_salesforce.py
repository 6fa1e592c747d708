"""Salesforce into Unity Catalog with Lakeflow Connect, scheduled from Airflow.

Two DAGs:
- ``example_lakeflow_salesforce``: make sure the ingestion pipeline exists and matches the spec (idempotent), then run
  one update and wait for it in the triggerer (deferrable), so no worker slot is held while Salesforce is read.
- ``example_lakeflow_salesforce_sensor``: wait on the pipeline's latest update, whoever started it, e.g. to gate a
  downstream job on a pipeline that another team schedules.

Prerequisite (once, in the workspace UI, because Salesforce uses an OAuth browser sign-in): a Unity Catalog connection
named ``salesforce_conn`` (Catalog > External Data > Connections > Create connection > Salesforce > sign in).
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator, LakeflowRunPipelineOperator
from airflow_provider_lakeflow.sensors import LakeflowPipelineUpdateSensor

# Against a real workspace 30 s is a sensible poll; the offline demo and tests set this lower.
POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))

PIPELINE_SPEC = {
    "name": "salesforce-to-main-sales",
    "serverless": True,
    "catalog": "main",
    "schema": "sales",
    "ingestion_definition": {
        "connection_name": "salesforce_conn",
        "table_configuration": {"scd_type": "SCD_TYPE_1"},
        "objects": [
            {
                "table": {
                    "source_schema": "objects",
                    "source_table": "Account",
                    "destination_catalog": "main",
                    "destination_schema": "sales",
                    "destination_table": "account",
                }
            },
            {
                "table": {
                    "source_schema": "objects",
                    "source_table": "Opportunity",
                    "destination_catalog": "main",
                    "destination_schema": "sales",
                    "destination_table": "opportunity",
                    # Keep history of stage changes.
                    "table_configuration": {"scd_type": "SCD_TYPE_2", "primary_keys": ["Id"]},
                }
            },
        ],
    },
    "notifications": [{"alerts": ["on-update-failure"], "email_recipients": ["data-eng@example.com"]}],
}

with DAG(
    dag_id="example_lakeflow_salesforce",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "salesforce"],
) as dag:
    create = LakeflowCreateIngestionPipelineOperator(task_id="create_pipeline", spec=PIPELINE_SPEC)
    run = LakeflowRunPipelineOperator(
        task_id="run_ingestion",
        pipeline_id=create.output,
        on_active_update="wait",
        deferrable=True,
        poll_interval=POLL_SECONDS,
        timeout=pendulum.duration(hours=2),
    )
    create >> run

with DAG(
    dag_id="example_lakeflow_salesforce_sensor",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "salesforce"],
) as sensor_dag:
    LakeflowPipelineUpdateSensor(
        task_id="wait_for_latest_update",
        pipeline_name=PIPELINE_SPEC["name"],
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=3 * 60 * 60,
    )
