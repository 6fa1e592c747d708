"""How many API requests one LakeflowRunPipelineOperator execution costs, read from the emulator's request log.

    python benchmarks/api_economy.py [--update-seconds 3] [--poll 0.5]

Scenarios (each on a fresh pipeline, the emulator in a separate process, a PAT connection):

- sync by id / sync by name: ``deferrable=False``; ``execute`` starts the update and polls in the worker.
- deferrable by id / by name: ``execute`` (start, one check, defer) -> the trigger's first event ->
  ``execute_complete``.

Every request is put in one phase by when it happened: *start* (before the first poll of the update), *wait*
(from the first poll to the last), *finish* (after the last poll). Requests are classified as look-up (list by name,
get_pipeline), start_update, poll (get_update), events, auth (``/.well-known``, OAuth) or other. Checks: each poll is
one request (get_update); the only other requests while waiting are the per-table progress reads of the event log,
at most one per ``progress_interval`` (operator default 60 s, the first when RUNNING is first seen); a name is looked
up at most once and ``get_pipeline`` read at most once per execution (no look-up repeated per poll); the wait ends
with one request for the event log (table metrics).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import ApiClient, emulator, machine, table, versions


class FakeTI:
    dag_id, task_id, run_id, map_index, try_number = "bench", "run", "bench_run", -1, 1
    stats_tags: dict[str, str] = {}

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def classify(method: str, path: str) -> str:
    if path.startswith("/.well-known") or path.startswith("/oidc"):
        return "auth"
    if method == "GET" and re.fullmatch(r"/api/2\.0/pipelines/[^/]+/updates/[^/]+", path):
        return "poll"
    if method == "POST" and path.endswith("/updates"):
        return "start_update"
    if method == "GET" and (path == "/api/2.0/pipelines" or re.fullmatch(r"/api/2\.0/pipelines/[^/]+", path)):
        return "look-up"
    if path.endswith("/events"):
        return "events"
    return "other"


def run_scenario(
    client: Any, api: ApiClient, name: str, *, deferrable: bool, by_name: bool, poll: float, progress_interval: float
) -> dict:
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_lakeflow.operators import LakeflowRunPipelineOperator

    pipeline_name = f"econ-{name.replace(' ', '-')}"
    pipeline_id = api.call(
        "POST",
        "/api/2.0/pipelines",
        {
            "name": pipeline_name,
            "ingestion_definition": {
                "connection_name": "bench_conn",
                "objects": [
                    {
                        "table": {
                            "source_schema": "dbo",
                            "source_table": "orders",
                            "destination_catalog": "main",
                            "destination_schema": "bronze",
                        }
                    }
                ],
            },
        },
    )["pipeline_id"]
    client.clear_requests()
    ref = {"pipeline_name": pipeline_name} if by_name else {"pipeline_id": pipeline_id}
    op = LakeflowRunPipelineOperator(
        task_id="run", deferrable=deferrable, poll_interval=poll, progress_interval=progress_interval, **ref
    )
    context: dict[str, Any] = {"ti": FakeTI()}
    deferred = False
    try:
        op.execute(context)
    except TaskDeferred as exc:
        deferred = True
        event = asyncio.run(anext(exc.trigger.run())).payload
        getattr(op, exc.method_name)(context, event)
    log = client.requests()
    kinds = [classify(r.method, r.path) for r in log]
    polls = [i for i, k in enumerate(kinds) if k == "poll"]
    first, last = (polls[0], polls[-1]) if polls else (len(kinds), len(kinds) - 1)
    during = kinds[first : last + 1]
    wait_seconds = log[last].time - log[first].time if polls else 0.0
    return {
        "scenario": name,
        "deferred": deferred,
        "total": len(kinds),
        "start": len(kinds[:first]),
        "polls": len(polls),
        "non_poll_while_waiting": sum(1 for k in during if k != "poll"),
        "progress_reads": sum(1 for k in during if k == "events"),
        "progress_allowed": 1 + int(wait_seconds // progress_interval),
        "finish": len(kinds[last + 1 :]),
        "look-ups": kinds.count("look-up"),
        "name look-ups": sum(1 for r in log if r.method == "GET" and r.path == "/api/2.0/pipelines"),
        "get_pipeline": sum(
            1 for r, k in zip(log, kinds, strict=True) if k == "look-up" and r.path != "/api/2.0/pipelines"
        ),
        "start_update": kinds.count("start_update"),
        "events": kinds.count("events"),
        "auth": kinds.count("auth"),
        "other": kinds.count("other"),
        "sequence": " ".join(_short(k) for k in kinds),
        "xcom_state": context["ti"].xcoms.get("state"),
    }


def _short(kind: str) -> str:
    return {"poll": "P", "look-up": "L", "start_update": "S", "events": "E", "auth": "A"}.get(kind, "?")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--update-seconds", type=float, default=3.0)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--progress-interval", type=float, default=60.0, help="the operator's default is 60 s")
    args = parser.parse_args()
    print(
        f"api_economy: one LakeflowRunPipelineOperator execution per row; updates last {args.update_seconds}s, "
        f"poll_interval {args.poll}s, progress_interval {args.progress_interval}s"
    )
    print(f"machine: {machine()}")
    print(f"versions: {versions()}\n")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient

    results = []
    with emulator(args.update_seconds) as (url, _proc):
        os.environ["AIRFLOW_CONN_DATABRICKS_DEFAULT"] = json.dumps(
            {"conn_type": "lakeflow", "host": url, "password": "emulator-token"}
        )
        client, api = EmulatorClient(url), ApiClient(url)
        for name, deferrable, by_name in [
            ("sync by id", False, False),
            ("sync by name", False, True),
            ("deferrable by id", True, False),
            ("deferrable by name", True, True),
        ]:
            t0 = time.monotonic()
            results.append(
                run_scenario(
                    client,
                    api,
                    name,
                    deferrable=deferrable,
                    by_name=by_name,
                    poll=args.poll,
                    progress_interval=args.progress_interval,
                )
            )
            results[-1]["seconds"] = time.monotonic() - t0
        api.close()

    cols = [
        "scenario",
        "total",
        "start",
        "polls",
        "progress reads while waiting",
        "other while waiting",
        "finish",
        "name look-ups",
        "get_pipeline",
        "start_update",
        "events",
        "auth",
    ]
    rows = [
        [
            r["scenario"],
            r["total"],
            r["start"],
            r["polls"],
            f"{r['progress_reads']} (max {r['progress_allowed']})",
            r["non_poll_while_waiting"] - r["progress_reads"],
            r["finish"],
            r["name look-ups"],
            r["get_pipeline"],
            r["start_update"],
            r["events"],
            r["auth"],
        ]
        for r in results
    ]
    print(table(rows, cols))
    print("\nsequences (L look-up, S start_update, P poll, E events, A auth probe):")
    for r in results:
        print(f"  {r['scenario']:<20} {r['sequence']}")
    problems = []
    for r in results:
        if r["xcom_state"] != "COMPLETED":
            problems.append(f"{r['scenario']}: the update did not complete ({r['xcom_state']})")
        if r["non_poll_while_waiting"] != r["progress_reads"]:
            problems.append(
                f"{r['scenario']}: {r['non_poll_while_waiting'] - r['progress_reads']} requests other "
                "than polls and progress reads while waiting"
            )
        if r["progress_reads"] > r["progress_allowed"]:
            problems.append(f"{r['scenario']}: {r['progress_reads']} progress reads, more than one per interval")
        if r["name look-ups"] > 1 or r["get_pipeline"] > 1:
            problems.append(
                f"{r['scenario']}: repeated look-ups ({r['name look-ups']} by name, {r['get_pipeline']} get_pipeline)"
            )
        if r["start_update"] != 1:
            problems.append(f"{r['scenario']}: {r['start_update']} start_update requests")
        if r["finish"] > 1:
            problems.append(f"{r['scenario']}: {r['finish']} requests to finish")
    print()
    print(
        "\n".join(problems)
        if problems
        else "all checks passed: 1 request per poll (plus at most one progress read "
        "per progress_interval), no repeated look-ups, one start_update, one event-log read to finish"
    )
    polls_per_progress = args.progress_interval / 30.0
    print(
        f"note: with the operator's defaults (poll_interval 30 s, progress_interval {args.progress_interval:.0f} s) "
        f"a RUNNING update costs {1 + 1 / polls_per_progress:.2f} requests per poll; progress_interval=None "
        "makes it exactly 1"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
