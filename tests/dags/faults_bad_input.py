"""A DAG for tests/test_bad_input.py whose arguments only go bad once templates render (from the run conf)."""

from __future__ import annotations

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator

with DAG(
    dag_id="faults_bad_input_templated",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"pipeline_id": "p-1", "tables": "[]"},
    tags=["lakeflow", "tests"],
) as dag:
    LakeflowRunPipelineOperator(
        task_id="run",
        pipeline_id="{{ params.pipeline_id }}",
        refresh_selection="{{ params.tables }}",
        poll_interval=0.1,
        retries=0,
    )
