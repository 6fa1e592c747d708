"""Test DAGs for Unity Catalog connections: create/update with templated secrets, the readiness sensor in every mode,
and running an ingestion pipeline on its own (to see what happens when its gateway is stopped or gone). Names come
from the run's conf, so each test brings its own."""

from __future__ import annotations

import pendulum
from airflow import DAG

from airflow_provider_lakeflow.operators import LakeflowCreateConnectionOperator, LakeflowRunPipelineOperator
from airflow_provider_lakeflow.sensors import LakeflowConnectionReadySensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
NAME = "{{ dag_run.conf['name'] }}"
FAST = 0.05
#: A literal secret in a DAG file (not recommended, but it must be masked from parse time on).
LITERAL_SECRET = "literal-Pa55phrase-in-dag-file"


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["lakeflow-tests"])


def _db_options(password: str) -> dict[str, str]:
    return {
        "host": "{{ dag_run.conf.get('host', 'db.example.com') }}",
        "port": "{{ dag_run.conf.get('port', '1433') }}",
        "user": "cdc_reader",
        # A variable whose name Airflow does not consider sensitive: the operator's own masking is what hides it.
        "password": password,
    }


for update_if_exists in (True, False):
    suffix = "" if update_if_exists else "_no_update"
    with _dag(f"lf_conn_create{suffix}"):
        LakeflowCreateConnectionOperator(
            task_id="create",
            name=NAME,
            connection_type="SQLSERVER",
            options=_db_options("{{ var.value.lakeflow_test_db_value }}"),
            comment="made by a test",
            update_if_exists=update_if_exists,
        )

with _dag("lf_conn_create_literal"):
    LakeflowCreateConnectionOperator(
        task_id="create", name=NAME, connection_type="POSTGRESQL", options=_db_options(LITERAL_SECRET)
    )

with _dag("lf_conn_create_api_key"):
    LakeflowCreateConnectionOperator(
        task_id="create",
        name=NAME,
        connection_type="HTTP",
        options={
            "host": "https://api.example.com",
            "port": "443",
            "bearer_token": "{{ var.value.lakeflow_test_db_value }}",
        },
    )

for mode in ("poke", "reschedule", "deferred"):
    for soft_fail in (False, True):
        with _dag(f"lf_conn_sensor_{mode}" + ("_soft_fail" if soft_fail else "")):
            LakeflowConnectionReadySensor(
                task_id="wait",
                connection_name=NAME,
                mode="reschedule" if mode == "reschedule" else "poke",
                deferrable=mode == "deferred",
                poke_interval=1 if mode == "reschedule" else FAST,
                timeout=30,
                soft_fail=soft_fail,
            )

with _dag("lf_conn_sensor_short_timeout"):
    LakeflowConnectionReadySensor(task_id="wait", connection_name=NAME, deferrable=True, poke_interval=FAST, timeout=1)

with _dag("lf_cdc_run_ingestion"):
    LakeflowRunPipelineOperator(task_id="run", pipeline_name=NAME, poll_interval=FAST)
