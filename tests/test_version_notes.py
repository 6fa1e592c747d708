"""What an Airflow version cannot do is said once, where the user looks: the task log when a run task defers (a kill
cannot stop its update on 2.11), the triggerer's log when a watcher starts (before 3.3 it polls on its own and keeps
its cursor in memory). Runs on every supported Airflow (make test-af31 / test-af32 run it on 3.1 and 3.2)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import make_pipeline, run_dag, task_state

from airflow_provider_lakeflow.airflow_versions import AIRFLOW_MINOR, AIRFLOW_VERSION, KILL_STOPS_DEFERRED_UPDATE

KILL_NOTE = "killing this deferred task will not stop update"
WATCHER_NOTE = "keeps its cursor in memory (no asset state store)"


def test_a_deferred_run_task_says_once_when_a_kill_cannot_stop_its_update(airflow_db, lakeflow_emulator, caplog, capfd):
    pipeline_id = make_pipeline("sales")
    # Long enough that the check before deferring sees it running, so the task defers.
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=1.0)
    dag_run = run_dag("lf_run_deferred", pipeline_name="sales")
    assert task_state(dag_run, "run") == "success"
    (update,) = lakeflow_emulator.updates(pipeline_id)
    # Log records, not printed lines: how many handlers print a record depends on what earlier tests in the same
    # process configured (Airflow 2's dag.test prints some records twice), while the record is made once.
    notes = [record.getMessage() for record in caplog.records if KILL_NOTE in record.getMessage()]
    printed = capfd.readouterr()
    printed_notes = [line for line in (printed.out + printed.err).splitlines() if KILL_NOTE in line]
    if KILL_STOPS_DEFERRED_UPDATE:  # Airflow 3.1 and later: the trigger stops it
        assert notes == printed_notes == []
        return
    assert len(notes) == 1, notes
    assert printed_notes, "the note reaches the task log"
    assert notes[0].startswith(
        f"Airflow {AIRFLOW_VERSION}: {KILL_NOTE} {update['update_id']} of pipeline {pipeline_id}"
    )
    assert "LakeflowStopPipelineOperator" in notes[0]


@pytest.mark.skipif(AIRFLOW_MINOR < (3, 0), reason="Airflow 2.11 has no watchers")
def test_a_watcher_polling_on_its_own_says_once_what_this_airflow_lacks(lakeflow_emulator, capfd):
    from airflow_provider_lakeflow.triggers import LakeflowUpdateEventTrigger

    make_pipeline("sales")
    trigger = LakeflowUpdateEventTrigger(pipeline_name="sales", poll_interval=0.1)

    async def a_few_polls() -> None:
        events = trigger.run()
        with pytest.raises(asyncio.TimeoutError):  # no update ends: no event, just polls
            await asyncio.wait_for(anext(events), 1.0)
        await events.aclose()

    asyncio.run(a_few_polls())
    polls = lakeflow_emulator.requests(path_regex=r"/updates$", method="GET")
    assert len(polls) >= 2
    logged = capfd.readouterr()
    lines = [line for line in (logged.out + logged.err).splitlines() if f"watcher {trigger!r}" in line]
    if AIRFLOW_MINOR >= (3, 3):  # its triggerer runs watchers through shared streams with a durable cursor
        assert lines == []
    else:
        assert len(lines) == 1, lines
        assert f"Airflow {AIRFLOW_VERSION}: watcher {trigger!r} polls on its own" in lines[0]
        assert WATCHER_NOTE in lines[0]
