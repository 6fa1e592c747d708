"""HubSpot CRM objects into Unity Catalog with Lakeflow Connect, scheduled from Airflow.

HubSpot connections use OAuth 2.0 user-to-machine (U2M) authentication only: a person signs in to HubSpot once in
the workspace UI, and no API call can do it for them. So this DAG does not create the connection; it waits for it:

1. ``wait_for_connection`` (``LakeflowConnectionReadySensor``, deferrable) succeeds as soon as the connection
   ``hubspot_conn`` exists and is ready. Until then it waits, and logs once how to create it.
2. ``create_pipeline`` creates the ingestion pipeline, or edits it when the spec changed (idempotent by name).
3. ``run_pipeline`` runs one update every six hours and waits for it in the triggerer.

One-time set-up (a workspace user with CREATE CONNECTION): Catalog > External Data > Connections > Create connection
> connection name ``hubspot_conn``, type HubSpot > Next > sign in to HubSpot and allow Databricks access > Create
connection.

HubSpot objects carry their own id and last-modified cursor, which the connector knows; the table configuration only
chooses what history to keep.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator, LakeflowRunPipelineOperator
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "hubspot_conn"


def _table(name: str, **table_configuration) -> dict:
    # No source_schema: the connection names the HubSpot account. The source names here are HubSpot's standard CRM
    # objects; they are not checked against the connector's table list here, so compare them with the docs' reference.
    body = {"source_table": name, "destination_catalog": "main", "destination_schema": "crm"}
    if table_configuration:
        body["table_configuration"] = table_configuration
    return {"table": body}


PIPELINE_SPEC = {
    "name": "hubspot-crm",
    "serverless": True,
    "catalog": "main",
    "schema": "crm",
    "ingestion_definition": {
        "connection_name": CONNECTION_NAME,
        "table_configuration": {"scd_type": "SCD_TYPE_1"},
        "objects": [
            _table("contacts"),
            _table("companies"),
            # Deal stages and amounts change over time: keep the history for pipeline reporting.
            _table("deals", scd_type="SCD_TYPE_2"),
            _table("tickets"),
        ],
    },
    "notifications": [{"alerts": ["on-update-failure"], "email_recipients": ["revops-data@example.com"]}],
}

with DAG(
    dag_id="example_lakeflow_hubspot",
    schedule="0 */6 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "hubspot"],
) as dag:
    connection_ready = LakeflowConnectionReadySensor(
        task_id="wait_for_connection",
        connection_name=CONNECTION_NAME,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=6 * 60 * 60,  # time for someone to do the one-time sign-in
    )
    create_pipeline = LakeflowCreateIngestionPipelineOperator(task_id="create_pipeline", spec=PIPELINE_SPEC)
    run_pipeline = LakeflowRunPipelineOperator(
        task_id="run_pipeline",
        pipeline_id=create_pipeline.output,
        on_active_update="wait",
        deferrable=True,
        poll_interval=POLL_SECONDS,
        timeout=pendulum.duration(hours=2),
    )
    connection_ready >> create_pipeline
