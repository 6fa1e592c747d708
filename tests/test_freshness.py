"""LakeflowPipelineUpdateSensor's failures and ``max_age`` freshness, with updates started from outside."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import run_dag, task_state, xcom
from test_failures import make_sales_pipeline

MODES = ["worker", "deferred", "reschedule"]


def _wait_for(emulator, pipeline_id: str, update_id: str, state: str = "COMPLETED") -> None:
    deadline = time.monotonic() + 30
    while emulator.update(pipeline_id, update_id)["state"] != state:
        assert time.monotonic() < deadline, f"update {update_id} never reached {state}"
        time.sleep(0.05)


@contextmanager
def started_later(emulator, pipeline_id: str, delay: float) -> Iterator[list[str]]:
    """Start an update from outside (as the UI or a Jobs schedule would) ``delay`` seconds from now."""
    started: list[str] = []
    thread = threading.Thread(
        target=lambda: (time.sleep(delay), started.append(emulator.start_update_externally(pipeline_id)))
    )
    thread.start()
    try:
        yield started
    finally:
        thread.join()


@pytest.mark.parametrize("mode", ["worker", "deferred"])
def test_sensor_failure_says_what_to_do(airflow_db, lakeflow_emulator, capfd, caplog, mode):
    pipeline_id = make_sales_pipeline()
    # Long enough that the deferred sensor defers before the update fails (the failure is read after the trigger),
    # counted from when the DAG is parsed: a loaded machine can take several seconds more to start the task.
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=5.0 if mode == "deferred" else 1.0)
    condition = "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.CURSOR_KEY_CHANGE"
    lakeflow_emulator.script_condition(pipeline_id, condition, table="Account")
    started: list[str] = []
    dag_run = run_dag(
        f"lf_sensor_failure_{mode}",
        parsed=lambda: started.append(lakeflow_emulator.start_update_externally(pipeline_id)),
        pipeline_name="sales",
    )
    assert task_state(dag_run, "wait") == "failed"
    failure = xcom(dag_run, "wait", "failure")
    assert failure["update_id"] == started[0]
    assert failure["category"] == "schema_change_full_refresh"
    assert failure["error_classes"] == [condition]
    assert failure["tables"] == ["main.sales.Account"]
    out = capfd.readouterr().out
    assert out.index("(category schema_change_full_refresh)") < out.index(f"- [{condition}]")
    if mode == "deferred":
        # The trigger's poll log (stdout on Airflow 3, the logging capture on 2.11): it did wait deferred.
        assert "LakeflowPipelineUpdateTrigger" in out + caplog.text
    assert len(lakeflow_emulator.updates(pipeline_id)) == 1  # a sensor never starts an update


@pytest.mark.parametrize("mode", MODES)
def test_fresh_update_succeeds_at_once(airflow_db, lakeflow_emulator, mode):
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.02)
    update_id = lakeflow_emulator.start_update_externally(pipeline_id, cause="JOB_TASK")
    _wait_for(lakeflow_emulator, pipeline_id, update_id)
    lakeflow_emulator.clear_requests()
    dag_run = run_dag(f"lf_fresh_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "wait") == "success"
    assert xcom(dag_run, "wait", "update_id") == update_id
    assert xcom(dag_run, "wait", "state") == "COMPLETED"
    # One poke: a name look-up, the updates list; no trigger round trip.
    assert len(lakeflow_emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/updates$", method="GET")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_no_completed_update_waits_for_the_next_one(airflow_db, lakeflow_emulator, mode):
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.1)
    failed = lakeflow_emulator.start_update_externally(pipeline_id)
    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.workspace import operations

    LakeflowHook().run(operations.stop_pipeline(pipeline_id))  # the only update so far is CANCELED, not COMPLETED
    _wait_for(lakeflow_emulator, pipeline_id, failed, "CANCELED")
    with started_later(lakeflow_emulator, pipeline_id, 2.0) as started:
        dag_run = run_dag(f"lf_fresh_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "wait") == "success"
    assert xcom(dag_run, "wait", "update_id") == started[0]


@pytest.mark.parametrize("mode", MODES)
def test_stale_update_waits_for_the_next_one(airflow_db, lakeflow_emulator, mode):
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.02)
    old = lakeflow_emulator.start_update_externally(pipeline_id)
    _wait_for(lakeflow_emulator, pipeline_id, old)
    time.sleep(3.5)  # the DAG's max_age is 3 s: the update is stale now
    lakeflow_emulator.clear_requests()
    started: list[str] = []

    def start_once_the_sensor_has_looked() -> None:
        # Not after a fixed delay: a loaded machine can take longer than max_age to start the task, and the new update
        # would be stale too by the time the sensor looks.
        deadline = time.monotonic() + 120
        while not lakeflow_emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/updates$", method="GET"):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        started.append(lakeflow_emulator.start_update_externally(pipeline_id))

    later = threading.Thread(target=start_once_the_sensor_has_looked)
    try:
        dag_run = run_dag(f"lf_fresh_short_{mode}", parsed=later.start, pipeline_name="sales")
    finally:
        later.join()
    assert started, "the sensor never listed the pipeline's updates"
    # It saw only the stale update, waited, and took the one that started after it looked.
    assert task_state(dag_run, "wait") == "success"
    assert xcom(dag_run, "wait", "update_id") == started[0] != old


def test_sensor_never_retries_a_failed_update(airflow_db, lakeflow_emulator):
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.02, outcome="FAILED", error_message="boom")
    update_id = lakeflow_emulator.start_update_externally(pipeline_id)
    _wait_for(lakeflow_emulator, pipeline_id, update_id, "FAILED")
    dag_run = run_dag("lf_sensor_failure_worker", pipeline_name="sales")  # retries=1
    assert task_state(dag_run, "wait") == "failed"
    assert dag_run.get_task_instance("wait").try_number == 1
    failure = xcom(dag_run, "wait", "failure")
    assert failure["category"] == "unknown" and failure["retry"] is False and failure["messages"] == ["boom"]
