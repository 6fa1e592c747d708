"""LakeflowPipelineUpdateSensor (poke, reschedule, deferrable; latest-update mode; soft_fail) and the trigger itself."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import make_pipeline, run_dag, task_state, xcom

from airflow_provider_lakeflow.triggers import LakeflowPipelineUpdateTrigger

MODES = ["worker", "deferred"]


@pytest.mark.parametrize("dag_id", ["lf_sensor_worker", "lf_sensor_deferred", "lf_sensor_reschedule"])
def test_sensor_waits_for_latest_update(airflow_db, lakeflow_emulator, dag_id):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.3)
    update_id = lakeflow_emulator.start_update_externally(pipeline_id)
    dag_run = run_dag(dag_id, pipeline_name="sales")
    assert task_state(dag_run, "wait") == "success"
    assert xcom(dag_run, "wait", "update_id") == update_id
    assert lakeflow_emulator.update(pipeline_id, update_id)["state"] == "COMPLETED"
    # A sensor never starts or stops anything.
    assert not lakeflow_emulator.requests(path_regex=r"/updates$", method="POST")
    assert not lakeflow_emulator.requests(path_regex=r"/stop$")


@pytest.mark.parametrize("mode", MODES)
def test_sensor_fails_with_errors_and_soft_fail_skips(airflow_db, lakeflow_emulator, mode, capfd):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.05, outcome="FAILED", error_message="cursor broke")
    lakeflow_emulator.start_update_externally(pipeline_id)
    dag_run = run_dag(f"lf_sensor_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "wait") == "failed"
    assert "cursor broke" in capfd.readouterr().out
    dag_run = run_dag(f"lf_sensor_soft_fail_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "wait") == "skipped"


def test_trigger_serialize_round_trips_every_field():
    trigger = LakeflowPipelineUpdateTrigger(
        pipeline_id="p",
        update_id="u",
        databricks_conn_id="c",
        poll_interval=7.5,
        end_time=1234.5,
        success_states=["COMPLETED", "STOPPING"],
        failure_states=["FAILED"],
        cancel_on_kill=False,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_lakeflow.triggers.pipeline.LakeflowPipelineUpdateTrigger"
    rebuilt = LakeflowPipelineUpdateTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "pipeline_id": "p",
        "update_id": "u",
        "databricks_conn_id": "c",
        "poll_interval": 7.5,
        "end_time": 1234.5,
        "success_states": ["COMPLETED", "STOPPING"],
        "failure_states": ["FAILED"],
        "cancel_on_kill": False,
        "progress_interval": None,
    }


def _first_event(trigger):
    async def first():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(first())


def test_trigger_events_are_typed(lakeflow_emulator):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.05)
    update_id = lakeflow_emulator.start_update_externally(pipeline_id)
    event = _first_event(LakeflowPipelineUpdateTrigger(pipeline_id, update_id, poll_interval=0.05))
    assert event["status"] == "success"
    assert event["state"] == "COMPLETED"
    assert set(event) == {"status", "pipeline_id", "update_id", "state", "message"}

    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=5)
    update_id = lakeflow_emulator.start_update_externally(pipeline_id)
    started = time.time()
    event = _first_event(
        LakeflowPipelineUpdateTrigger(pipeline_id, update_id, poll_interval=0.05, end_time=started + 0.3)
    )
    assert event["status"] == "timeout"
    assert time.time() - started < 3
    # The trigger does not stop the update on its own deadline (the operator decides, in the worker).
    assert lakeflow_emulator.update(pipeline_id, update_id)["state"] not in ("CANCELED", "STOPPING")

    event = _first_event(LakeflowPipelineUpdateTrigger("no-such-pipeline", "u", poll_interval=0.05))
    assert event["status"] == "error"
    assert "does not exist" in event["message"]


def test_update_link_points_at_the_update(airflow_db, lakeflow_emulator):
    from airflow_provider_lakeflow.links import LakeflowUpdateLink
    from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator

    assert LakeflowUpdateLink.name == "Lakeflow Update"
    assert any(isinstance(link, LakeflowUpdateLink) for link in LakeflowRunPipelineOperator.operator_extra_links)
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.set_default_script(phase_seconds=0.02)
    dag_run = run_dag("lf_run_worker", pipeline_name="sales")
    update_id = xcom(dag_run, "run", "update_id")
    expected = f"{lakeflow_emulator.url}/#joblist/pipelines/{pipeline_id}/updates/{update_id}"
    try:
        import airflow.sdk  # noqa: F401
    except ImportError:  # Airflow 2 evaluates links in the webserver, from the XCom
        ti = dag_run.get_task_instance("run")
        assert LakeflowUpdateLink().get_link(None, ti_key=ti.key) == expected
    else:  # Airflow 3 evaluates links in the worker when the task ends and stores them as XCom
        assert xcom(dag_run, "run", LakeflowUpdateLink().xcom_key) == expected
