"""ServiceNow tables into Unity Catalog with Lakeflow Connect, scheduled from Airflow.

The Databricks-recommended credential for ServiceNow is an OAuth browser sign-in (U2M), which no API call can perform,
so the Unity Catalog connection is made once by a person and this DAG waits for it:

1. ``wait_for_connection`` (``LakeflowConnectionReadySensor``, deferrable) succeeds as soon as the connection
   ``servicenow_conn`` exists and is ready. Until then it waits, and logs once how to create it.
2. ``create_pipeline`` creates the ingestion pipeline, or edits it when the spec changed (idempotent by name).
3. ``run_pipeline`` runs one update every hour and waits for it in the triggerer.

One-time set-up in the workspace (a user with CREATE CONNECTION, after the OAuth application exists in ServiceNow, see
"Configure ServiceNow for Databricks ingestion"): Catalog > External Data > Connections > Create connection >
connection name ``servicenow_conn``, type ServiceNow, OAuth > Next > sign in to the ServiceNow instance > Create
connection.

(The docs also describe an OAuth resource-owner-password credential; ``LakeflowCreateConnectionOperator`` accepts a
``SERVICENOW`` connection when its options carry such a secret. Its API option names are not documented, so this
example keeps to the sign-in.)

ServiceNow tables are keyed by ``sys_id`` and read incrementally through their update-time cursor field, which the
connector finds itself (a table without a cursor field is re-read whole): the table configuration only chooses the
SCD type and, for a wide table, the columns.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator, LakeflowRunPipelineOperator
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "servicenow_conn"


def _table(name: str, **table_configuration) -> dict:
    # No source_schema: the connector reads the instance the connection points at. (If your workspace asks for
    # one, use what the pipeline JSON of a UI-made ServiceNow pipeline shows; it is not spelled out in the docs.)
    body = {"source_table": name, "destination_catalog": "main", "destination_schema": "itsm"}
    if table_configuration:
        body["table_configuration"] = table_configuration
    return {"table": body}


PIPELINE_SPEC = {
    "name": "servicenow-itsm",
    "serverless": True,
    "catalog": "main",
    "schema": "itsm",
    "ingestion_definition": {
        "connection_name": CONNECTION_NAME,
        "table_configuration": {"scd_type": "SCD_TYPE_1"},
        "objects": [
            # Keep the history of state, priority and assignment changes.
            _table("incident", scd_type="SCD_TYPE_2"),
            _table("change_request", scd_type="SCD_TYPE_2"),
            _table("problem"),
            _table("sys_user"),
            # The configuration-item table is wide: keep the columns the reports use.
            _table(
                "cmdb_ci",
                include_columns=["sys_id", "name", "sys_class_name", "operational_status", "sys_updated_on"],
            ),
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_servicenow",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "servicenow"],
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
        timeout=pendulum.duration(hours=1),
    )
    connection_ready >> create_pipeline
