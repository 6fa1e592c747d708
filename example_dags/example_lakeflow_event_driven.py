"""Transform tables as they land, whoever runs the ingestion: event-driven scheduling (Airflow 3).

- ``example_lakeflow_event_pipeline`` keeps the ingestion pipeline's spec in place (created, or updated when it
  changed). Airflow does not run the ingestion: a Databricks Jobs schedule (a ``pipeline_task``) or a person in the UI
  starts its updates, as the Lakeflow Connect documentation recommends.
- ``example_lakeflow_event_transform`` is scheduled on two landed-table Assets (``lakeflow_table_asset``). Each Asset
  carries a watcher that runs in the triggerer and fires once per update in which its table landed, as soon as it
  landed; the DAG runs once both tables have landed again, and checks each through ``LakeflowSqlHook``.

On Airflow 2 (no watchers) the transform DAG is scheduled on the same Asset URIs without a watcher: it then runs when
``LakeflowRunPipelineOperator(asset_alias=...)`` publishes them.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG
from airflow.providers.common.compat.assets import Asset
from airflow.providers.common.compat.sdk import task

from airflow_provider_lakeflow.assets import EVENT_SCHEDULING, lakeflow_table_asset
from airflow_provider_lakeflow.lineage import asset_uri
from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator

# The workspace the connection points at: part of each Asset's URI (a DAG file reads no connection).
WORKSPACE = os.environ.get("LAKEFLOW_WORKSPACE_HOST", "https://adb-1234567890123456.7.azuredatabricks.net")
PIPELINE = "salesforce-crm-landing"
TABLES = ("main.crm.account", "main.crm.contact")
POLL_SECONDS = float(os.environ.get("LAKEFLOW_EVENT_POLL_SECONDS", "60"))
SQL_CONN = "databricks_sql"  # type lakeflow_sql, with the SQL warehouse in its extra

with DAG(
    dag_id="example_lakeflow_event_pipeline",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "event-driven"],
):
    LakeflowCreateIngestionPipelineOperator(
        task_id="ensure_pipeline",
        spec={
            "name": PIPELINE,
            "ingestion_definition": {
                "connection_name": "salesforce_conn",
                "objects": [
                    {
                        "table": {
                            "source_schema": "objects",
                            "source_table": source,
                            "destination_catalog": "main",
                            "destination_schema": "crm",
                            "destination_table": table.rsplit(".", 1)[-1],
                        }
                    }
                    for source, table in zip(("Account", "Contact"), TABLES, strict=True)
                ],
            },
        },
    )

if EVENT_SCHEDULING:
    LANDED = [
        lakeflow_table_asset(table, workspace_host=WORKSPACE, pipeline_name=PIPELINE, poll_interval=POLL_SECONDS)
        for table in TABLES
    ]
else:
    LANDED = [Asset(uri=asset_uri(WORKSPACE, table)) for table in TABLES]

with DAG(
    dag_id="example_lakeflow_event_transform",
    schedule=LANDED,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "event-driven"],
):

    @task
    def check_landed_tables(triggering_asset_events=None) -> dict[str, dict]:
        """Stand-in for a transformation: which updates landed each table, and how many rows it holds now."""
        from airflow_provider_lakeflow.hooks import LakeflowSqlHook

        landed: dict[str, dict] = {}
        for events in (triggering_asset_events or {}).values():
            for event in events:
                payload = dict(event.extra or {}).get("payload") or dict(event.extra or {})
                if payload.get("table"):
                    landed[payload["table"]] = {"update_id": payload.get("update_id")}
        hook = LakeflowSqlHook(databricks_conn_id=SQL_CONN)
        for table in TABLES:
            (rows,) = hook.get_first(f"SELECT COUNT(*) FROM {table}")
            if not rows:
                raise ValueError(f"{table} is empty although it landed")
            landed.setdefault(table, {})["rows"] = rows
            print(f"{table}: {rows} rows, landed by update {landed[table].get('update_id')}")
        return landed

    check_landed_tables()
