"""Many concurrent deferred waits for the real-triggerer test: one run per pipeline named in the run's conf
(airflow DAG)."""

from __future__ import annotations

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator

with DAG(
    dag_id="lf_triggerer_fanout",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=100,
    max_active_tasks=100,
):
    LakeflowRunPipelineOperator(
        task_id="run",
        pipeline_name="{{ dag_run.conf['pipeline_name'] }}",
        deferrable=True,
        poll_interval=1,
    )
