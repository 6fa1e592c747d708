"""Event-driven scheduling: what watchers cost the workspace, and how soon a landing runs its DAG.

    python benchmarks/event_watchers.py [--seconds 30] [--poll 2] [--latency-poll 5] [--landings 8] [--skip-latency]

Both parts run against the emulator in a separate process (``python -m airflow_provider_lakeflow.testing.emulator``).

1. Requests per minute for 1, 10 and 100 ``LakeflowTableLandedTrigger`` watchers on one pipeline (one table each),
   over ``--seconds`` with polls every ``--poll`` seconds and one update running for part of the window (so the
   event-log reads of a running update count too), in two ways, in this process:

   - shared: Airflow 3.3's own ``SharedStreamManager`` (ack mode), driven as the triggerer drives it: every watcher
     subscribes with its ``shared_stream_key`` and consumes its ``filter_shared_stream``;
   - unshared: every watcher's own ``run()`` (what a trigger without a shared stream costs, as on Airflow < 3.3).

   Requests are counted from the emulator's request log (this pipeline's paths only).
   Goal: 100 shared watchers cost at most 1.1 times the requests of one.

2. Landing-to-DAG-run latency through a real Airflow 3.3 (api-server, dag-processor, scheduler, triggerer; SQLite,
   LocalExecutor): a DAG scheduled on ``lakeflow_table_asset`` with ``--latency-poll`` seconds between polls, and
   ``--landings`` updates started by the emulator's schedule (a Databricks Jobs schedule), the table landing 1 s into
   each. Latency = the DAG run's ``queued_at`` minus the timestamp of the table's ``flow_progress`` COMPLETED event.
   Goal: median and p95 at most the poll interval plus 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, str(ROOT / "tests"))

from _harness import emulator, machine, table, versions  # noqa: E402

QUICK = {"QUEUED": 0.2, "WAITING_FOR_RESOURCES": 0.2, "INITIALIZING": 0.2, "SETTING_UP_TABLES": 0.2}
COUNTS = (1, 10, 100)
GOAL_SHARED = 1.1


def _spec(name: str, schema: str, n: int) -> dict:
    objects = [
        {
            "table": {
                "source_schema": "s",
                "source_table": f"t{i}",
                "destination_catalog": "main",
                "destination_schema": schema,
            }
        }
        for i in range(n)
    ]
    return {"name": name, "ingestion_definition": {"connection_name": "bench_conn", "objects": objects}}


def requests_per_minute(url: str, seconds: float, poll: float) -> dict[tuple[int, str], float]:
    from airflow.triggers.shared_stream import SharedStreamManager

    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient
    from airflow_provider_lakeflow.triggers import LakeflowTableLandedTrigger
    from airflow_provider_lakeflow.workspace import operations

    client = EmulatorClient(url)
    hook = LakeflowHook()
    results: dict[tuple[int, str], float] = {}
    for n in COUNTS:
        for mode in ("shared", "unshared"):
            name = f"bench-{mode}-{n}"
            pipeline_id = hook.run(operations.create_pipeline(_spec(name, f"b{n}{mode[0]}", max(COUNTS))))
            client.script_pipeline(name, phase_seconds={**QUICK, "RUNNING": seconds / 3})
            triggers = [
                LakeflowTableLandedTrigger(
                    table=f"main.b{n}{mode[0]}.t{i}", pipeline_id=pipeline_id, poll_interval=poll
                )
                for i in range(n)
            ]

            async def run(triggers=triggers, mode=mode, pipeline_id=pipeline_id) -> float:
                manager = SharedStreamManager()
                fired: list[object] = []

                async def consume(i: int, trigger: LakeflowTableLandedTrigger) -> None:
                    key = trigger.shared_stream_key()
                    if mode == "shared":
                        stream = trigger.filter_shared_stream(manager.subscribe(trigger_id=i, trigger=trigger, key=key))
                    else:
                        stream = trigger.run()
                    async for event in stream:
                        fired.append(event)
                        if mode == "shared":
                            seq = manager.bind_pending_event(trigger_id=i, key=key)
                            manager.confirm_persisted([] if seq is None else [seq])

                tasks = [asyncio.ensure_future(consume(i, t)) for i, t in enumerate(triggers)]
                await asyncio.sleep(poll * 1.5)  # start-up (imports, the first poll) is not what is measured
                client.clear_requests()
                started = time.monotonic()
                await asyncio.sleep(poll)
                client.start_update_externally(pipeline_id)
                await asyncio.sleep(seconds - poll)
                elapsed = time.monotonic() - started
                count = len(client.requests(rf"/pipelines/{pipeline_id}(/|$)"))
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await manager.stop_all()
                if len(fired) != len(triggers):
                    raise RuntimeError(f"{mode} {len(triggers)}: {len(fired)} watchers fired, expected one each")
                return count / (elapsed / 60)

            results[(n, mode)] = asyncio.run(run())
            print(f"  {n:>3} watchers, {mode:<8}: {results[(n, mode)]:7.1f} requests/min", flush=True)
    return results


DAG_FILE = """
import os
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_lakeflow.assets import lakeflow_table_asset

ASSET = lakeflow_table_asset("main.lat.t0", workspace_host=os.environ["LAKEFLOW_WORKSPACE_HOST"],
                             pipeline_name="bench-latency", poll_interval=float(os.environ["LATENCY_POLL"]))
