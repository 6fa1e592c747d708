"""Airflow 3.1-3.2: a user's kill of a deferred run task stops its update although their triggerer calls no on_kill;
a triggerer's shutdown (a deploy) stops nothing.

Through a real scheduler, dag-processor, api-server and triggerer on SQLite with the LocalExecutor, against the
emulator: two deferred ``LakeflowRunPipelineOperator`` waits; the triggerer is stopped with SIGTERM (its shutdown
cancels both triggers) and a new one adopts them; then a user marks one task failed through the REST API. The killed
task's update is stopped, the other one's runs to COMPLETED and its task succeeds, each with one ``start_update``.
On Airflow 3.3 the triggerer's ``on_kill`` does this (tests/test_triggerer_failover.py); takes two to three minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import make_pipeline
from test_real_triggerer import ROOT, Airflow, _free_port, _port_open, _process, _query, _wait_for

from airflow_provider_lakeflow.airflow_versions import KILL_BY_CANCELLATION

DAG_ID = "lf_triggerer_fanout"
KILLED, KEPT = "kill-killed", "kill-kept"
#: Long enough for both waits to be deferred, the triggerer to restart and the kill to land while the updates run.
KEPT_SECONDS = 100.0
KILLED_SECONDS = 600.0

pytestmark = pytest.mark.skipif(
    not KILL_BY_CANCELLATION,
    reason="Airflow 3.1-3.2 only: 3.3 calls on_kill (tests/test_triggerer_failover.py); 2.11 cannot stop the update "
    "(tests/test_version_notes.py checks that the task log says so)",
)


def _trigger_logs(home: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in (home / "logs").rglob("*.log.trigger.*.log"))


def test_a_kill_stops_the_update_and_a_triggerer_shutdown_does_not(tmp_path, lakeflow_emulator_server, monkeypatch):
    emulator = lakeflow_emulator_server
    emulator.reset()
    home = tmp_path / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "triggerer_dags" / "lf_triggerer_fanout.py", dags)
    port = _free_port()
    conn = json.dumps({"conn_type": "lakeflow", "host": emulator.url, "password": "emulator-token"})
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        # The restarted triggerer adopts the waits of the stopped one once its heartbeat is this old.
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
        "AIRFLOW_CONN_DATABRICKS_DEFAULT": conn,
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    airflow = Airflow(home, env)
    airflow.cli("db", "migrate")
    db = home / "airflow.db"

    monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", conn)
    pipelines = {name: make_pipeline(name, tables=("account",)) for name in (KILLED, KEPT)}
    emulator.script_pipeline(pipelines[KILLED], phase_seconds={"RUNNING": KILLED_SECONDS})
    emulator.script_pipeline(pipelines[KEPT], phase_seconds={"RUNNING": KEPT_SECONDS})

    def deferred_on(job_ids: set[int]) -> bool:
        rows = _query(
            db,
            "SELECT ti.run_id, t.triggerer_id FROM task_instance ti JOIN trigger t ON ti.trigger_id = t.id "
            "WHERE ti.dag_id = ? AND ti.state = 'deferred'",
            DAG_ID,
        )
        return {run for run, job in rows if job in job_ids} == {KILLED, KEPT}

    def triggerer_jobs() -> set[int]:
        return {row[0] for row in _query(db, "SELECT id FROM job WHERE job_type = 'TriggererJob'")}

    pids: set[int] = set()
    try:
        airflow.start("triggerer", "triggerer")
        airflow.start("api-server", "api-server", "--port", str(port), nice=10)
        _wait_for("the api-server", lambda: _port_open(port), 90, airflow)
        airflow.start("dag-processor", "dag-processor", nice=10)
        airflow.start("scheduler", "scheduler", nice=10)
        _wait_for(
            "the DAG to be parsed",
            lambda: _query(db, "SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG_ID),
            120,
            airflow,
        )
        trigger = (
            "from airflow.api.common.trigger_dag import trigger_dag\n"
            "from airflow.utils.types import DagRunTriggeredByType\n"
            f"for name in {[KILLED, KEPT]!r}:\n"
            f"    trigger_dag({DAG_ID!r}, run_id=name, conf={{'pipeline_name': name}},\n"
            "                triggered_by=DagRunTriggeredByType.CLI)\n"
        )
        done = subprocess.run([sys.executable, "-c", trigger], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        first = triggerer_jobs()
        _wait_for("both waits deferred to the triggerer", lambda: deferred_on(first), 240, airflow)
        time.sleep(3)  # the triggerer's loop (1 s) starts the triggers it was given

        # A deploy: SIGTERM. The shutdown cancels both triggers; neither update may be stopped.
        stopping = airflow.procs.pop("triggerer")
        os.killpg(stopping.pid, signal.SIGTERM)
        stopping.wait(timeout=60)
        assert not emulator.requests(path_regex=r"/stop$")
        airflow.start("triggerer-2", "triggerer")
        _wait_for("the new triggerer", lambda: triggerer_jobs() - first, 90, airflow)
        _wait_for("the new triggerer to adopt both waits", lambda: deferred_on(triggerer_jobs() - first), 120, airflow)
        time.sleep(3)
        assert not emulator.requests(path_regex=r"/stop$")

        # A user marks one deferred task failed, as in the UI: the triggerer cancels its trigger, which stops it.
        api = f"http://127.0.0.1:{port}"
        token = httpx.get(f"{api}/auth/token", timeout=30).json()["access_token"]
        response = httpx.patch(
            f"{api}/api/v2/dags/{DAG_ID}/dagRuns/{KILLED}/taskInstances/run",
            json={"new_state": "failed"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        _wait_for(
            "the killed task's update to be stopped",
            lambda: emulator.update(pipelines[KILLED])["state"] in ("STOPPING", "CANCELED"),
            90,
            airflow,
        )

        def finished() -> bool:
            states = dict(_query(db, "SELECT state, count(*) FROM dag_run GROUP BY state"))
            return states.get("running", 0) + states.get("queued", 0) == 0

        _wait_for("both DAG runs to finish", finished, KEPT_SECONDS + 180, airflow)
        pids = airflow.stop()
    finally:
        if not pids:
            pids = airflow.stop()

    runs = dict(_query(db, "SELECT run_id, state FROM dag_run WHERE dag_id = ?", DAG_ID))
    assert runs == {KILLED: "failed", KEPT: "success"}, runs
    kept, killed = pipelines[KEPT], pipelines[KILLED]
    assert len(emulator.requests(path_regex=rf"/pipelines/{kept}/updates$", method="POST")) == 1
    assert not emulator.requests(path_regex=rf"/pipelines/{kept}/stop$")
    assert [u["state"] for u in emulator.updates(kept)] == ["COMPLETED"]
    assert len(emulator.requests(path_regex=rf"/pipelines/{killed}/updates$", method="POST")) == 1
    assert len(emulator.requests(path_regex=rf"/pipelines/{killed}/stop$", method="POST")) == 1
    assert [u["state"] for u in emulator.updates(killed)] == ["CANCELED"]
    # The trigger said why it stopped (in its own log, or the triggerer's once Airflow closed the trigger's log).
    logged = _trigger_logs(home) + airflow.log("triggerer-2")
    assert f"on_kill: task {DAG_ID}.run (run {KILLED}) is failed, no longer deferred: the task was killed" in logged
    alive = [pid for pid in pids if _process(pid) is not None and _process(pid).status() != "zombie"]
    assert not alive
