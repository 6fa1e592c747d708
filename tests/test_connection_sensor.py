"""LakeflowConnectionReadySensor (poke, reschedule, deferrable; soft_fail) and LakeflowConnectionReadyTrigger."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from conftest import run_dag, task_state, xcom

from airflow_provider_lakeflow.triggers import LakeflowConnectionReadyTrigger
from airflow_provider_lakeflow.workspace.waiting import NOT_FOUND, connection_verdict

MODES = ["poke", "reschedule", "deferred"]
WALKTHROUGH = "Catalog > External Data > Connections > Create connection"


def _after_polls(emulator, name: str, polls: int, action) -> threading.Thread:
    """Run ``action`` once the sensor has read the connection ``polls`` times (event-driven, not timed)."""

    def watch() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            if len(emulator.requests(path_regex=rf"/unity-catalog/connections/{name}$", method="GET")) >= polls:
                action()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("mode", MODES)
def test_waits_for_a_connection_made_in_the_ui_and_logs_the_walkthrough_once(
    airflow_db, lakeflow_emulator, mode, capfd
):
    # A person creates the Salesforce connection through the Catalog Explorer sign-in while the sensor waits.
    timer = _after_polls(
        lakeflow_emulator, "sf_conn", 3, lambda: lakeflow_emulator.create_connection_as_ui("sf_conn", "SALESFORCE", {})
    )
    try:
        dag_run = run_dag(f"lf_conn_sensor_{mode}", name="sf_conn")
    finally:
        timer.join()
    assert task_state(dag_run, "wait") == "success"
    assert xcom(dag_run, "wait", "state") == "ACTIVE"
    out = capfd.readouterr().out
    # Once per try. Airflow 2's dag.test prints each task log line through two handlers: count in units of a line
    # that is logged exactly once (the success message).
    once = out.count("Connection 'sf_conn' (SALESFORCE) is ACTIVE: ready")
    assert once in (1, 2)
    assert out.count(WALKTHROUGH) == once, out[-3000:]
    assert "'sf_conn' does not exist yet" in out
    gets = lakeflow_emulator.requests(path_regex=r"/unity-catalog/connections/sf_conn$", method="GET")
    assert len(gets) >= 4  # three misses, then the hit
    assert not lakeflow_emulator.requests(method="POST", path_regex=r"/unity-catalog/")  # a sensor creates nothing


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_provisioning_then_active(airflow_db, lakeflow_emulator, mode, capfd):
    lakeflow_emulator.create_connection_as_ui("pg", "POSTGRESQL", {"host": "h"}, state="PROVISIONING")
    thread = _after_polls(lakeflow_emulator, "pg", 3, lambda: lakeflow_emulator.set_connection_state("pg", "ACTIVE"))
    try:
        dag_run = run_dag(f"lf_conn_sensor_{mode}", name="pg")
    finally:
        thread.join()
    assert task_state(dag_run, "wait") == "success"
    out = capfd.readouterr().out
    assert "PROVISIONING" in out
    assert WALKTHROUGH not in out  # it exists: nothing to sign in to


@pytest.mark.parametrize("mode", MODES)
def test_failed_fails_with_state_and_soft_fail_skips(airflow_db, lakeflow_emulator, mode, capfd):
    lakeflow_emulator.create_connection_as_ui("db_conn", "SQLSERVER", {"host": "h"}, state="FAILED")
    dag_run = run_dag(f"lf_conn_sensor_{mode}", name="db_conn")
    assert task_state(dag_run, "wait") == "failed"
    out = capfd.readouterr().out
    assert "Connection 'db_conn' (SQLSERVER) is FAILED. Fix: check the connection's host" in out
    dag_run = run_dag(f"lf_conn_sensor_{mode}_soft_fail", name="db_conn")
    assert task_state(dag_run, "wait") == "skipped"


def test_deleting_fails(airflow_db, lakeflow_emulator, capfd):
    lakeflow_emulator.create_connection_as_ui("db_conn", "TERADATA", {"host": "h"}, state="DELETING")
    dag_run = run_dag("lf_conn_sensor_poke", name="db_conn")
    assert task_state(dag_run, "wait") == "failed"
    assert "Connection 'db_conn' (TERADATA) is DELETING. Fix: the connection is being deleted" in capfd.readouterr().out


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_failure_after_waiting(airflow_db, lakeflow_emulator, mode, capfd):
    lakeflow_emulator.create_connection_as_ui("db_conn", "MYSQL", {"host": "h"}, state="PROVISIONING")
    timer = _after_polls(
        lakeflow_emulator, "db_conn", 2, lambda: lakeflow_emulator.set_connection_state("db_conn", "FAILED", "no")
    )
    try:
        dag_run = run_dag(f"lf_conn_sensor_{mode}", name="db_conn")
    finally:
        timer.join()
    assert task_state(dag_run, "wait") == "failed"
    assert "Connection 'db_conn' (MYSQL) is FAILED" in capfd.readouterr().out


@pytest.mark.parametrize("mode", ["poke", "deferred"])
def test_degraded_succeeds_with_a_warning(airflow_db, lakeflow_emulator, mode, capfd):
    lakeflow_emulator.create_connection_as_ui("db_conn", "ORACLE", {"host": "h"}, state="DEGRADED")
    dag_run = run_dag(f"lf_conn_sensor_{mode}", name="db_conn")
    assert task_state(dag_run, "wait") == "success"
    assert xcom(dag_run, "wait", "state") == "DEGRADED"
    assert "is DEGRADED: treated as ready" in capfd.readouterr().out


def test_deadline_times_out(airflow_db, lakeflow_emulator, capfd):
    dag_run = run_dag("lf_conn_sensor_short_timeout", name="never_made")
    assert task_state(dag_run, "wait") == "failed"
    assert "Sensor timed out" in capfd.readouterr().out
    # It stopped polling at its 1 s deadline rather than waiting on: a few polls at its poke interval, not dozens.
    # (Counted at the emulator, not timed: how long the run took says more about the machine than about the sensor.)
    polls = lakeflow_emulator.requests(path_regex=r"/unity-catalog/connections/never_made$", method="GET")
    poke_interval = 0.05  # lf_conn_sensor_short_timeout's (tests/dags/connection_dags.py)
    assert 1 <= len(polls) <= 1 / poke_interval + 3, len(polls)


def test_verdicts():
    assert connection_verdict("c", {"connection_type": "HTTP"}).verdict == "success"  # no provisioning info
    assert connection_verdict("c", {"provisioning_info": {}}).verdict == "success"
    assert connection_verdict("c", {"provisioning_info": {"state": "ACTIVE"}}).verdict == "success"
    assert connection_verdict("c", {"provisioning_info": {"state": "UPDATING"}}).verdict is None
    assert connection_verdict("c", {"provisioning_info": {"state": "SOMETHING_NEW"}}).verdict is None
    failed = connection_verdict(
        "c", {"connection_type": "SQLSERVER", "provisioning_info": {"state": "FAILED", "message": "login failed"}}
    )
    assert failed.verdict == "failed"
    assert failed.message.startswith("Connection 'c' (SQLSERVER) is FAILED: login failed. Fix:")


def test_trigger_serialize_round_trips_every_field():
    trigger = LakeflowConnectionReadyTrigger(
        connection_name="c", databricks_conn_id="conn", poll_interval=2.5, end_time=1234.5
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_lakeflow.triggers.connection.LakeflowConnectionReadyTrigger"
    assert kwargs == {"connection_name": "c", "databricks_conn_id": "conn", "poll_interval": 2.5, "end_time": 1234.5}
    rebuilt = LakeflowConnectionReadyTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def _first_event(trigger):
    async def first():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(first())


def test_trigger_events_are_typed(lakeflow_emulator):
    fields = {"status", "connection_name", "state", "message"}
    timer = _after_polls(
        lakeflow_emulator, "c", 2, lambda: lakeflow_emulator.create_connection_as_ui("c", "HUBSPOT", {})
    )
    try:
        event = _first_event(LakeflowConnectionReadyTrigger("c", poll_interval=0.05))
    finally:
        timer.join()
    assert event["status"] == "success" and event["state"] == "ACTIVE" and set(event) == fields

    lakeflow_emulator.set_connection_state("c", "FAILED")
    event = _first_event(LakeflowConnectionReadyTrigger("c", poll_interval=0.05))
    assert event["status"] == "failed" and event["state"] == "FAILED" and set(event) == fields

    lakeflow_emulator.clear_requests()
    event = _first_event(LakeflowConnectionReadyTrigger("missing", poll_interval=0.05, end_time=time.time() + 0.3))
    assert event == {
        "status": "timeout",
        "connection_name": "missing",
        "state": NOT_FOUND,
        "message": "Connection 'missing' was still NOT_FOUND at the deadline",
    }
    # It ended at its deadline: a handful of polls at 0.05 s within 0.3 s, not a wait that went on polling.
    assert 1 <= len(lakeflow_emulator.requests(path_regex=r"/connections/missing$", method="GET")) <= 0.3 / 0.05 + 3

    lakeflow_emulator.inject_fault(r"/connections/c$", status=403, count=None)
    event = _first_event(LakeflowConnectionReadyTrigger("c", poll_interval=0.05))
    assert event["status"] == "error" and set(event) == fields


def test_trigger_polls_through_transient_faults(lakeflow_emulator):
    lakeflow_emulator.create_connection_as_ui("c", "ZENDESK", {})
    lakeflow_emulator.inject_fault(r"/connections/c$", status=503, retry_after=0, count=2)
    event = _first_event(LakeflowConnectionReadyTrigger("c", poll_interval=0.05))
    assert event["status"] == "success"
    assert len(lakeflow_emulator.requests(path_regex=r"/connections/c$")) == 3
