"""The emulator's updates from outside Airflow (a Databricks Jobs schedule) and tables landing at staggered times."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient

QUICK = {"QUEUED": 0.05, "WAITING_FOR_RESOURCES": 0.05, "INITIALIZING": 0.05, "SETTING_UP_TABLES": 0.05}


def _pipeline(lakeflow_emulator, name: str, tables=("account", "contact")) -> str:
    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.workspace import operations

    objects = [
        {"table": {"source_schema": "o", "source_table": t, "destination_catalog": "main", "destination_schema": "s"}}
        for t in tables
    ]
    spec = {"name": name, "ingestion_definition": {"connection_name": "sf", "objects": objects}}
    return LakeflowHook().run(operations.create_pipeline(spec))


def _completed(events) -> dict[str, float]:
    from airflow_provider_lakeflow.workspace.progress import epoch_ms

    out = {}
    for event in events:
        progress = (event.get("details") or {}).get("flow_progress") or {}
        if progress.get("status") == "COMPLETED":
            out[event["origin"]["dataset_name"]] = epoch_ms(event["timestamp"]) / 1000
        if (event.get("details") or {}).get("update_progress", {}).get("state") in ("COMPLETED", "FAILED"):
            out["<update>"] = epoch_ms(event["timestamp"]) / 1000
    return out


def test_tables_complete_at_their_scripted_times_before_the_update_ends(lakeflow_emulator):
    pipeline_id = _pipeline(lakeflow_emulator, "staggered")
    client = EmulatorClient(lakeflow_emulator.url)  # over HTTP, as from another process
    client.script_pipeline("staggered", phase_seconds={**QUICK, "RUNNING": 1.5}, table_seconds={"account": 0.3})
    update_id = lakeflow_emulator.start_update_externally(pipeline_id)
    time.sleep(0.8)
    early = _completed(lakeflow_emulator.events(pipeline_id, update_id))
    assert set(early) == {"main.s.account"}  # landed; contact and the update still running
    assert lakeflow_emulator.update(pipeline_id, update_id)["state"] == "RUNNING"
    time.sleep(1.4)
    done = _completed(lakeflow_emulator.events(pipeline_id, update_id))
    assert done["main.s.contact"] == pytest.approx(done["<update>"], abs=0.01)
    assert done["<update>"] - done["main.s.account"] == pytest.approx(1.2, abs=0.05)
    # Events stay in time order (sequence numbers ascend with timestamps).
    events = lakeflow_emulator.events(pipeline_id, update_id)
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    # The landed table is queryable through the SQL warehouse as soon as its flow completed.
    rows = lakeflow_emulator.query_sql("SELECT COUNT(*) FROM main.s.account")
    assert rows[0][0] > 0


def test_a_failed_update_keeps_its_early_tables_landed_and_fails_a_late_one(lakeflow_emulator):
    pipeline_id = _pipeline(lakeflow_emulator, "staggered-fail")
    lakeflow_emulator.script_pipeline(
        "staggered-fail", phase_seconds={**QUICK, "RUNNING": 0.4}, table_seconds={"account": 0.1}, outcome="FAILED"
    )
    update_id = lakeflow_emulator.start_update_externally(pipeline_id)
    time.sleep(0.8)
    statuses = {
        e["origin"]["dataset_name"]: e["details"]["flow_progress"]["status"]
        for e in lakeflow_emulator.events(pipeline_id, update_id)
        if (e.get("details") or {}).get("flow_progress")
    }
    assert statuses == {"main.s.account": "COMPLETED", "main.s.contact": "FAILED"}
    assert lakeflow_emulator.update(pipeline_id, update_id)["state"] == "FAILED"


def test_a_schedule_starts_updates_skips_busy_ticks_and_waits_for_its_pipeline(lakeflow_emulator):
    client = EmulatorClient(lakeflow_emulator.url)
    client.schedule_updates("later", 0.3, count=2, first_in_seconds=0.05)  # the pipeline does not exist yet
    time.sleep(0.5)
    assert client.schedules()[0]["started"] == [] and client.schedules()[0]["skipped"] >= 1
    pipeline_id = _pipeline(lakeflow_emulator, "later")
    client.script_pipeline("later", phase_seconds={**QUICK, "RUNNING": 0.4})  # longer than a period: a busy tick
    deadline = time.time() + 10
    while len(client.schedules()[0]["started"]) < 2 and time.time() < deadline:
        time.sleep(0.1)
    (schedule,) = client.schedules()
    updates = lakeflow_emulator.updates(pipeline_id)
    assert [u["update_id"] for u in reversed(updates)] == schedule["started"]
    assert {u["cause"] for u in updates} == {"JOB_TASK"}
    time.sleep(1.0)
    assert len(lakeflow_emulator.updates(pipeline_id)) == 2  # count reached: the schedule stopped
    client.unschedule_updates()
    assert client.schedules() == []
    with pytest.raises(Exception, match="every_seconds"):
        client.schedule_updates("later", 0)


def test_reset_stops_every_schedule(lakeflow_emulator):
    pipeline_id = _pipeline(lakeflow_emulator, "reset-me")
    lakeflow_emulator.schedule_updates("reset-me", 0.2)
    lakeflow_emulator.reset()
    time.sleep(0.5)
    assert lakeflow_emulator.schedules() == []
    assert lakeflow_emulator.pipelines() == []
    assert pipeline_id  # made before the reset


def test_cli_flags_schedule_and_stagger():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_lakeflow.testing.emulator",
            "--port",
            "0",
            "--update-seconds",
            "1",
            "--schedule",
            "cli-pipeline=0.5",
            "--table-seconds",
            "account=0.1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        assert proc.stdout.readline().strip() == "READY"
        client = EmulatorClient(url)
        (schedule,) = client.schedules()
        assert schedule["pipeline"] == "cli-pipeline" and schedule["every_seconds"] == 0.5
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bad = subprocess.run(
        [sys.executable, "-m", "airflow_provider_lakeflow.testing.emulator", "--schedule", "nope"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--schedule 'nope': expected NAME=SECONDS" in bad.stderr
