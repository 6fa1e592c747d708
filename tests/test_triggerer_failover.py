"""Triggerer failover never stops an update; a user's kill of a deferred task still does.

The real-Airflow test runs three triggerers one after another (two at a time) with a short health-check threshold, on
SQLite with the LocalExecutor, against the emulator, with deferred ``LakeflowRunPipelineOperator`` waits:

1. SIGKILL of the triggerer holding the most waits: the other adopts them.
2. SIGSTOP of the survivor past the threshold: a fresh triggerer adopts them; then SIGCONT: the resumed triggerer
   cancels its old copies through Airflow 3.3.2's user-kill path (``on_kill``), and the guard keeps every update
   running.
3. A user marks one deferred task failed through the REST API: its update is stopped. The triggerer holding it reads
   a task state for the first time, which holds its supervisor (Airflow's set-up, docs/deferrable.md); waits the
   other triggerer adopts meanwhile are kept running by the guard when their old copies are cancelled.

Every other task succeeds with exactly one ``start_update`` and no ``stop`` per pipeline. Airflow 3 only (see the skip
reason); takes four to six minutes, most of it waiting for the updates to end. The guard's decision table
(``triggers/user_kill.py``) is tested below it, against a stand-in for the triggerer's supervisor channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import psutil
import pytest
from conftest import make_pipeline
from test_real_triggerer import ROOT, Airflow, _airflow3, _free_port, _port_open, _process, _query, _wait_for

from airflow_provider_lakeflow.triggers import LakeflowConnectionReadyTrigger, LakeflowPipelineUpdateTrigger
from airflow_provider_lakeflow.triggers.user_kill import STATE_READ_TIMEOUT

WAITS = 10  # deferred waits that must survive both failovers
KILLED = "failover-killed"  # the run whose deferred task a user marks failed
THRESHOLD = 10  # [triggerer] triggerer_health_check_threshold, seconds
#: Long enough for both failovers and the user's kill to happen while every update still runs, on a loaded machine.
UPDATE_SECONDS = 150.0
DAG_ID = "lf_triggerer_fanout"
GUARD_KEPT = "is still deferred, so this trigger was moved to another triggerer"
USER_ACTION = "Trigger cancelled by user action, invoking on_kill"

AIRFLOW3_ONLY = pytest.mark.skipif(
    not _airflow3(),
    reason="Airflow 2.11 has no trigger on_kill (a killed deferred task leaves its update running, nothing to guard) "
    "and refuses the LocalExecutor on SQLite. Airflow 3's tasks go through the api-server, so SQLite serves the real "
    "thing.",
)


def _triggerer_jobs(db: Path) -> list[int]:
    return [row[0] for row in _query(db, "SELECT id FROM job WHERE job_type = 'TriggererJob' ORDER BY id")]


def _holders(db: Path) -> dict[str, int | None]:
    """run_id -> the triggerer job its deferred task's trigger is assigned to (None: unassigned)."""
    return dict(
        _query(
            db,
            "SELECT ti.run_id, t.triggerer_id FROM task_instance ti JOIN trigger t ON ti.trigger_id = t.id "
            "WHERE ti.dag_id = ? AND ti.state = 'deferred'",
            DAG_ID,
        )
    )


def _trigger_logs(home: Path, job_id: int, text: str) -> set[str]:
    """Runs whose trigger log written by triggerer ``job_id`` contains ``text``."""
    runs = set()
    for path in (home / "logs").rglob(f"*.log.trigger.{job_id}.log"):
        if text in path.read_text(errors="replace"):
            runs.update(part.removeprefix("run_id=") for part in path.parts if part.startswith("run_id="))
    return runs


