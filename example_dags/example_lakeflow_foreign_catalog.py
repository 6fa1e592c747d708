"""Query-based ingestion from Snowflake, Redshift, Synapse and BigQuery through Unity Catalog foreign catalogs,
authored in a Databricks Asset Bundle file and scheduled from Airflow.

Teams that already keep their pipelines in a bundle (``databricks.yml``, deployed with ``databricks bundle deploy``)
can point the create operator at the same file: ``spec`` is the bundle file, ``resource_key`` picks the pipeline under
``resources: pipelines:``, and ``bundle_variables`` sets its ``${var.<name>}`` values (templated; the file's
``variables: <name>: default:`` fill in the rest). The file here is ``bundles/federated_warehouses.yml``.

Each warehouse is reached through Lakehouse Federation: a UC connection and a foreign catalog on it, created once
(see the bundle file's header). The pipelines read the foreign tables by query, incrementally by their cursor
columns, and land them in ``main.<warehouse>``. One DAG runs the four pipelines side by side, once a day:
``create_<key>`` creates or edits each pipeline (idempotent by name), ``run_<key>`` runs one update and waits for it
in the triggerer.

Where the Databricks pages stop: they document ``ingest_from_uc_foreign_catalog`` (databricks-sdk) and the
FOREIGN_CATALOG_*_SPEC_INCOMPLETE rules (every object names ``source_catalog`` and ``source_schema``, tables also
``source_table``); they do not say whether ``connector_type: QUERY_BASED`` should be set beside it, so it is left out.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator, LakeflowRunPipelineOperator

POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
# realpath: the bundle sits beside the real file even when the DAGs folder holds a symlink to it.
BUNDLE = os.path.join(os.path.dirname(os.path.realpath(__file__)), "bundles", "federated_warehouses.yml")
PIPELINES = ("snowflake_sales", "redshift_events", "synapse_finance", "bigquery_marketing")

with DAG(
    dag_id="example_lakeflow_foreign_catalog",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"catalog": "main"},
    tags=["lakeflow", "foreign-catalog", "query-based", "bundle"],
) as dag:
    for key in PIPELINES:
        create = LakeflowCreateIngestionPipelineOperator(
            task_id=f"create_{key}",
            spec=BUNDLE,
            resource_key=key,
            bundle_variables={"catalog": "{{ params.catalog }}"},
        )
        LakeflowRunPipelineOperator(
            task_id=f"run_{key}",
            pipeline_id=create.output,
            on_active_update="wait",
            deferrable=True,
            poll_interval=POLL_SECONDS,
            timeout=pendulum.duration(hours=2),
        )
