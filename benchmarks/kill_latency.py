"""A user's kill of a deferred task on a real Airflow 3 stack: kill-to-stop latency, and what the first state read of a
triggerer costs it, ours side by side with a trigger that is not from this provider.

    python benchmarks/kill_latency.py [--runs 3] [--threshold 15] [--py-spy PATH/TO/py-spy]

Each run starts a fresh stack (SQLite, LocalExecutor): api-server, scheduler, dag-processor (those three at nice 10)
and two triggerers, against the emulator in its own process. It defers six ``LakeflowRunPipelineOperator`` waits
(``tests/triggerer_dags/lf_triggerer_fanout.py``) and four waits of a bare trigger whose ``on_kill`` only reads the
task's state through the same Task SDK channel as ours (``benchmarks/kill_dags/bare_state_read.py``), then marks four
of them failed through the REST API, one after another, as a user would in the UI:

1. ours, on a triggerer that has not read any state yet ("cold");
2. bare, on a cold triggerer (the other one);
3. ours, on a triggerer that has read a state before ("warm");
4. bare, on a warm triggerer.

Measured per kill:

- kill to stop: from just before the ``PATCH .../taskInstances/wait`` call to the emulator receiving the ``POST
  .../stop`` (ours; the emulator stamps each request), or to the bare trigger getting its answer (bare);
- the read: from the trigger entering ``on_kill`` (Airflow's "invoking on_kill" line in the trigger's log) to the
  answer (bare: its own clock; ours: our "no longer deferred" line);
- the triggerer's heartbeat gap ("Heartbeat recovered after N seconds" in its log) and its asyncio watchdog's
  "async thread was blocked" warnings (the trigger runner's event loop);
- siblings: the other deferred waits whose triggerer changed while the kill was handled, and any stop request for
  a pipeline whose task was not killed (must be none).

Tasks retry twice (on a loaded machine a task's start can time out against the api-server); a task that still fails
is left out, and a run with fewer than two deferred waits of either kind is reported as incomplete.

With ``--py-spy``, each triggerer runs under ``py-spy record --subprocesses --idle --threads`` and the samples in
cadwyn's lazy set-up of the in-process execution API (``_cadwyn_initialize``) are counted per thread.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _harness import ApiClient, emulator, machine, table, versions
from test_real_triggerer import ROOT, Airflow, _free_port, _port_open, _query, _wait_for

from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient

OURS, BARE = "lf_triggerer_fanout", "bare_state_read"
N_OURS, N_BARE = 6, 4
PLAN = [(OURS, "cold"), (BARE, "cold"), (OURS, "warm"), (BARE, "warm")]
RECOVERED = re.compile(r"Heartbeat recovered after ([0-9.]+) seconds")
BLOCKED = "async thread was blocked"


def _holders(db: Path) -> dict[tuple[str, str], int | None]:
    rows = _query(
        db,
        "SELECT ti.dag_id, ti.run_id, t.triggerer_id FROM task_instance ti JOIN trigger t ON ti.trigger_id = t.id "
        "WHERE ti.state = 'deferred'",
    )
    return {(dag, run): job for dag, run, job in rows}


def _triggerer_jobs(db: Path) -> list[int]:
    return [row[0] for row in _query(db, "SELECT id FROM job WHERE job_type = 'TriggererJob' ORDER BY id")]


def _log_time(home: Path, run_id: str, text: str, after: float) -> float | None:
    """The timestamp of the first line containing ``text``, logged after ``after``, in a trigger log of ``run_id``."""
    for path in (home / "logs").rglob("*.log.trigger.*.log"):
        if f"run_id={run_id}" not in str(path):
            continue
        for line in path.read_text(errors="replace").splitlines():
            if text not in line:
                continue
            try:
                stamp = json.loads(line)["timestamp"]
            except (ValueError, KeyError):
                continue
            at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            if at >= after:
                return at
    return None


def one_run(index: int, threshold: int, py_spy: str | None, workdir: Path) -> list[dict[str, Any]]:
    home = workdir / f"run{index}" / "airflow"
    dags = home / "dags"
    dags.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "triggerer_dags" / "lf_triggerer_fanout.py", dags)
    shutil.copy(ROOT / "benchmarks" / "kill_dags" / "bare_state_read.py", dags)
    probe = workdir / f"run{index}" / "bare_probe.jsonl"
    probe.touch()
    results: list[dict[str, Any]] = []
    with emulator(update_seconds=1800) as (url, _):
        control = EmulatorClient(url)
        setup = ApiClient(url)
        names = [f"ours-{i}" for i in range(N_OURS)]
        pipelines = dict(zip(names, setup.create_pipelines(N_OURS, prefix="ours"), strict=True))
        setup.close()
        port = _free_port()
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
            # A task whose start times out on a loaded machine tries again (a user's mark failed is final).
            "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "2",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(threshold),
            "AIRFLOW_CONN_DATABRICKS_DEFAULT": json.dumps(
                {"conn_type": "lakeflow", "host": url, "password": "emulator-token"}
            ),
            "PYTHONPATH": os.pathsep.join(p for p in (str(dags), os.environ.get("PYTHONPATH", "")) if p),
        }
        env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        airflow = Airflow(home, env)
        airflow.cli("db", "migrate")
        db = home / "airflow.db"
        jobs: dict[int, str] = {}

        def start_triggerer(name: str) -> None:
            known = set(_triggerer_jobs(db))
            extra = {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port())}
            airflow.start(name, "triggerer", extra_env=extra)
            _wait_for(f"{name}'s job", lambda: set(_triggerer_jobs(db)) - known, 120, airflow)
            (job,) = set(_triggerer_jobs(db)) - known
            jobs[job] = name

        try:
            if py_spy:
                _wrap_with_py_spy(airflow, py_spy, workdir / f"run{index}")
            start_triggerer("t1")
            start_triggerer("t2")
            airflow.start("api-server", "api-server", "--port", str(port), nice=10)
            _wait_for("the api-server", lambda: _port_open(port), 120, airflow)
            airflow.start("dag-processor", "dag-processor", nice=10)
            airflow.start("scheduler", "scheduler", nice=10)
            _wait_for(
                "both DAGs to be parsed",
                lambda: len(_query(db, "SELECT DISTINCT dag_id FROM serialized_dag")) >= 2,
                180,
                airflow,
            )
            runs = [(OURS, name, {"pipeline_name": name}) for name in names]
            runs += [(BARE, f"bare-{i}", {"probe_path": str(probe)}) for i in range(N_BARE)]
            trigger = (
                "from airflow.api.common.trigger_dag import trigger_dag\n"
                "from airflow.utils.types import DagRunTriggeredByType\n"
                f"for dag_id, run_id, conf in {runs!r}:\n"
                "    trigger_dag(dag_id, run_id=run_id, conf=conf, triggered_by=DagRunTriggeredByType.CLI)\n"
            )
            done = subprocess.run([sys.executable, "-c", trigger], env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-3000:]

            def settled() -> bool:
                """Every task deferred and held by a triggerer, or failed for good (its start timed out on a loaded
                machine, after its retries)."""
                states = dict(_query(db, "SELECT dag_id || '/' || run_id, state FROM task_instance"))
                held = _holders(db)
                return len(states) == len(runs) and all(
                    state == "failed" or (state == "deferred" and held.get(tuple(key.split("/"))) is not None)
                    for key, state in states.items()
                )

            _wait_for("every wait to be deferred and held", settled, 600, airflow)
            everyone = set(_holders(db))
            for dag in (OURS, BARE):
                assert sum(1 for d, _ in everyone if d == dag) >= 2, f"fewer than two {dag} waits deferred"
            time.sleep(3)  # the holders' loops start the triggers they were given

            api = f"http://127.0.0.1:{port}"
            token = httpx.get(f"{api}/auth/token", timeout=30).json()["access_token"]
            warm: set[int] = set()
            killed: set[tuple[str, str]] = set()
            for dag, wanted in PLAN:
                held = _holders(db)
                candidates = sorted(
                    (run, job)
                    for (d, run), job in held.items()
                    if d == dag and job is not None and (job in warm) == (wanted == "warm")
                )
                if not candidates:
                    results.append({"run": index, "trigger": dag, "triggerer": wanted, "skipped": "no candidate"})
                    continue
                run_id, job = candidates[0]
                logs_before = {name: len(airflow.log(name)) for name in ("t1", "t2")}
                task_id = "run" if dag == OURS else "wait"
                kill_at = time.time()
                response = httpx.patch(
                    f"{api}/api/v2/dags/{dag}/dagRuns/{run_id}/taskInstances/{task_id}",
                    json={"new_state": "failed"},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=120,
                )
                assert response.status_code == 200, response.text
                killed.add((dag, run_id))
                answered: float | None = None
                read_started: float | None = None
                deadline = time.time() + 180
                while time.time() < deadline and answered is None:
                    time.sleep(0.5)
                    if dag == OURS:
                        stops = control.requests(path_regex=rf"/pipelines/{pipelines[run_id]}/stop$", method="POST")
                        answered = stops[0].time if stops else None
                    else:
                        for line in probe.read_text().splitlines():
                            record = json.loads(line)
                            # A triggerer that lost its waits also cancels (and reads for) its old copies.
                            if record["run_id"] == run_id and record["started"] >= kill_at:
                                answered, read_started = record["answered"], record["started"]
                warm.add(job)
                # Let a triggerer that stalled past the threshold lose its waits, recover and cancel its old copies.
                time.sleep(threshold + 10)
                _wait_for(
                    "every remaining wait to be held",
                    lambda: None not in _holders(db).values() and len(_holders(db)) == len(everyone) - len(killed),
                    180,
                    airflow,
                )
                after = _holders(db)
                moved = sorted(
                    run for key, run_job in held.items() if key in after and after[key] != run_job for run in [key[1]]
                )
                entered = read_started if dag == BARE else _log_time(home, run_id, "invoking on_kill", kill_at)
                read_done = answered if dag == BARE else _log_time(home, run_id, "no longer deferred", kill_at)
                new_log = {name: airflow.log(name)[logs_before[name] :] for name in ("t1", "t2")}
                results.append(
                    {
                        "run": index,
                        "trigger": "ours" if dag == OURS else "bare",
                        "triggerer": wanted,
                        "kill_to_answer": None if answered is None else answered - kill_at,
                        "read": None if entered is None or read_done is None else read_done - entered,
                        "heartbeat_gaps": [
                            f"{jobs[job_id]}:{float(m):.1f}"
                            for job_id, name in jobs.items()
                            for m in RECOVERED.findall(new_log[name])
                        ],
                        "loop_blocked": sum(log.count(BLOCKED) for log in new_log.values()),
                        "moved": len(moved),
                    }
                )
                print(json.dumps(results[-1]), flush=True)
            sibling_stops = [
                name
                for name in names
                if (OURS, name) in everyone
                and (OURS, name) not in killed
                and control.requests(path_regex=rf"/pipelines/{pipelines[name]}/stop$", method="POST")
            ]
            kept = sum(
                1
                for path in (home / "logs").rglob("*.log.trigger.*.log")
                if "is still deferred, so this trigger was moved" in path.read_text(errors="replace")
            )
            results.append({"run": index, "sibling_stops": sibling_stops, "guard_kept_logs": kept})
            print(json.dumps(results[-1]), flush=True)
        finally:
            if py_spy:  # py-spy writes its samples when interrupted
                for name in ("t1", "t2"):
                    if name in airflow.procs:
                        airflow.procs[name].send_signal(signal.SIGINT)
                for name in ("t1", "t2"):
                    with contextlib.suppress(subprocess.TimeoutExpired, KeyError):
                        airflow.procs[name].wait(timeout=60)
            airflow.stop()
    return results


def _wrap_with_py_spy(airflow: Airflow, py_spy: str, out_dir: Path) -> None:
    """Make ``airflow.start`` run triggerers under ``py-spy record`` (raw, all threads and subprocesses, idle too)."""
    original = airflow.start

    def start(name: str, *args: str, nice: int = 0, extra_env: dict[str, str] | None = None) -> None:
        if args[:1] != ("triggerer",):
            original(name, *args, nice=nice, extra_env=extra_env)
            return
        log = airflow.home / f"{name}.log"
        airflow.logs[name] = log
        airflow.procs[name] = subprocess.Popen(
            [
                py_spy,
                "record",
                "--subprocesses",
                "--idle",
                "--threads",
                "--format",
                "raw",
                "--rate",
                "50",
                "-o",
                str(out_dir / f"{name}.pyspy.txt"),
                "--",
                sys.executable,
                "-m",
                "airflow",
                *args,
            ],
            env={**airflow.env, **(extra_env or {})},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    airflow.start = start  # type: ignore[method-assign]


def cadwyn_seconds(path: Path, rate: int = 50) -> dict[str, float]:
    """Seconds sampled inside cadwyn's lazy set-up, per thread, and seconds of the supervisor's main thread waiting
    on the in-process API's answer to a state read."""
    out: dict[str, float] = {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if "_cadwyn_initialize" in stack:
            thread = stack.split(";", 1)[0]
            out[f"cadwyn in {thread}"] = out.get(f"cadwyn in {thread}", 0) + int(count) / rate
        if "handle_get_task_states" in stack:
            out["supervisor in handle_get_task_states"] = (
                out.get("supervisor in handle_get_task_states", 0) + int(count) / rate
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threshold", type=int, default=15, help="[triggerer] triggerer_health_check_threshold")
    parser.add_argument("--py-spy", default=None, help="path of a py-spy binary: profile the triggerers")
    parser.add_argument("--keep", action="store_true", help="keep the Airflow homes (logs) and print where")
    args = parser.parse_args()
    print(machine())
    print(versions())
    workdir = Path(tempfile.mkdtemp(prefix="kill-latency-"))
    results: list[dict[str, Any]] = []
    for index in range(args.runs):
        try:
            results += one_run(index, args.threshold, args.py_spy, workdir)
        except AssertionError as exc:  # a stack that did not come up (a loaded machine): report it, run the next
            print(f"run {index} did not complete: {str(exc)[:300]}", flush=True)
        if args.py_spy:
            for name in ("t1", "t2"):
                path = workdir / f"run{index}" / f"{name}.pyspy.txt"
                if path.exists():
                    print(name, json.dumps({k: round(v, 1) for k, v in cadwyn_seconds(path).items()}))
    kills = [r for r in results if "trigger" in r and "skipped" not in r]
    rows = [
        [
            r["run"],
            r["trigger"],
            r["triggerer"],
            "-" if r["kill_to_answer"] is None else f"{r['kill_to_answer']:.1f}",
            "-" if r["read"] is None else f"{r['read']:.1f}",
            ", ".join(r["heartbeat_gaps"]) or "-",
            r["loop_blocked"],
            r["moved"],
        ]
        for r in kills
    ]
    print(
        table(
            rows,
            [
                "run",
                "trigger",
                "triggerer",
                "kill->stop/answer s",
                "read s",
                "heartbeat gaps s",
                "loop blocked",
                "siblings moved",
            ],
        )
    )
    for r in results:
        if "sibling_stops" in r:
            print(
                f"run {r['run']}: stops of siblings' pipelines {r['sibling_stops']}, guard kept {r['guard_kept_logs']}"
            )
    if args.keep:
        print(f"Airflow homes kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