def _kept(airflow: Airflow, job_id: int, name: str, runs: set[str]) -> set[str]:
    """Runs for which triggerer ``job_id`` logged that the guard kept the update running: in the trigger's log, or in
    the triggerer's own log when the line came after Airflow had closed the trigger's log."""
    logged = "\n".join(
        path.read_text(errors="replace") for path in (airflow.home / "logs").rglob(f"*.log.trigger.{job_id}.log")
    )
    logged += airflow.log(name)
    return {run for run in runs if f"(run {run}) {GUARD_KEPT}" in logged}


def _signal_group(airflow: Airflow, name: str, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(airflow.procs[name].pid, sig)


@AIRFLOW3_ONLY
def test_failover_never_stops_an_update_and_a_user_kill_still_does(tmp_path, lakeflow_emulator_server, monkeypatch):
    from airflow_provider_lakeflow.testing.emulator.control import LakeflowEmulator

    emulator: LakeflowEmulator = lakeflow_emulator_server
    emulator.reset()
    emulator.set_default_script(update_seconds=UPDATE_SECONDS)
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
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(THRESHOLD),
        "AIRFLOW_CONN_DATABRICKS_DEFAULT": conn,
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    airflow = Airflow(home, env)
    airflow.cli("db", "migrate")
    db = home / "airflow.db"

    monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", conn)
    names = [f"failover-{i}" for i in range(WAITS)]
    pipelines = {name: make_pipeline(name, tables=("account",)) for name in [*names, KILLED]}

    def start_triggerer(name: str) -> int:
        """Start one triggerer (its own log-server port) and return its job id."""
        known = set(_triggerer_jobs(db))
        airflow.start(name, "triggerer", extra_env={"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port())})
        _wait_for(f"{name}'s job", lambda: set(_triggerer_jobs(db)) - known, 90, airflow)
        (job_id,) = set(_triggerer_jobs(db)) - known
        return job_id

    pids: set[int] = set()
    victim_pids: set[int] = set()
    try:
        jobs = {"t1": start_triggerer("t1"), "t2": start_triggerer("t2")}
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
            f"for name in {[*names, KILLED]!r}:\n"
            f"    trigger_dag({DAG_ID!r}, run_id=name, conf={{'pipeline_name': name}},\n"
            "                triggered_by=DagRunTriggeredByType.CLI)\n"
        )
        done = subprocess.run([sys.executable, "-c", trigger], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        everyone = {*names, KILLED}
        _wait_for(
            "every wait to be deferred and held by a triggerer",
            lambda: (held := _holders(db)).keys() == everyone and None not in held.values(),
            240,
            airflow,
        )
        time.sleep(3)  # the holders' loops (1 s) start the triggers they were given

        # 1. SIGKILL the triggerer that holds the most waits: the other adopts them; nothing calls on_kill.
        held = _holders(db)
        victim = max(jobs, key=lambda name: sum(1 for job in held.values() if job == jobs[name]))
        survivor = next(name for name in jobs if name != victim)
        killed_held = sum(1 for job in held.values() if job == jobs[victim])
        victim_proc = airflow.procs[victim]
        victim_pids = {victim_proc.pid} | {p.pid for p in psutil.Process(victim_proc.pid).children(recursive=True)}
        _signal_group(airflow, victim, signal.SIGKILL)
        victim_proc.wait(timeout=30)
        del airflow.procs[victim]  # _wait_for must not count the killed triggerer as "exited early"
        started = time.time()
        _wait_for(
            f"{survivor} to adopt {victim}'s waits",
            lambda: set(_holders(db).values()) == {jobs[survivor]},
            THRESHOLD + 90,
            airflow,
        )
        adopted_after_kill = time.time() - started

        # 2. A third triggerer, then freeze the survivor past the threshold: the third adopts every wait.
        jobs["t3"] = start_triggerer("t3")
        _signal_group(airflow, survivor, signal.SIGSTOP)
        started = time.time()
        try:
            _wait_for(
                f"t3 to adopt the frozen {survivor}'s waits",
                lambda: set(_holders(db).values()) == {jobs["t3"]},
                THRESHOLD + 90,
                airflow,
            )
            adopted_after_stop = time.time() - started
        finally:
            _signal_group(airflow, survivor, signal.SIGCONT)
        # Resumed, it cancels its old copies through the user-kill path; the guard reads each task (still deferred)
        # and stops nothing.
        _wait_for(
            f"the resumed {survivor} to cancel every old copy",
            lambda: _kept(airflow, jobs[survivor], survivor, everyone) == everyone,
            90,
            airflow,
        )
        assert _trigger_logs(home, jobs[survivor], USER_ACTION) == everyone  # Airflow took the dangerous path
        assert not emulator.requests(path_regex=r"/stop$")
        for name, pipeline_id in pipelines.items():
            assert emulator.update(pipeline_id)["state"] not in ("COMPLETED", "FAILED", "CANCELED"), name

        # 3. A user marks one deferred task failed, as in the UI: the triggerer now holding it stops its update. That
        # triggerer (t3) has read no task state yet: its first read holds its supervisor while Airflow sets up the
        # in-process execution API (docs/deferrable.md), often past the threshold, so the survivor may adopt t3's
        # other waits meanwhile; t3 then cancels its old copies, and the guard keeps every one running.
        api = f"http://127.0.0.1:{port}"
        token = httpx.get(f"{api}/auth/token", timeout=30).json()["access_token"]
        t3_log_before = len(airflow.log("t3"))
        killed_at = time.time()
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
            STATE_READ_TIMEOUT + 60,  # a read that outlived the guard's own bound would stop nothing
            airflow,
        )
        (stop,) = emulator.requests(path_regex=rf"/pipelines/{pipelines[KILLED]}/stop$", method="POST")
        kill_to_stop = stop.time - killed_at
        # The waits t3 lost while its first read held it: each old copy's on_kill read "still deferred".
        moved_from_t3 = {run for run, job in _holders(db).items() if job != jobs["t3"]}
        _wait_for(
            "t3 to keep every wait it lost while reading",
            lambda: _kept(airflow, jobs["t3"], "t3", moved_from_t3) == moved_from_t3,
            90,
            airflow,
        )
        t3_stalls = re.findall(r"Heartbeat recovered after ([0-9.]+) seconds", airflow.log("t3")[t3_log_before:])

        def finished() -> bool:
            states = dict(_query(db, "SELECT state, count(*) FROM dag_run GROUP BY state"))
            return states.get("running", 0) + states.get("queued", 0) == 0

        _wait_for("every DAG run to finish", finished, UPDATE_SECONDS + 180, airflow)
        print(
            f"{victim} held {killed_held} of {len(everyone)} waits when SIGKILLed: adopted in "
            f"{adopted_after_kill:.0f}s; "
            f"{survivor} SIGSTOPped with all {len(everyone)}: adopted by t3 in {adopted_after_stop:.0f}s "
            f"(threshold {THRESHOLD}s); user's kill to stop {kill_to_stop:.1f}s, t3's heartbeat gaps meanwhile "
            f"{', '.join(t3_stalls) or 'none'}s, waits it lost meanwhile {len(moved_from_t3)} (all kept running)"
        )
        pids = airflow.stop()
    finally:
        for name in list(airflow.procs):
            _signal_group(airflow, name, signal.SIGCONT)  # a frozen process group cannot act on SIGTERM
        if not pids:
            pids = airflow.stop()

    runs = dict(_query(db, "SELECT run_id, state FROM dag_run WHERE dag_id = ?", DAG_ID))
    assert runs == {**dict.fromkeys(names, "success"), KILLED: "failed"}, runs
    for name in names:
        pipeline_id = pipelines[name]
        assert len(emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/updates$", method="POST")) == 1, name
        assert not emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/stop$"), name
        assert [u["state"] for u in emulator.updates(pipeline_id)] == ["COMPLETED"], name
    killed = pipelines[KILLED]
    assert len(emulator.requests(path_regex=rf"/pipelines/{killed}/updates$", method="POST")) == 1
    assert emulator.requests(path_regex=rf"/pipelines/{killed}/stop$", method="POST")
    assert [u["state"] for u in emulator.updates(killed)] == ["CANCELED"]
    alive = [pid for pid in pids | victim_pids if _process(pid) is not None and _process(pid).status() != "zombie"]
    assert not alive


# --- the guard's decision table ----------------------------------------------------------------------------------


class _Supervisor:
    """Stands in for the triggerer's channel to its supervisor, which answers ``GetTaskStates`` from the execution
    API; the real channel is exercised by the test above."""

    def __init__(self, task_states: dict | None = None, error: Exception | None = None) -> None:
        self.task_states = task_states or {}
        self.error = error
        self.asked: list = []

    async def asend(self, msg):
        from airflow.sdk.execution_time.comms import GetTaskStates, TaskStatesResult

        assert isinstance(msg, GetTaskStates)
        self.asked.append(msg)
        if self.error is not None:
            raise self.error
        return TaskStatesResult(task_states=self.task_states)


def _killed(trigger, supervisor: _Supervisor, monkeypatch, map_index: int = -1) -> None:
    from airflow.sdk.execution_time import task_runner

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", supervisor, raising=False)
    trigger.task_instance = SimpleNamespace(dag_id="d", task_id="run", run_id="r1", map_index=map_index)
    asyncio.run(trigger.on_kill())


@pytest.fixture
def running_update(lakeflow_emulator):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=5)
    return pipeline_id, lakeflow_emulator.start_update_externally(pipeline_id)


def _stops(emulator, pipeline_id: str) -> int:
    return len(emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/stop$", method="POST"))


@AIRFLOW3_ONLY
@pytest.mark.parametrize(
    ("task_states", "stops"),
    [
        pytest.param({"r1": {"run": "deferred"}}, 0, id="still-deferred-so-reassigned"),
        pytest.param({"r1": {"run": "failed"}}, 1, id="marked-failed"),
        pytest.param({"r1": {"run": "success"}}, 1, id="marked-success"),
        pytest.param({"r1": {"run": None}}, 1, id="cleared"),
        pytest.param({}, 1, id="run-deleted"),
    ],
)
def test_on_kill_stops_the_update_only_when_the_task_left_deferred(
    lakeflow_emulator, running_update, monkeypatch, task_states, stops
):
    pipeline_id, update_id = running_update
    supervisor = _Supervisor(task_states)
    _killed(LakeflowPipelineUpdateTrigger(pipeline_id, update_id), supervisor, monkeypatch)
    assert _stops(lakeflow_emulator, pipeline_id) == stops
    (asked,) = supervisor.asked
    assert (asked.dag_id, asked.task_ids, asked.run_ids) == ("d", ["run"], ["r1"])


@AIRFLOW3_ONLY
def test_on_kill_reads_a_mapped_task_instance_by_its_index(lakeflow_emulator, running_update, monkeypatch):
    pipeline_id, update_id = running_update
    # The execution API keys a mapped task instance "<task_id>_<map_index>"; its sibling's state must not count.
    supervisor = _Supervisor({"r1": {"run_2": "deferred", "run_3": "failed"}})
    _killed(LakeflowPipelineUpdateTrigger(pipeline_id, update_id), supervisor, monkeypatch, map_index=2)
    assert _stops(lakeflow_emulator, pipeline_id) == 0
    assert supervisor.asked[0].map_index == 2
    supervisor = _Supervisor({"r1": {"run_2": "deferred", "run_3": "failed"}})
    _killed(LakeflowPipelineUpdateTrigger(pipeline_id, update_id), supervisor, monkeypatch, map_index=3)
    assert _stops(lakeflow_emulator, pipeline_id) == 1


@AIRFLOW3_ONLY
def test_on_kill_stops_nothing_when_the_state_cannot_be_read(lakeflow_emulator, running_update, monkeypatch, capfd):
    pipeline_id, update_id = running_update
    _killed(
        LakeflowPipelineUpdateTrigger(pipeline_id, update_id),
        _Supervisor(error=ConnectionResetError("supervisor went away")),
        monkeypatch,
    )
    assert _stops(lakeflow_emulator, pipeline_id) == 0
    logged = capfd.readouterr().out
    assert "could not read the state of task d.run (run r1): ConnectionResetError" in logged
    assert "Not stopping the remote work" in logged
    # No task instance (a trigger run outside the triggerer): unknown too.
    asyncio.run(LakeflowPipelineUpdateTrigger(pipeline_id, update_id).on_kill())
    assert _stops(lakeflow_emulator, pipeline_id) == 0


@AIRFLOW3_ONLY
def test_on_kill_finishes_although_airflow_cancels_it_again(lakeflow_emulator, running_update, monkeypatch):
    """Airflow 3.3.2 re-sends a trigger's cancel every triggerer loop while its on_kill runs."""
    from airflow.sdk.execution_time import task_runner

    pipeline_id, update_id = running_update

    class SlowSupervisor(_Supervisor):
        async def asend(self, msg):
            await asyncio.sleep(0.5)  # a busy supervisor
            return await super().asend(msg)

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", SlowSupervisor({"r1": {"run": "failed"}}), raising=False)
    trigger = LakeflowPipelineUpdateTrigger(pipeline_id, update_id)
    trigger.task_instance = SimpleNamespace(dag_id="d", task_id="run", run_id="r1", map_index=-1)

    async def kill_twice() -> None:
        on_kill = asyncio.ensure_future(trigger.on_kill())
        await asyncio.sleep(0.1)
        on_kill.cancel("again")  # while the state read is in flight
        with pytest.raises(asyncio.CancelledError):
            await on_kill
        for _ in range(100):  # the triggerer's loop keeps running; so does the stop
            await asyncio.sleep(0.05)
            if _stops(lakeflow_emulator, pipeline_id):
                return

    asyncio.run(kill_twice())
    assert _stops(lakeflow_emulator, pipeline_id) == 1


@AIRFLOW3_ONLY
def test_on_kill_does_not_stop_an_update_that_already_ended(lakeflow_emulator, monkeypatch):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.01)
    update_id = lakeflow_emulator.start_update_externally(pipeline_id)
    deadline = time.time() + 10
    while lakeflow_emulator.update(pipeline_id, update_id)["state"] != "COMPLETED" and time.time() < deadline:
        time.sleep(0.05)
    # The pipeline's next update (started by someone else) must not be stopped by the old wait's kill.
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=5)
    lakeflow_emulator.start_update_externally(pipeline_id)
    _killed(LakeflowPipelineUpdateTrigger(pipeline_id, update_id), _Supervisor({"r1": {"run": "failed"}}), monkeypatch)
    assert _stops(lakeflow_emulator, pipeline_id) == 0


def test_on_kill_asks_nothing_when_there_is_nothing_to_stop(lakeflow_emulator, running_update, monkeypatch):
    pipeline_id, update_id = running_update
    supervisor = _Supervisor({"r1": {"run": "failed"}})
    if _airflow3():
        from airflow.sdk.execution_time import task_runner

        monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", supervisor, raising=False)
    lakeflow_emulator.clear_requests()
    for trigger in (
        LakeflowPipelineUpdateTrigger(pipeline_id, update_id, cancel_on_kill=False),  # the sensor's wait
        LakeflowConnectionReadyTrigger("sales_conn"),  # starts nothing
    ):
        trigger.task_instance = SimpleNamespace(dag_id="d", task_id="run", run_id="r1", map_index=-1)
        asyncio.run(trigger.on_kill())
    assert not supervisor.asked
    assert _stops(lakeflow_emulator, pipeline_id) == 0
    assert not lakeflow_emulator.requests(path_regex=r"/pipelines/")
