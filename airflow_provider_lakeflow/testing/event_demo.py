"""The README's event-driven demo: DAGs that run when tables land, ingestion scheduled outside Airflow (Airflow 3).

``python -m airflow_provider_lakeflow.testing.event_demo`` starts the emulator with a Databricks-side schedule (an
update of ``salesforce-crm-landing`` every 30 s; ``main.crm.account`` lands 2 s into each update, ``main.crm.contact``
6 s in), creates the pipeline with ``example_lakeflow_event_pipeline`` (``airflow dags test``), then runs a real
Airflow (api-server, dag-processor, scheduler, triggerer) until ``example_lakeflow_event_transform`` has run for two
updates, prints what happened, and stops every process it started. About two minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_lakeflow.testing.demo import _airflow, _example_dags, stop_process_groups
from airflow_provider_lakeflow.testing.emulator.control import LakeflowEmulator

PIPELINE = "salesforce-crm-landing"
EVERY_SECONDS = 30.0
RUNS_WANTED = 2
QUICK = {"QUEUED": 0.5, "WAITING_FOR_RESOURCES": 0.5, "INITIALIZING": 0.5, "SETTING_UP_TABLES": 0.5, "RUNNING": 8.0}


@dataclass
class Outcome:
    """What Airflow's metadata DB recorded: the transform DAG's finished runs, their checks' XComs by run id, and
    the asset events."""

    runs: list[tuple]
    checks: dict[str, Any]
    asset_events: list[tuple]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _query(db: Path, sql: str, *args: object) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return conn.execute(sql, args).fetchall()


def _start(name: str, args: list[str], env: dict[str, str], home: Path) -> subprocess.Popen:
    log = (home / f"{name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "airflow", *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _airflow_env(emulator_url: str, home: Path, dags: Path, port: int) -> dict[str, str]:
    """The environment of every Airflow process of the demo: a throw-away home, LocalExecutor, the emulator's
    connections."""
    token = {"host": emulator_url, "password": "emulator-token"}
    env = {
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
        "AIRFLOW_CONN_DATABRICKS_DEFAULT": json.dumps({"conn_type": "lakeflow", **token}),
        "AIRFLOW_CONN_DATABRICKS_SQL": json.dumps(
            {"conn_type": "lakeflow_sql", **token, "extra": {"warehouse_id": "emulator-warehouse"}}
        ),
        "LAKEFLOW_WORKSPACE_HOST": emulator_url,
        "LAKEFLOW_EVENT_POLL_SECONDS": "3",
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _create_pipeline(env: dict[str, str], home: Path) -> bool:
    """Migrate the metadata DB and run ``example_lakeflow_event_pipeline`` once (it creates the pipeline)."""
    log = home / "demo.log"
    print("Migrating the Airflow metadata DB ...", flush=True)
    if _airflow(["db", "migrate"], env, log) != 0:
        print(log.read_text()[-5000:])
        return False
    print("Creating the pipeline: `airflow dags test example_lakeflow_event_pipeline` ...", flush=True)
    if _airflow(["dags", "test", "example_lakeflow_event_pipeline"], env, log) != 0:
        print(log.read_text()[-5000:])
        return False
    return True


def _run_airflow(emu: LakeflowEmulator, env: dict[str, str], home: Path, port: int) -> Outcome:
    """Run Airflow's four processes until the transform DAG has run ``RUNS_WANTED`` times (or a deadline), with the
    Databricks-side schedule on; then stop them. What the metadata DB recorded."""
    print(f"Databricks-side schedule: an update of {PIPELINE} every {EVERY_SECONDS:.0f} s (cause JOB_TASK)")
    print("Starting Airflow: api-server, dag-processor, scheduler, triggerer ...", flush=True)
    procs = [_start("api-server", ["api-server", "--port", str(port)], env, home)]
    db = home / "airflow.db"
    try:
        procs += [_start(n, [n], env, home) for n in ("dag-processor", "scheduler", "triggerer")]
        deadline = time.time() + 90
        while time.time() < deadline and not emu.requests(r"/updates$", "GET"):
            time.sleep(1)  # the watchers' first poll: from now on, landings are news
        emu.schedule_updates(PIPELINE, EVERY_SECONDS, first_in_seconds=1.0)
        deadline = time.time() + RUNS_WANTED * EVERY_SECONDS + 90
        done: list[tuple] = []
        while time.time() < deadline and len(done) < RUNS_WANTED:
            time.sleep(2)
            done = _query(
                db,
                "SELECT run_id, state FROM dag_run WHERE dag_id = 'example_lakeflow_event_transform' "
                "AND state IN ('success', 'failed') ORDER BY id",
            )
        emu.unschedule_updates()
        checks = _query(
            db,
            "SELECT run_id, value FROM xcom WHERE dag_id = 'example_lakeflow_event_transform' "
            "AND task_id = 'check_landed_tables' AND key = 'return_value' ORDER BY dag_run_id",
        )
        events = _query(
            db,
            "SELECT a.uri, ae.timestamp, ae.extra FROM asset_event ae JOIN asset a ON a.id = ae.asset_id "
            "ORDER BY ae.id",
        )
    finally:
        stop_process_groups(procs, timeout=45)
    return Outcome(done, dict(checks), events)


def _report(emu: LakeflowEmulator, outcome: Outcome) -> None:
    print("\nUpdates the Databricks-side schedule started (Airflow started none):")
    for update in reversed(emu.updates(emu.pipeline(PIPELINE)["pipeline_id"])):
        print(f"  {update['update_id']}  cause={update['cause']}  {update['state']}")
    print("\nAsset events from the watchers (one per table per update, as each table landed):")
    for uri, stamp, extra in outcome.asset_events:
        payload = json.loads(extra or "{}").get("payload") or {}
        print(f"  {stamp}  {uri}  update {payload.get('update_id')}  {payload.get('num_output_rows')} rows")
    print("\nRuns of example_lakeflow_event_transform (each checked both tables through LakeflowSqlHook):")
    for run_id, state in outcome.runs:
        print(f"  {run_id}: {state}")
        value = outcome.checks.get(run_id)
        landed = json.loads(value) if isinstance(value, (str, bytes)) else value
        for table, facts in sorted((landed or {}).items()):
            print(f"    {table}: {facts.get('rows')} rows, landed by update {facts.get('update_id')}")


def _keep_logs(home: Path) -> Path:
    """Copy Airflow's logs out of the throw-away home."""
    kept = Path(tempfile.gettempdir()) / "lakeflow-event-demo"
    kept.mkdir(exist_ok=True)
    for name in ("api-server", "dag-processor", "scheduler", "triggerer", "demo"):
        source = home / f"{name}.log"
        if source.exists():
            (kept / source.name).write_text(source.read_text(errors="replace"))
    return kept


