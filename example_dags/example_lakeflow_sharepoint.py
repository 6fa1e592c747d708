"""Files from Microsoft SharePoint into Unity Catalog with Lakeflow Connect, scheduled from Airflow.

Two document libraries of one SharePoint site: contracts (PDF and Office files, ingested whole as ``BINARYFILE`` rows
for downstream parsing or retrieval-augmented generation) and the finance team's CSV exports (parsed into rows). A
site maps to a schema and a drive (document library) to a table (Databricks' SharePoint connector reference). The
connection is an OAuth sign-in made once in Catalog Explorer, so the DAG waits for it rather than create it:

1. ``wait_for_connection`` (``LakeflowConnectionReadySensor``, deferrable) succeeds once ``sharepoint_conn`` exists.
2. ``create_pipeline`` creates the ingestion pipeline, or edits it when the spec changed (idempotent by name).
3. ``run_pipeline`` runs one update an hour and waits for it in the triggerer. Each update re-ingests only the files
   added or changed since the last one.

One-time set-up: Catalog > External Data > Connections > Create connection > name ``sharepoint_conn``, type Microsoft
SharePoint > sign in with an account that can read the site > Create connection. The connector is in Beta (enable it
on the workspace's Previews page).

Where the Databricks pages stop: they document the file options (``file_ingestion_options``: ``format``,
``file_filters``, ``schema_hints``, ``format_options``, ...) for Google Drive; the ``sharepoint_options`` block that
carries them (``entity_type``, ``url``, ``file_ingestion_options``) is named here after databricks-sdk's
``SharepointOptions``. Check it against a pipeline made in the workspace UI before relying on it.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator, LakeflowRunPipelineOperator
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "sharepoint_conn"
SITE = "contoso.sharepoint.com,1a2b3c4d-0000-4000-8000-000000000001,5e6f7a8b-0000-4000-8000-000000000002"  # site id


def _library(drive: str, destination: str, file_ingestion_options: dict) -> dict:
    return {
        "table": {
            "source_schema": SITE,
            "source_table": drive,
            "destination_catalog": "main",
            "destination_schema": "sharepoint",
            "destination_table": destination,
            "connector_options": {
                "sharepoint_options": {"entity_type": "FILE", "file_ingestion_options": file_ingestion_options}
            },
        }
    }


PIPELINE_SPEC = {
    "name": "sharepoint-documents",
    "serverless": True,
    "ingestion_definition": {
        "connection_name": CONNECTION_NAME,
        "objects": [
            # Whole files, one row each (content plus file metadata): SCD type 1 is the only mode for BINARYFILE.
            _library("Contracts", "contracts", {"format": "BINARYFILE"}),
            # Parsed CSV exports, appended (the only mode for structured files); only *.csv, header row, typed amounts.
            _library(
                "Finance Exports",
                "finance_exports",
                {
                    "format": "CSV",
                    "file_filters": [{"path_filter": "*.csv"}, {"modified_after": "2026-01-01T00:00:00"}],
                    "format_options": {"header": "true"},
                    "schema_hints": "invoice_id STRING, amount DECIMAL(18,2)",
                    "schema_evolution_mode": "ADD_NEW_COLUMNS",
                },
            ),
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_sharepoint",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "sharepoint", "files"],
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
