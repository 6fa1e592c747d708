"""Test DAGs for failures that say what to do: categories, the schema-change remedy, no-data, freshness.
The pipeline is named by the run's conf, so each test brings its own."""

from __future__ import annotations

import datetime

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator
from airflow_provider_lakeflow.sensors import LakeflowPipelineUpdateSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
NAME = "{{ dag_run.conf['pipeline_name'] }}"
FAST = 0.05


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["lakeflow-tests"])


for deferrable in (False, True):
    suffix = "deferred" if deferrable else "worker"
    with _dag(f"lf_failure_{suffix}"):
        LakeflowRunPipelineOperator(task_id="run", pipeline_name=NAME, deferrable=deferrable, poll_interval=FAST)
    with _dag(f"lf_failure_retries_{suffix}"):
        LakeflowRunPipelineOperator(
            task_id="run",
            pipeline_name=NAME,
            deferrable=deferrable,
            poll_interval=FAST,
            retries=1,
            retry_delay=datetime.timedelta(seconds=0),
        )
    with _dag(f"lf_remedy_{suffix}"):
        LakeflowRunPipelineOperator(
            task_id="run",
            pipeline_name=NAME,
            deferrable=deferrable,
            poll_interval=FAST,
            on_schema_change="full_refresh_tables",
        )
    for policy in ("ignore", "warn", "fail"):
        with _dag(f"lf_no_data_{policy}_{suffix}"):
            LakeflowRunPipelineOperator(
                task_id="run", pipeline_name=NAME, deferrable=deferrable, poll_interval=FAST, on_no_data=policy
            )
    with _dag(f"lf_sensor_failure_{suffix}"):
        LakeflowPipelineUpdateSensor(
            task_id="wait",
            pipeline_name=NAME,
            deferrable=deferrable,
            poke_interval=FAST,
            timeout=30,
            retries=1,
            retry_delay=datetime.timedelta(seconds=0),
        )
    with _dag(f"lf_fresh_{suffix}"):
        LakeflowPipelineUpdateSensor(
            task_id="wait",
            pipeline_name=NAME,
            max_age=datetime.timedelta(minutes=10),
            deferrable=deferrable,
            poke_interval=FAST,
            timeout=60,
        )

    with _dag(f"lf_fresh_short_{suffix}"):
        LakeflowPipelineUpdateSensor(
            task_id="wait", pipeline_name=NAME, max_age=3, deferrable=deferrable, poke_interval=FAST, timeout=60
        )

for max_age, dag_id in ((600, "lf_fresh_reschedule"), (3, "lf_fresh_short_reschedule")):
    with _dag(dag_id):
        LakeflowPipelineUpdateSensor(
            task_id="wait", pipeline_name=NAME, max_age=max_age, mode="reschedule", poke_interval=1, timeout=60
        )
