"""Workday custom reports (Reports-as-a-Service) into Unity Catalog with Lakeflow Connect, scheduled from Airflow.

Workday Reports ingestion reads *reports*, not tables: each object is a ``report`` with the report's web-service URL
(``report.source_url``, the URL Workday shows under "View URLs" for a report enabled as a web service, JSON format)
and lands in one table. A report has no key of its own, so the table configuration names the primary key (and, to
keep history, SCD type 2). This DAG:

1. creates (or updates) the Unity Catalog connection from the Airflow connection ``workday_isu`` (the integration
   system user's login and password; templated, masked everywhere);
2. waits until the connection is ready;
3. creates the ingestion pipeline if it does not exist, or edits it when the spec changed (idempotent by name);
4. runs one update per day and waits for it in the triggerer (deferrable).

Report parameters (``table_configuration.workday_report_parameters.parameters``) fill the report's prompts at run
time. The keys are the prompt names your Workday admin defined on the report (``Date_Start``/``Date_End`` here are
placeholders); each value is an expression the connector evaluates per update, e.g. the stored cursor
``current_offset()`` with a first-run default. Incremental report ingestion is in Beta in the Databricks docs; the
older ``incremental`` and ``report_parameters`` fields are deprecated in favour of ``parameters``.

Prerequisites: the reports enabled as web services in Workday, readable by the integration system user, and an
Airflow connection ``workday_isu`` with login and password.
"""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import (
    LakeflowCreateConnectionOperator,
    LakeflowCreateIngestionPipelineOperator,
    LakeflowRunPipelineOperator,
)
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

# Against a real workspace 30 s is a sensible poll; the offline demo and tests set this lower.
POLL_SECONDS = float(os.environ.get("LAKEFLOW_EXAMPLE_POLL_SECONDS", "30"))
CONNECTION_NAME = "workday_hr"
# https://<host>/ccx/service/customreport2/<tenant>/<report owner>/<report name>?format=json
REPORTS_URL = "https://wd2-impl-services1.workday.com/ccx/service/customreport2/acme/ISU_Lakeflow"

PIPELINE_SPEC = {
    "name": "workday-hr-reports",
    "serverless": True,
    "catalog": "main",
    "schema": "hr",
    "ingestion_definition": {
        "connection_name": CONNECTION_NAME,
        "objects": [
            {
                # An incremental report: the prompts narrow each run to what changed since the last one.
                "report": {
                    "source_url": f"{REPORTS_URL}/Worker_Changes?format=json",
                    "destination_catalog": "main",
                    "destination_schema": "hr",
                    "destination_table": "worker_changes",
                    "table_configuration": {
                        "scd_type": "SCD_TYPE_2",  # keep every job, manager and cost-center change
                        "primary_keys": ["Employee_ID"],
                        "sequence_by": ["Last_Updated"],  # a date column of the report: the cursor
                        "workday_report_parameters": {
                            "parameters": {
                                "Date_Start": '{ coalesce(current_offset(), date("2025-01-01")) }',
                                "Date_End": "{ current_date() }",
                            }
                        },
                    },
                }
            },
            {
                # A small reference report, read whole on every update; the latest row per key is enough.
                "report": {
                    "source_url": f"{REPORTS_URL}/Cost_Centers?format=json",
                    "destination_catalog": "main",
                    "destination_schema": "hr",
                    "destination_table": "cost_centers",
                    "table_configuration": {"scd_type": "SCD_TYPE_1", "primary_keys": ["Cost_Center_ID"]},
                }
            },
        ],
    },
}

with DAG(
    dag_id="example_lakeflow_workday_reports",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["lakeflow", "workday"],
) as dag:
    create_connection = LakeflowCreateConnectionOperator(
        task_id="create_connection",
        name=CONNECTION_NAME,
        connection_type="WORKDAY_RAAS",
        # Basic authentication (username/password). The Databricks docs describe the Workday credentials as Catalog
        # Explorer fields, not as API option names: "user"/"password" here are not verified against a workspace. If
        # the workspace rejects them (or you use an OAuth refresh token), create the connection once in Catalog
        # Explorer and replace this task with the LakeflowConnectionReadySensor below on its own.
        options={
            "user": "{{ conn.workday_isu.login }}",
            "password": "{{ conn.workday_isu.password }}",
        },
        comment="Workday reports for Lakeflow Connect (managed by Airflow)",
    )
    connection_ready = LakeflowConnectionReadySensor(
        task_id="wait_for_connection",
        connection_name=CONNECTION_NAME,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=30 * 60,
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
    create_connection >> connection_ready >> create_pipeline
