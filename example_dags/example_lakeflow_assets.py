"""Start downstream work when a table lands: Lakeflow ingestion publishes one Airflow Asset per landed table.

- ``example_lakeflow_assets_producer`` runs the ingestion with ``asset_alias``: the alias is declared when the DAG is
  parsed (no API call in a DAG file) and, when the update completes, filled with one Asset per destination table it
  landed, e.g. ``databricks://<workspace host>/main/sales/account``, with the row counts as the event's extra.
- ``example_lakeflow_assets_consumer`` is scheduled on the ``main.sales.account`` Asset, so it runs each time a new
  batch of accounts has landed, whichever DAG or team ran the ingestion.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG
from airflow.providers.common.compat.assets import Asset
from airflow.providers.common.compat.sdk import task

from airflow_provider_lakeflow.lineage import asset_uri
from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator

# The workspace the connection points at (its host); Asset URIs name it so that two workspaces never collide.
WORKSPACE = os.environ.get("LAKEFLOW_WORKSPACE_HOST", "https://adb-1234567890123456.7.azuredatabricks.net")
POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
ACCOUNTS = Asset(uri=asset_uri(WORKSPACE, "main.sales.account"))

with DAG(
    dag_id="example_lakeflow_assets_producer",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "assets"],
):
    LakeflowRunPipelineOperator(
        task_id="run_ingestion",
        pipeline_name="salesforce-to-main-sales",
        deferrable=True,
        poll_interval=POLL_SECONDS,
        asset_alias="lakeflow-salesforce-tables",
    )

with DAG(
    dag_id="example_lakeflow_assets_consumer",
    schedule=[ACCOUNTS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "assets"],
):

    @task
    def refresh_account_dashboards(triggering_asset_events=None) -> list[dict]:
        """Stand-in for real downstream work: report which landings triggered this run."""
        return [dict(event.extra) for events in (triggering_asset_events or {}).values() for event in events]

    refresh_account_dashboards()
