"""Excel workbooks from a OneDrive folder into Unity Catalog with Lakeflow Connect, scheduled from Airflow.

A planning team keeps its forecasts as Excel files in OneDrive; this DAG lands their rows in
``main.onedrive.forecasts`` every morning. Each update re-ingests only the workbooks added or changed since the last
one. The connection is an OAuth sign-in made once in Catalog Explorer, so the DAG waits for it:

1. ``wait_for_connection`` (``LakeflowConnectionReadySensor``, deferrable) succeeds once ``onedrive_conn`` exists.
2. ``create_pipeline`` creates the ingestion pipeline, or edits it when the spec changed (idempotent by name).
3. ``run_pipeline`` runs one update and waits for it in the triggerer.

One-time set-up: Catalog > External Data > Connections > Create connection > name ``onedrive_conn``, type Microsoft
OneDrive > sign in > Create connection.

Where the Databricks pages stop: the ``onedrive_options`` block (``entity_type``, ``url``,
``file_ingestion_options``) is named after databricks-sdk's ``OneDriveOptions``; the file options follow the Google
Drive connector reference, whose names the SDK shares (``FileIngestionOptions``). As with Google Drive, the folder is
named by URL and ``destination_table`` names the landing table. Check the spec against a pipeline made in the
workspace UI before relying on it.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator, LakeflowRunPipelineOperator
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "onedrive_conn"

PIPELINE_SPEC = {
    "name": "onedrive-forecasts",
    "serverless": True,
    "ingestion_definition": {
        "connection_name": CONNECTION_NAME,
        "objects": [
            {
                "table": {
                    "destination_catalog": "main",
                    "destination_schema": "onedrive",
                    "destination_table": "forecasts",
                    "connector_options": {
                        "onedrive_options": {
                            "entity_type": "FILE",
                            "url": "https://contoso-my.sharepoint.com/personal/planning_contoso_com/Documents/Forecasts",
                            "file_ingestion_options": {
                                "format": "EXCEL",
                                "file_filters": [{"path_filter": "*.xlsx"}],
                                "rescued_data_column": "_rescued",
                            },
                        }
                    },
                }
            }
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_onedrive",
    schedule="0 6 * * 1-5",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "onedrive", "files"],
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
