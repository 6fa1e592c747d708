"""The README's demo: the Salesforce example DAG, end to end, through real Airflow, against the local emulator.

``python -m airflow_provider_lakeflow.testing.demo`` starts the emulator, gives Airflow a throw-away home, runs
``airflow dags test example_lakeflow_salesforce`` (the ingestion DAG, deferrable) and then the sensor DAG, and prints
what happened: the update's states, its URL and the rows landed per table.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from airflow_provider_lakeflow.testing.emulator.control import LakeflowEmulator

DAGS = ("example_lakeflow_salesforce", "example_lakeflow_salesforce_sensor")


def stop_process_groups(procs: list[subprocess.Popen], timeout: float) -> None:
    """Stop processes started with ``start_new_session=True``, with their children: SIGTERM to every group, then
    SIGKILL to a group still running after ``timeout`` seconds."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _example_dags() -> Path:
    folder = Path(__file__).resolve().parents[2] / "example_dags"
    if not folder.is_dir():
        raise SystemExit(
            f"example_dags/ not found next to the package ({folder}). Run the demo from a source checkout."
        )
    return folder


def _airflow(args: list[str], env: dict[str, str], log: Path) -> int:
    with log.open("a") as out:
        out.write(f"\n$ airflow {' '.join(args)}\n")
        out.flush()
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        ).returncode


def _summary(emulator: LakeflowEmulator) -> list[str]:
    lines = []
    for pipeline in emulator.pipelines():
        pipeline_id = pipeline["pipeline_id"]
        lines.append(f"Pipeline {pipeline['name']} ({pipeline_id})")
        for update in emulator.updates(pipeline_id):
            update_id = update["update_id"]
            events = emulator.events(pipeline_id, update_id)
            states = [
                e["details"]["update_progress"]["state"]
                for e in events
                if (e.get("details") or {}).get("update_progress")
            ]
            lines.append(f"  update {update_id}: {' -> '.join(states) or update['state']}")
            lines.append(f"  {emulator.url}/#joblist/pipelines/{pipeline_id}/updates/{update_id}")
            rows: dict[str, int] = {}
            for event in events:
                progress = (event.get("details") or {}).get("flow_progress") or {}
                metrics = progress.get("metrics") or {}
                if "num_output_rows" in metrics:
                    rows[event["origin"].get("dataset_name") or event["origin"].get("flow_name")] = metrics[
                        "num_output_rows"
                    ]
            for table, count in sorted(rows.items()):
                lines.append(f"    {table}: {count} rows")
    return lines


def _landed_rows(emulator: LakeflowEmulator) -> list[str]:
    """Query the landed tables like a user would, with the provider's SQL hook against the emulator's warehouse."""
    os.environ["AIRFLOW_CONN_DATABRICKS_SQL"] = json.dumps(
        {
            "conn_type": "lakeflow_sql",
            "host": emulator.url,
            "password": "emulator-token",
            "extra": {"warehouse_id": "emulator-warehouse"},
        }
    )
    # Airflow loads into the demo's own process for this last step only (the DAG ran in `airflow dags test`)
    from airflow_provider_lakeflow.hooks import LakeflowSqlHook

    # The DB-API cursor directly: DbApiHook's helpers would log every statement into the demo's output.
    cursor = LakeflowSqlHook(databricks_conn_id="databricks_sql").get_conn().cursor()
    lines = []
    for table in ("main.sales.account", "main.sales.opportunity"):
        cursor.execute(f"SELECT COUNT(*), MIN(id), MAX(id) FROM {table}")
        count, first, last = cursor.fetchone() or (0, None, None)
        lines.append(f"{table}: {count} rows (ids {first}..{last})")
    cursor.execute("SELECT id, name, updated_at FROM main.sales.account ORDER BY id LIMIT :n", {"n": 3})
    for row in cursor.fetchall():
        lines.append("  " + " | ".join(str(value) for value in row))
    return lines


def main() -> int:
    dags_folder = _example_dags()
    with tempfile.TemporaryDirectory(prefix="lakeflow-demo-") as home, LakeflowEmulator(update_seconds=3.0) as emu:
        # Salesforce connections are made once in the workspace UI (OAuth sign-in); the emulator does it for us.
        emu.create_connection_as_ui(
            "salesforce_conn", "SALESFORCE", {"instance_url": "https://example.my.salesforce.com"}
        )
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_DATABRICKS_DEFAULT": json.dumps(
                {"conn_type": "lakeflow", "host": emu.url, "password": "emulator-token"}
            ),
            "LAKEFLOW_EXAMPLE_POLL_SECONDS": "0.5",
        }
        log = Path(home) / "demo.log"
        print(f"Lakeflow emulator at {emu.url}; Airflow home {home}")
        print("Migrating the Airflow metadata DB ...", flush=True)
        if _airflow(["db", "migrate"], env, log) != 0:
            print(log.read_text()[-5000:])
            return 1
        for dag_id in DAGS:
            print(f"Running `airflow dags test {dag_id}` ...", flush=True)
            code = _airflow(["dags", "test", dag_id], env, log)
            if code != 0 or "state=failed" in log.read_text().split(f"dags test {dag_id}")[-1]:
                print(log.read_text()[-8000:])
                print(f"DEMO FAILED: {dag_id}")
                return 1
        print("\nFrom the task logs:")
        for line in log.read_text().splitlines():
            if any(
                marker in line for marker in ("Lakeflow update:", "of pipeline", "Created pipeline", "is COMPLETED")
            ):
                print("  " + line.strip()[:200])
        print("\nWhat the workspace saw:")
        print("\n".join(_summary(emu)))
        print("\nWhat landed, read back through LakeflowSqlHook (SQL Statement Execution API):")
        for line in _landed_rows(emu):
            print("  " + line)
        print(f"\nThe workspace API received {len(emu.requests())} requests in all.")
        print("DEMO OK: both DAGs succeeded against the emulator.")
        # Keep the full Airflow output where a curious user can read it.
        kept = Path(tempfile.gettempdir()) / "lakeflow-demo.log"
        kept.write_text(log.read_text())
        print(f"Full Airflow output: {kept}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
