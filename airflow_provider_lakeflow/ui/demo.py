"""``make demo-ui``: a local Airflow (api-server, scheduler, dag-processor, triggerer) against the emulator, with the
Lakeflow views and an example DAG running; prints the URL and the login. The browser tests start the same thing.

``python -m airflow_provider_lakeflow.ui.demo`` runs until Ctrl-C and then stops every process it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow_provider_lakeflow.testing.demo import stop_process_groups
from airflow_provider_lakeflow.testing.emulator.control import LakeflowEmulator
from airflow_provider_lakeflow.workspace import operations

USER, PASSWORD = "admin", "admin"
VIEWER, VIEWER_PASSWORD = "viewer", "viewer"
DEMO_DAGS = Path(__file__).parent / "demo_dags"
#: Staggered landing: the first table completes this many seconds after the update starts RUNNING, the second later.
TABLE_SECONDS = {"account": 20.0, "contact": 45.0}
RUNNING_SECONDS = 60.0
FAILURE = "SAAS_CONNECTOR_DUPLICATE_DATA.ROWS_WITH_SAME_PRIMARY_KEY"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalAirflow:
    """The emulator in this process and Airflow's components as process groups, each stopped by its own id."""

    def __init__(self, home: Path | None = None, port: int | None = None) -> None:
        self.home = home or Path(tempfile.mkdtemp(prefix="lakeflow-ui-demo-"))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.emulator = LakeflowEmulator(update_seconds=10.0)
        self.procs: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}

    def _environment(self) -> dict[str, str]:
        dags = self.home / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        for source in DEMO_DAGS.glob("*.py"):
            target = dags / source.name
            if not target.exists():
                target.symlink_to(source)
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({USER: PASSWORD, VIEWER: VIEWER_PASSWORD}))
        # A clean Airflow configuration: none of the caller's AIRFLOW__* settings or connections leak in.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        env = {
            **inherited,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin,{VIEWER}:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(32).hex(),
            # A busy laptop's api-server (SQLite, one worker) can take longer than the 5 s default to start a task.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW_CONN_DATABRICKS_DEFAULT": json.dumps(
                {"conn_type": "lakeflow", "host": self.emulator.url, "password": "emulator-token"}
            ),
        }
        env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        # The components import the installed package. A PYTHONPATH at a source checkout would also expose its
        # *.egg-info: a second copy of the entry points, which Airflow reports as a plugin import error.
        env.pop("PYTHONPATH", None)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def cli(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return done.stdout

    def _start(self, name: str, *args: str) -> None:
        log = (self.home / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Not the source checkout: its *.egg-info would be a second copy of the package's entry points.
            cwd=self.home,
        )

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")

    def _wait(self, what: str, check: Any, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with contextlib.suppress(Exception):
                if check():
                    return
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{self.log(name)[-3000:]}")
            time.sleep(1)
        raise TimeoutError(f"timed out waiting for {what}")

    def _pipelines(self) -> None:
        # Airflow loads into the demo's own process for this step only (Airflow itself runs in the child processes)
        from airflow_provider_lakeflow.hooks import LakeflowHook

        os.environ["AIRFLOW_CONN_DATABRICKS_DEFAULT"] = self.env["AIRFLOW_CONN_DATABRICKS_DEFAULT"]
        hook = LakeflowHook()
        for name in ("ui-demo-sales", "ui-demo-broken"):
            objects = [
                {
                    "table": {
                        "source_schema": "objects",
                        "source_table": table,
                        "destination_catalog": "main",
                        "destination_schema": "sales",
                    }
                }
                for table in TABLE_SECONDS
            ]
            spec = {"name": name, "ingestion_definition": {"connection_name": "salesforce_conn", "objects": objects}}
            hook.run(operations.create_pipeline(spec))
        self.emulator.script_pipeline(
            "ui-demo-sales",
            phase_seconds={"RUNNING": RUNNING_SECONDS, "WAITING_FOR_RESOURCES": 1.0, "INITIALIZING": 1.0},
            table_seconds=TABLE_SECONDS,
        )
        self.emulator.script_pipeline("ui-demo-broken", phase_seconds=2.0)
        self.emulator.script_condition("ui-demo-broken", FAILURE, table="contact")

    def start(self) -> LocalAirflow:
        self.emulator.start()
        self.env = self._environment()
        self.cli("db", "migrate", timeout=600)
        self._pipelines()
        self._start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.port))
        self._wait(
            "the api-server", lambda: urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5), 180
        )
        self._start("dag-processor", "dag-processor")
        self._start("triggerer", "triggerer")
        self._start("scheduler", "scheduler")
        self._wait(
            "the demo DAGs to be parsed",
            lambda: all(
                self.rest("GET", f"/dags/{d}")["dag_id"] for d in ("lakeflow_ui_demo", "lakeflow_ui_demo_failure")
            ),
            300,
        )
        return self

    def rest(self, method: str, path: str, body: dict | None = None) -> Any:
        """Airflow's REST API as the admin user (the same API the UI calls)."""
        if not getattr(self, "_token", None):
            login = urllib.request.Request(
                f"{self.url}/auth/token",
                data=json.dumps({"username": USER, "password": PASSWORD}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(login, timeout=60) as answer:
                self._token = json.load(answer)["access_token"]
        request = urllib.request.Request(
            f"{self.url}/api/v2{path}",
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)

    def trigger(self, dag_id: str) -> str:
        run = self.rest("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None})
        return run["dag_run_id"]

    def task_state(self, dag_id: str, run_id: str, task_id: str = "run") -> str:
        ti = self.rest("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}")
        return ti.get("state") or ""

    def stop(self) -> None:
        stop_process_groups(list(self.procs.values()), timeout=30)
        for name, proc in self.procs.items():
            print(f"stopped {name} (pid {proc.pid})", file=sys.stderr)
        self.emulator.stop()


def main() -> None:
    airflow = LocalAirflow()
    try:
        airflow.start()
        ok = airflow.trigger("lakeflow_ui_demo")
        failed = airflow.trigger("lakeflow_ui_demo_failure")
        print(
            f"""
Airflow with the Lakeflow views: {airflow.url}   (login {USER} / {PASSWORD}; a read-only {VIEWER} / {VIEWER_PASSWORD})
  a deferred run, tables landing one after the other (about a minute):
    {airflow.url}/dags/lakeflow_ui_demo/runs/{ok}/tasks/run/plugin/lakeflow_update
  a failed update, with its category and fix:
    {airflow.url}/dags/lakeflow_ui_demo_failure/runs/{failed}/tasks/run/plugin/lakeflow_update
  every pipeline's history: {airflow.url}/plugin/lakeflow
Emulator: {airflow.emulator.url}; Airflow home and logs: {airflow.home}
Trigger more runs from the UI. Ctrl-C stops everything.""",
            flush=True,
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        airflow.stop()


if __name__ == "__main__":
    # This is the demo's own process: a SIGTERM stops it as Ctrl-C does, through the cleanup above.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()
