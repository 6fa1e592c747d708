"""Google Analytics 4 raw event data into Unity Catalog with Lakeflow Connect, scheduled from Airflow.

The Google Analytics Raw Data connector reads the GA4 export in BigQuery (set up "Google Analytics 4 and Google
BigQuery for Databricks ingestion" first). In the pipeline spec the source is named the BigQuery way:

- ``source_catalog``: the Google Cloud project that holds the export;
- ``source_schema``: the export's dataset, ``analytics_<GA4 property id>`` (one property per pipeline);
- ``source_table``: ``events``, ``events_intraday``, ``users`` or ``pseudonymous_users``. The daily shards
  (``events_20260101``, ...) are found and read by the connector.

GA4 keeps changing a day's tables for up to 72 hours and the connector re-reads them for that long, so run the
pipeline at least every 72 hours; Databricks recommends daily, which is this DAG's schedule. Updates and deletes in
GA4 are not ingested, and event rows are assumed unique. ``users`` is keyed by ``user_id`` with ``last_updated_date``
as cursor, one row per user; SCD type 2 keeps every version instead.

The connection: the documented default is an OAuth browser sign-in, made once by a person (Catalog > External Data
> Connections > Create connection > name ``ga4_conn``, type Google Analytics Raw Data, sign in with a Google account
that can read the BigQuery project > Create connection). ``wait_for_connection`` waits for it. (The docs also mention a
non-interactive credential for this connector, but not its API option names, so this example keeps to the sign-in.)

Availability differs between the Databricks docs' pages (some mark this connector Public Preview): check yours.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator, LakeflowRunPipelineOperator
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "ga4_conn"
GCP_PROJECT = "acme-analytics-prod"
GA4_DATASET = "analytics_123456789"  # analytics_<GA4 property id>


def _table(name: str, **table_configuration) -> dict:
    body = {
        "source_catalog": GCP_PROJECT,
        "source_schema": GA4_DATASET,
        "source_table": name,
        "destination_catalog": "main",
        "destination_schema": "web_analytics",
    }
    if table_configuration:
        body["table_configuration"] = table_configuration
    return {"table": body}


PIPELINE_SPEC = {
    "name": "ga4-web-analytics",
    "serverless": True,
    "catalog": "main",
    "schema": "web_analytics",
    "ingestion_definition": {
        "connection_name": CONNECTION_NAME,
        "objects": [
            _table("events"),
            _table("events_intraday"),
            # Every version of a user's record (audiences, lifetime value), not only the latest.
            _table("users", scd_type="SCD_TYPE_2"),
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_ga4",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "ga4"],
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
        timeout=pendulum.duration(hours=3),
    )
    connection_ready >> create_pipeline
