"""Files from a Google Drive folder into Unity Catalog with Lakeflow Connect, scheduled from Airflow.

The sales team drops JSON order exports into a shared folder; this DAG lands them as rows in ``main.drive.orders``
once a day, and keeps a metadata-only table of every file in the folder (``FILE_METADATA``: names, sizes, times,
without downloading contents). Each update re-ingests only files added or changed since the last one; a changed file
is read again whole. The connection is an OAuth sign-in made once in Catalog Explorer, so the DAG waits for it:

1. ``wait_for_connection`` (``LakeflowConnectionReadySensor``, deferrable) succeeds once ``gdrive_conn`` exists.
2. ``create_pipeline`` creates the ingestion pipeline, or edits it when the spec changed (idempotent by name).
3. ``run_pipeline`` runs one update a day and waits for it in the triggerer.

One-time set-up: Catalog > External Data > Connections > Create connection > name ``gdrive_conn``, type Google Drive >
sign in with a Google account that can read the folder > Create connection. The connector is in Beta.

``gdrive_options`` (``entity_type``, ``url``, ``file_ingestion_options``) and the file options are the ones Databricks'
Google Drive connector reference documents. The folder is named by its URL, so the objects carry no
``source_schema``/``source_table`` (the reference names none); ``destination_table`` names the landing table. The
docs also document ``table_configuration.storage_mode`` (``APPEND_ONLY`` for structured files, ``SCD_TYPE_1`` for
``BINARYFILE``; both the defaults, so it is left out); ``scd_type`` is an error for this connector.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator, LakeflowRunPipelineOperator
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "gdrive_conn"
FOLDER_URL = "https://drive.google.com/drive/folders/1AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def _folder(destination: str, entity_type: str, file_ingestion_options: dict) -> dict:
    return {
        "table": {
            "destination_catalog": "main",
            "destination_schema": "drive",
            "destination_table": destination,
            "connector_options": {
                "gdrive_options": {
                    "entity_type": entity_type,
                    "url": FOLDER_URL,
                    "file_ingestion_options": file_ingestion_options,
                }
            },
        }
    }


PIPELINE_SPEC = {
    "name": "gdrive-sales-orders",
    "serverless": True,
    "ingestion_definition": {
        "connection_name": CONNECTION_NAME,
        "objects": [
            _folder(
                "orders",
                "FILE",
                {
                    "format": "JSON",
                    "file_filters": [{"path_filter": "orders_*.json"}],
                    "format_options": {"multiLine": "true"},
                    "schema_hints": "order_id STRING, total DOUBLE",
                    "schema_evolution_mode": "ADD_NEW_COLUMNS_WITH_TYPE_WIDENING",
                },
            ),
            _folder("orders_files", "FILE_METADATA", {"format": "BINARYFILE"}),
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_google_drive",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "google-drive", "files"],
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
