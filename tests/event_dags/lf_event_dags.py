"""DAGs scheduled on Lakeflow watchers, for the real-Airflow tests of event-driven scheduling (Airflow 3 only)."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Asset, AssetAny, AssetWatcher, task

from airflow_provider_lakeflow.assets import lakeflow_table_asset
from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator
from airflow_provider_lakeflow.triggers import LakeflowUpdateEventTrigger

HOST = os.environ["LAKEFLOW_WORKSPACE_HOST"]
POLL = float(os.environ.get("LAKEFLOW_EVENT_POLL_SECONDS", "2"))
START = pendulum.datetime(2026, 1, 1, tz="UTC")


def _updates_asset(pipeline_name: str) -> Asset:
    trigger = LakeflowUpdateEventTrigger(pipeline_name=pipeline_name, poll_interval=POLL)
    return Asset(name=f"{pipeline_name}-completed", watchers=[AssetWatcher(name=pipeline_name, trigger=trigger)])


def _dag(dag_id: str, schedule) -> None:
    with DAG(dag_id=dag_id, schedule=schedule, start_date=START, catchup=False, max_active_runs=50):

        @task
        def landed() -> None:
            """Nothing to do: the run itself, and the asset events that triggered it, are what the tests read."""

        landed()


_dag("lf_event_updates", [_updates_asset("ev-updates")])
_dag("lf_event_restart", [_updates_asset("ev-restart")])
_dag(
    "lf_event_table",
    [lakeflow_table_asset("main.sales.account", workspace_host=HOST, pipeline_name="ev-tables", poll_interval=POLL)],
)
_dag(
    "lf_event_fanout",
    AssetAny(
        *(
            lakeflow_table_asset(f"main.fan.t{i}", workspace_host=HOST, pipeline_name="ev-fanout", poll_interval=POLL)
            for i in range(20)
        )
    ),
)

# What the docs recommend when Airflow also runs a watched pipeline: the run operator without asset_alias; the
# watcher sees the updates it starts like any other, so each landing runs the consumer once.
with DAG(dag_id="lf_event_operator_run", schedule=None, start_date=START, catchup=False):
    LakeflowRunPipelineOperator(task_id="run", pipeline_name="ev-operator", deferrable=False, poll_interval=1)
_dag(
    "lf_event_operator_consumer",
    [lakeflow_table_asset("main.ops.account", workspace_host=HOST, pipeline_name="ev-operator", poll_interval=POLL)],
)
