"""DAGs the UI tests run against the emulator; the pipeline is named by the run's conf."""

from __future__ import annotations

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
NAME = "{{ dag_run.conf['pipeline_name'] }}"

with DAG(dag_id="lf_ui_run", schedule=None, start_date=START, catchup=False, tags=["lakeflow-ui-tests"]):
    LakeflowRunPipelineOperator(task_id="run", pipeline_name=NAME, deferrable=False, poll_interval=0.05)

with DAG(dag_id="lf_ui_remedy", schedule=None, start_date=START, catchup=False, tags=["lakeflow-ui-tests"]):
    LakeflowRunPipelineOperator(
        task_id="run",
        pipeline_name=NAME,
        deferrable=False,
        poll_interval=0.05,
        on_schema_change="full_refresh_tables",
    )