with DAG(dag_id="bench_latency", schedule=[ASSET], start_date=pendulum.datetime(2026, 1, 1), catchup=False,
         max_active_runs=50):
    @task
    def landed():
        pass
    landed()
"""


def latency(url: str, poll: float, landings: int) -> list[float]:
    from test_real_triggerer import Airflow, _free_port, _port_open, _query, _wait_for

    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient
    from airflow_provider_lakeflow.workspace import operations

    client = EmulatorClient(url)
    pipeline_id = LakeflowHook().run(operations.create_pipeline(_spec("bench-latency", "lat", 2)))
    client.script_pipeline("bench-latency", phase_seconds={**QUICK, "RUNNING": 6.0}, table_seconds={"t0": 1.0})
    home = Path(tempfile.mkdtemp(prefix="lakeflow-bench-latency-"))
    (home / "dags").mkdir()
    (home / "dags" / "bench_latency.py").write_text(DAG_FILE)
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "LAKEFLOW_WORKSPACE_HOST": url,
        "LATENCY_POLL": str(poll),
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    airflow = Airflow(home, env)
    airflow.cli("db", "migrate")
    db = home / "airflow.db"
    try:
        airflow.start("api-server", "api-server", "--port", str(port))
        _wait_for("the api-server", lambda: _port_open(port), 90, airflow)
        for name in ("dag-processor", "scheduler", "triggerer"):
            airflow.start(name, name)
        _wait_for("the watcher", lambda: client.requests(rf"/pipelines/{pipeline_id}/updates$", "GET"), 150, airflow)
        every = max(15.0, poll + 10)  # far enough apart that two landings never share one DAG run
        client.schedule_updates("bench-latency", every, count=landings, first_in_seconds=1.0)
        _wait_for(
            "every landing's run",
            lambda: len(_query(db, "SELECT id FROM dag_run WHERE dag_id = 'bench_latency'")) >= landings,
            landings * every + 120,
            airflow,
        )
        rows = _query(
            db,
            "SELECT dr.queued_at, ae.extra FROM dag_run dr JOIN dagrun_asset_event dae ON dae.dag_run_id = dr.id "
            "JOIN asset_event ae ON ae.id = dae.event_id WHERE dr.dag_id = 'bench_latency'",
        )
    finally:
        airflow.stop()
        shutil.rmtree(home, ignore_errors=True)
    landed_at = {}
    for event in client.events(pipeline_id):
        progress = (event.get("details") or {}).get("flow_progress") or {}
        if progress.get("status") == "COMPLETED" and event["origin"].get("dataset_name") == "main.lat.t0":
            landed_at[event["origin"]["update_id"]] = _epoch(event["timestamp"])
    out = []
    for queued_at, extra in rows:
        update_id = (json.loads(extra).get("payload") or {}).get("update_id")
        out.append(_epoch(queued_at) - landed_at[update_id])
    return out


def _epoch(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        from datetime import timezone

        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window per variant")
    parser.add_argument("--poll", type=float, default=2.0, help="poll interval of the request-count variants")
    parser.add_argument("--latency-poll", type=float, default=5.0, help="poll interval of the latency run")
    parser.add_argument("--landings", type=int, default=8)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    print(f"Machine: {machine()}\nVersions: {versions()}\n")
    ok = True
    with tempfile.TemporaryDirectory() as tmp, emulator(3.0, os.path.join(tmp, "emulator.log")) as (url, _):
        os.environ["AIRFLOW_CONN_DATABRICKS_DEFAULT"] = json.dumps(
            {"conn_type": "lakeflow", "host": url, "password": "emulator-token"}
        )
        print(f"1. Workspace requests per minute, table watchers on one pipeline (poll {args.poll:g} s):")
        rpm = requests_per_minute(url, args.seconds, args.poll)
        rows = [
            [
                n,
                f"{rpm[(n, 'shared')]:.1f}",
                f"{rpm[(n, 'unshared')]:.1f}",
                f"{rpm[(n, 'unshared')] / rpm[(n, 'shared')]:.1f}x",
                f"{rpm[(n, 'shared')] / rpm[(1, 'shared')]:.2f}",
            ]
            for n in COUNTS
        ]
        print(table(rows, ["watchers", "shared req/min", "unshared req/min", "unshared/shared", "shared vs 1 watcher"]))
        ratio = rpm[(100, "shared")] / rpm[(1, "shared")]
        met = ratio <= GOAL_SHARED
        ok &= met
        print(f"100 shared watchers / 1 watcher: {ratio:.2f} (goal <= {GOAL_SHARED}): {'met' if met else 'MISSED'}\n")
        if not args.skip_latency:
            print(
                "2. Landing-to-DAG-run latency through a real Airflow "
                f"(poll {args.latency_poll:g} s, {args.landings} landings):"
            )
            values = sorted(latency(url, args.latency_poll, args.landings))
            median = statistics.median(values)
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            goal = args.latency_poll + 5
            print(f"   each: {', '.join(f'{v:.1f}' for v in values)} s")
            print(
                f"   median {median:.1f} s ({median / goal:.2f} of the goal), p95 {p95:.1f} s ({p95 / goal:.2f} of the "
                f"goal); goal <= poll + 5 s = {goal:g} s: {'met' if p95 <= goal else 'MISSED'}"
            )
            ok &= p95 <= goal
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
