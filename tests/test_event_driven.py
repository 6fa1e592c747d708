"""Event-driven scheduling through a real Airflow 3.3: scheduler, dag-processor, triggerer and api-server on SQLite,
against the emulator. ``dag.test()`` runs no watchers, so only the real components can show DAG runs from them.

One Airflow serves the module (starting it takes about half a minute); the tests run in file order and the last one
restarts the triggerer, checking afterwards that no earlier DAG ran again. Polls every 2 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_real_triggerer import Airflow, _airflow3, _free_port, _port_open, _query, _wait_for

pytestmark = pytest.mark.skipif(not _airflow3(), reason="asset watchers are Airflow 3 only")
ROOT = Path(__file__).resolve().parents[1]
POLL = 2.0
QUICK = {"QUEUED": 0.2, "WAITING_FOR_RESOURCES": 0.2, "INITIALIZING": 0.2, "SETTING_UP_TABLES": 0.2}
DAG_IDS = (
    "lf_event_updates",
    "lf_event_restart",
    "lf_event_table",
    "lf_event_fanout",
    "lf_event_operator_run",
    "lf_event_operator_consumer",
)


def _spec(name: str, schema: str, tables) -> dict:
    objects = [
        {
            "table": {
                "source_schema": "objects",
                "source_table": t,
                "destination_catalog": "main",
                "destination_schema": schema,
            }
        }
        for t in tables
    ]
    return {"name": name, "ingestion_definition": {"connection_name": "sf", "objects": objects}}


class Env:
    def __init__(self, airflow: Airflow, emulator, pipelines: dict[str, str]) -> None:
        self.airflow, self.emulator, self.pipelines = airflow, emulator, pipelines
        self.db = airflow.home / "airflow.db"
        self.dag_file = airflow.home / "dags" / "lf_event_dags.py"

    def runs(self, dag_id: str) -> list[tuple[str, str]]:
        """(run_id, state) of a DAG's runs, oldest first."""
        return _query(self.db, "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id", dag_id)

    def triggering_payloads(self, dag_id: str) -> list[tuple[str, dict]]:
        """(run_id, watcher payload) of every asset event that triggered a run of the DAG."""
        rows = _query(
            self.db,
            "SELECT dr.run_id, ae.extra FROM dag_run dr JOIN dagrun_asset_event dae ON dae.dag_run_id = dr.id "
            "JOIN asset_event ae ON ae.id = dae.event_id WHERE dr.dag_id = ? ORDER BY ae.id",
            dag_id,
        )
        return [(run_id, json.loads(extra or "{}").get("payload") or {}) for run_id, extra in rows]

    def asset_events(self, uri_like: str) -> list[dict]:
        rows = _query(
            self.db,
            "SELECT ae.extra FROM asset_event ae JOIN asset a ON a.id = ae.asset_id WHERE a.uri LIKE ? ORDER BY ae.id",
            uri_like,
        )
        return [json.loads(extra or "{}").get("payload") or {} for (extra,) in rows]

    def wait(self, what: str, predicate, timeout: float = 90) -> None:
        _wait_for(what, predicate, timeout, self.airflow)

    def polling(self, pipeline: str) -> bool:
        return bool(self.emulator.requests(rf"/pipelines/{self.pipelines[pipeline]}/updates$", "GET"))

    def stop_component(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Signal one component's process group (SIGTERM: a shutdown as on a deploy; SIGKILL: a crash), then make
        sure it is gone."""
        proc = self.airflow.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=45)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def env(tmp_path_factory, lakeflow_emulator_server):
    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.workspace import operations

    emulator = lakeflow_emulator_server
    emulator.reset()
    home = tmp_path_factory.mktemp("airflow-events")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "tests" / "event_dags" / "lf_event_dags.py", dags)
    port = _free_port()
    conn = json.dumps({"conn_type": "lakeflow", "host": emulator.url, "password": "emulator-token"})
    variables = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
        "AIRFLOW_CONN_DATABRICKS_DEFAULT": conn,
        "LAKEFLOW_WORKSPACE_HOST": emulator.url,
        "LAKEFLOW_EVENT_POLL_SECONDS": str(POLL),
    }
    variables.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    variables["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{variables.get('PATH', '')}"
    airflow = Airflow(home, variables)
    airflow.cli("db", "migrate")

    os.environ["AIRFLOW_CONN_DATABRICKS_DEFAULT"] = conn
    hook = LakeflowHook()
    pipelines = {
        "ev-updates": hook.run(operations.create_pipeline(_spec("ev-updates", "sales", ["Account"]))),
        "ev-restart": hook.run(operations.create_pipeline(_spec("ev-restart", "sales", ["Lead"]))),
        "ev-tables": hook.run(operations.create_pipeline(_spec("ev-tables", "sales", ["account", "opportunity"]))),
        "ev-fanout": hook.run(operations.create_pipeline(_spec("ev-fanout", "fan", [f"t{i}" for i in range(20)]))),
        "ev-operator": hook.run(operations.create_pipeline(_spec("ev-operator", "ops", ["account"]))),
    }
    emulator.script_pipeline("ev-updates", phase_seconds={**QUICK, "RUNNING": 2.0})
    emulator.script_pipeline("ev-restart", phase_seconds={**QUICK, "RUNNING": 12.0})
    emulator.script_pipeline("ev-tables", phase_seconds={**QUICK, "RUNNING": 60.0}, table_seconds={"account": 1.0})
    emulator.script_pipeline("ev-fanout", phase_seconds={**QUICK, "RUNNING": 3.0})
    emulator.script_pipeline("ev-operator", phase_seconds={**QUICK, "RUNNING": 2.0})
    # An update that ended before any watcher started: history, never an event.
    emulator.start_update_externally(pipelines["ev-updates"])

    try:
        airflow.start("api-server", "api-server", "--port", str(port), nice=10)
        _wait_for("the api-server", lambda: _port_open(port), 90, airflow)
        airflow.start("dag-processor", "dag-processor", nice=10)
        airflow.start("scheduler", "scheduler", nice=10)
        airflow.start("triggerer", "triggerer")
        result = Env(airflow, emulator, pipelines)
        result.wait(
            "every watcher to poll",
            lambda: all(result.polling(p) for p in pipelines),
            150,
        )
        yield result
    finally:
        pids = airflow.stop()
        alive = [pid for pid in pids if _alive(pid)]
        assert not alive, alive


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_three_updates_from_outside_airflow_run_the_dag_three_times(env):
    # A Databricks Jobs schedule. Updates far enough apart that Airflow does not fold two landings into one run (the
    # scheduler gives one run all the asset events queued since the DAG's last run).
    env.emulator.schedule_updates("ev-updates", 15.0, count=3, first_in_seconds=0.5)
    env.wait("three runs", lambda: len(env.runs("lf_event_updates")) >= 3, 150)
    started = env.emulator.schedules()[0]["started"]
    time.sleep(4 * POLL)  # room for a duplicate to show up
    runs = env.runs("lf_event_updates")
    assert len(runs) == 3, runs
    # Airflow 3.1-3.2 take seconds longer than 3.3 to start each task (make test-af31 / test-af32 run this test).
    env.wait("the runs to finish", lambda: all(s == "success" for _, s in env.runs("lf_event_updates")), 180)
    payloads = env.triggering_payloads("lf_event_updates")
    assert [p["update_id"] for _, p in payloads] == started
    assert len({run_id for run_id, _ in payloads}) == 3  # one run per update, each naming its own
    assert {p["cause"] for _, p in payloads} == {"JOB_TASK"} and {p["state"] for _, p in payloads} == {"COMPLETED"}
    # As the event log names the tables (and as the run operator's table_metrics XCom does).
    assert all(list(p["table_metrics"]) == ["main.sales.Account"] for _, p in payloads)


def test_a_table_that_lands_early_starts_its_dag_before_the_update_ends(env):
    pipeline_id = env.pipelines["ev-tables"]
    update_id = env.emulator.start_update_externally(pipeline_id)
    env.wait("the landed-table run", lambda: env.runs("lf_event_table"), 60)
    assert env.emulator.update(pipeline_id, update_id)["state"] == "RUNNING"  # 60 s of RUNNING: far from over
    (_, payload), *more = env.triggering_payloads("lf_event_table")
    assert not more
    assert payload["table"] == "main.sales.account" and payload["update_id"] == update_id
    assert payload["num_output_rows"] > 0
    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.workspace import operations

    LakeflowHook().run(operations.stop_pipeline(pipeline_id))


def test_twenty_table_watchers_cost_one_poll(env):
    pipeline_id = env.pipelines["ev-fanout"]
    window = 10 * POLL
    env.emulator.clear_requests()
    time.sleep(window)
    idle_polls = len(env.emulator.requests(rf"/pipelines/{pipeline_id}/updates$", "GET"))
    # One list_updates a poll for all twenty watchers (a poll or two of slack for a loaded machine), not twenty.
    assert 0 < idle_polls <= window / POLL + 2, idle_polls
    assert not env.emulator.requests(rf"/pipelines/{pipeline_id}/events$", "GET")  # nothing runs: no event-log read
    env.emulator.clear_requests()
    update_id = env.emulator.start_update_externally(pipeline_id)
    env.wait("the twenty tables to land", lambda: len(env.asset_events("%/main/fan/%")) >= 20, 90)
    landed = env.asset_events("%/main/fan/%")
    assert sorted(p["table"] for p in landed) == sorted(f"main.fan.t{i}" for i in range(20))
    assert {p["update_id"] for p in landed} == {update_id}
    polls = len(env.emulator.requests(rf"/pipelines/{pipeline_id}/updates$", "GET"))
    event_reads = len(env.emulator.requests(rf"/pipelines/{pipeline_id}/events$", "GET"))
    assert event_reads <= polls + 1, (event_reads, polls)  # the event log is read once a poll while it runs
    env.wait("the fan-out DAG to run", lambda: env.runs("lf_event_fanout"), 60)


def test_an_update_the_run_operator_starts_runs_the_watching_dag_once(env):
    """The recommended combination: the run operator without ``asset_alias`` on a watched table."""
    env.airflow.cli("dags", "trigger", "lf_event_operator_run")
    env.wait("the operator's run", lambda: [s for _, s in env.runs("lf_event_operator_run")] == ["success"], 120)
    env.wait("the consumer's run", lambda: env.runs("lf_event_operator_consumer"), 60)
    time.sleep(4 * POLL)
    (update,) = env.emulator.updates(env.pipelines["ev-operator"])
    assert update["cause"] == "API_CALL"
    payloads = env.triggering_payloads("lf_event_operator_consumer")
    assert [p["update_id"] for _, p in payloads] == [update["update_id"]]
    assert len(env.runs("lf_event_operator_consumer")) == 1


def test_a_changed_dag_file_makes_a_new_watcher_that_neither_refires_nor_misses(env):
    """A watcher's arguments changed (its poll interval): Airflow replaces its trigger; the cursor is the Asset's."""
    newest = _query(env.db, "SELECT max(created_date) FROM trigger")[0][0]
    text = env.dag_file.read_text()
    env.dag_file.write_text(
        text.replace(
            "trigger = LakeflowUpdateEventTrigger(pipeline_name=pipeline_name, poll_interval=POLL)",
            "trigger = LakeflowUpdateEventTrigger(\n"
            '        pipeline_name=pipeline_name, poll_interval=POLL + (1 if pipeline_name == "ev-updates" else 0)\n'
            "    )",
        )
    )
    assert "POLL + (1" in env.dag_file.read_text()
    # Airflow replaces the watcher's trigger row and deletes the old one (SQLite may reuse its id: compare times).
    env.wait(
        "the re-parsed watcher's trigger",
        lambda: _query(env.db, "SELECT max(created_date) FROM trigger")[0][0] > newest,
        120,
    )
    env.emulator.clear_requests()
    env.wait("the new watcher to poll", lambda: env.polling("ev-updates"), 90)
    time.sleep(3 * POLL)
    assert len(env.runs("lf_event_updates")) == 3  # the three updates it fired before are not fired again
    update_id = env.emulator.start_update_externally(env.pipelines["ev-updates"])
    env.wait("the next update's run", lambda: len(env.runs("lf_event_updates")) >= 4, 90)
    time.sleep(3 * POLL)
    payloads = env.triggering_payloads("lf_event_updates")
    assert len(env.runs("lf_event_updates")) == 4 and payloads[-1][1]["update_id"] == update_id


def test_triggerer_restarts_during_and_between_updates_neither_duplicate_nor_miss(env):
    pipeline_id = env.pipelines["ev-restart"]
    before = {dag_id: len(env.runs(dag_id)) for dag_id in DAG_IDS}
    first = env.emulator.start_update_externally(pipeline_id)
    time.sleep(2 * POLL)
    env.stop_component("triggerer")  # during the update; it ends while no triggerer runs
    ended = time.time()
    env.wait("the update to end", lambda: env.emulator.update(pipeline_id, first)["state"] == "COMPLETED", 60)
    env.airflow.start("triggerer-2", "triggerer")
    env.wait("the update that ended meanwhile to run the DAG", lambda: env.runs("lf_event_restart"), 120)
    assert time.time() - ended > 0
    time.sleep(3 * POLL)
    env.stop_component("triggerer-2", signal.SIGKILL)  # between two updates, a crash: another triggerer takes over
    env.airflow.start("triggerer-3", "triggerer")
    env.emulator.clear_requests()
    env.wait("the watcher to poll again", lambda: env.polling("ev-restart"), 150)
    second = env.emulator.start_update_externally(pipeline_id)
    env.wait("the second update's run", lambda: len(env.runs("lf_event_restart")) >= 2, 90)
    time.sleep(4 * POLL)
    payloads = env.triggering_payloads("lf_event_restart")
    assert [p["update_id"] for _, p in payloads] == [first, second]
    after = {dag_id: len(env.runs(dag_id)) for dag_id in DAG_IDS}
    # No watcher fired again for an update it had fired before the restarts.
    assert after == {**before, "lf_event_restart": before["lf_event_restart"] + 2}, (before, after)
