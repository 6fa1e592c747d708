"""Confluence pages, blog posts and spaces into Unity Catalog with Lakeflow Connect, scheduled from Airflow.

A typical use: keep a governed copy of the wiki for search or retrieval-augmented generation. Confluence supports
only OAuth U2M (a person signs in once in the workspace UI; machine-to-machine and basic auth are not supported), so
the DAG waits for the connection rather than create it:

1. ``wait_for_connection`` (``LakeflowConnectionReadySensor``, deferrable) succeeds as soon as the connection
   ``confluence_conn`` exists and is ready. Until then it waits, and logs once how to create it.
2. ``create_pipeline`` creates the ingestion pipeline, or edits it when the spec changed (idempotent by name).
3. ``run_pipeline`` runs one update a day and waits for it in the triggerer.

One-time set-up: configure the OAuth app in Atlassian ("Configure OAuth U2M for Confluence ingestion"), then Catalog >
External Data > Connections > Create connection > name ``confluence_conn``, type Confluence > Next > sign in to
Atlassian and allow access > Create connection.

Connector behaviour this spec relies on (Databricks docs): pages, blog posts and attachments are read incrementally
(``modifiedAt`` is the cursor); spaces and labels are snapshots re-read on every update. With SCD type 2 a page
deleted in Confluence stays in the table with its deletion time; with SCD type 1 it is removed. Page hierarchy is
kept in ``parentId``/``parentType``; attachment *metadata* is ingested, not the files.

The Databricks docs mark the Confluence connector Beta on some pages (enable it on the workspace's Previews page).
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator, LakeflowRunPipelineOperator
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "confluence_conn"


def _table(name: str, **table_configuration) -> dict:
    # No source_schema: the connection names the Atlassian site. The table names are those of the connector
    # reference ("pages", "blogposts", "spaces", "attachments", "labels", ...).
    body = {"source_table": name, "destination_catalog": "main", "destination_schema": "wiki"}
    if table_configuration:
        body["table_configuration"] = table_configuration
    return {"table": body}


PIPELINE_SPEC = {
    "name": "confluence-wiki",
    "serverless": True,
    "catalog": "main",
    "schema": "wiki",
    "ingestion_definition": {
        "connection_name": CONNECTION_NAME,
        "table_configuration": {"scd_type": "SCD_TYPE_1"},
        "objects": [
            # Keep deleted and superseded page versions, so downstream indexes can retract them.
            _table("pages", scd_type="SCD_TYPE_2"),
            _table("blogposts", scd_type="SCD_TYPE_2"),
            _table("spaces"),
            _table("attachments"),
            _table("labels"),
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_confluence",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "confluence"],
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
