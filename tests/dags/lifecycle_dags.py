"""Test DAGs for the task lifecycle: waits in the worker and deferred, active-update policies, timeouts, retries,
sensors. The pipeline is named by the run's conf, so each test brings its own (airflow dag for the DAG processor)."""

from __future__ import annotations

import datetime

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator, LakeflowStopPipelineOperator
from airflow_provider_lakeflow.sensors import LakeflowPipelineUpdateSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
NAME = "{{ dag_run.conf['pipeline_name'] }}"
FAST = 0.05


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["lakeflow-tests"])


for deferrable in (False, True):
    suffix = "deferred" if deferrable else "worker"
    with _dag(f"lf_run_{suffix}"):
        LakeflowRunPipelineOperator(task_id="run", pipeline_name=NAME, deferrable=deferrable, poll_interval=FAST)
    for policy in ("fail", "reuse", "wait", "cancel"):
        with _dag(f"lf_policy_{policy}_{suffix}"):
            LakeflowRunPipelineOperator(
                task_id="run", pipeline_name=NAME, on_active_update=policy, deferrable=deferrable, poll_interval=FAST
            )
    with _dag(f"lf_timeout_{suffix}"):
        LakeflowRunPipelineOperator(
            task_id="run", pipeline_name=NAME, deferrable=deferrable, poll_interval=FAST, timeout=0.5
        )
    with _dag(f"lf_execution_timeout_{suffix}"):
        LakeflowRunPipelineOperator(
            task_id="run",
            pipeline_name=NAME,
            deferrable=deferrable,
            poll_interval=FAST,
            execution_timeout=datetime.timedelta(seconds=6),
        )
    with _dag(f"lf_retry_{suffix}"):
        LakeflowRunPipelineOperator(
            task_id="run",
            pipeline_name=NAME,
            deferrable=deferrable,
            poll_interval=FAST,
            retries=1,
            retry_delay=datetime.timedelta(seconds=0),
        )
    with _dag(f"lf_selection_{suffix}"):
        LakeflowRunPipelineOperator(
            task_id="run",
            pipeline_name=NAME,
            deferrable=deferrable,
            poll_interval=FAST,
            refresh_selection="{{ dag_run.conf.get('refresh_selection', []) | tojson }}",
            full_refresh_selection="{{ dag_run.conf.get('full_refresh_selection', []) | tojson }}",
        )
    with _dag(f"lf_sensor_{suffix}"):
        LakeflowPipelineUpdateSensor(
            task_id="wait", pipeline_name=NAME, deferrable=deferrable, poke_interval=FAST, timeout=30
        )
    with _dag(f"lf_sensor_soft_fail_{suffix}"):
        LakeflowPipelineUpdateSensor(
            task_id="wait", pipeline_name=NAME, deferrable=deferrable, poke_interval=FAST, timeout=30, soft_fail=True
        )

with _dag("lf_sensor_reschedule"):
    LakeflowPipelineUpdateSensor(task_id="wait", pipeline_name=NAME, mode="reschedule", poke_interval=1, timeout=30)

with _dag("lf_no_wait"):
    LakeflowRunPipelineOperator(task_id="run", pipeline_name=NAME, wait_for_completion=False)

with _dag("lf_stop"):
    LakeflowStopPipelineOperator(task_id="stop", pipeline_name=NAME, poll_interval=FAST)