def main() -> int:
    try:
        import airflow.sdk  # noqa: F401  # the check itself: asset watchers need Airflow 3
    except ImportError:
        print("The event-driven demo needs Airflow 3 (asset watchers); this environment has Airflow 2.")
        return 1
    dags_folder = _example_dags()
    with tempfile.TemporaryDirectory(prefix="lakeflow-event-demo-") as tmp, LakeflowEmulator() as emu:
        home = Path(tmp)
        dags = home / "dags"
        dags.mkdir()
        (dags / "example_lakeflow_event_driven.py").symlink_to(dags_folder / "example_lakeflow_event_driven.py")
        emu.create_connection_as_ui(
            "salesforce_conn", "SALESFORCE", {"instance_url": "https://example.my.salesforce.com"}
        )
        emu.set_default_script(phase_seconds=QUICK, table_seconds={"account": 2.0, "contact": 6.0})
        port = _free_port()
        env = _airflow_env(emu.url, home, dags, port)
        print(f"Lakeflow emulator at {emu.url}; Airflow home {home}")
        if not _create_pipeline(env, home):
            return 1
        outcome = _run_airflow(emu, env, home, port)
        _report(emu, outcome)
        print(f"Airflow's logs: {_keep_logs(home)}")
        done = outcome.runs
        if len(done) < RUNS_WANTED or any(state != "success" for _, state in done):
            print("EVENT DEMO FAILED: the transform DAG did not run successfully for two landings.")
            return 1
        print(f"EVENT DEMO OK: the transform DAG ran {len(done)} times, once per update, as the tables landed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
