"""DAGs for tests/test_faults.py: run one update of the pipeline given in the run conf, in the worker or deferred."""

from __future__ import annotations

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator

for dag_id, deferrable in (("faults_run_sync", False), ("faults_run_deferrable", True)):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        params={"pipeline_id": ""},
        tags=["lakeflow", "tests"],
    ) as dag:
        LakeflowRunPipelineOperator(
            task_id="run",
            pipeline_id="{{ params.pipeline_id }}",
            deferrable=deferrable,
            poll_interval=0.1,
            timeout=120,
        )
    globals()[dag_id] = dag
