"""The DAGs ``make demo-ui`` runs against the emulator: an update whose tables land one after the other, and an
update that fails with a documented condition. Deferrable, so the waits run in the triggerer."""

from __future__ import annotations

import os

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
POLL = float(os.environ.get("LAKEFLOW_UI_DEMO_POLL_SECONDS", "2"))

with DAG(dag_id="lakeflow_ui_demo", schedule=None, start_date=START, catchup=False, tags=["lakeflow-ui-demo"]):
    LakeflowRunPipelineOperator(task_id="run", pipeline_name="ui-demo-sales", deferrable=True, poll_interval=POLL)

with DAG(dag_id="lakeflow_ui_demo_failure", schedule=None, start_date=START, catchup=False, tags=["lakeflow-ui-demo"]):
    LakeflowRunPipelineOperator(task_id="run", pipeline_name="ui-demo-broken", deferrable=True, poll_interval=POLL)
