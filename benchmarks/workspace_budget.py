"""The per-workspace request budget: a rate-limited workspace, and a triggerer restart storm.

    python benchmarks/workspace_budget.py [--waits 2000] [--limit 50] [--storm 5000] [--storm-seconds 60]

Two scenarios, each variant in a fresh subprocess (warmed up: imports, connection, credentials) against a fresh
emulator in its own process, side by side in one run:

1. **Rate-limited workspace.** The emulator answers beyond ``--limit`` requests per second (burst: one second's
   worth) with 429 and Retry-After. ``--waits`` waits of ours (``LakeflowPipelineUpdateTrigger``, default budget;
   then with a budget of 100/s, twice the limit, which the 429s must shrink), then as many of the official
   provider's ``DatabricksExecutionTrigger`` (``jobs/runs/get``), all polling every ``--poll`` seconds for
   updates/runs of ``--update-seconds``: a demand of about twice the limit. Reported: how the waits ended, requests,
   the 429s as a share of requests, the peak request rates the emulator saw.
2. **Restart storm.** ``--storm`` waits of ours created at once, as a triggerer re-creates them after a restart or a
   failover, on updates that outlast the run; cancelled after ``--storm-seconds``. Reported: the request rate the
   emulator saw over that window against the budget; the floor (bare aiohttp, every first poll at once, no budget)
   for contrast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import ApiClient, emulator, machine, table, versions, wait_for_file
from triggerer_scale import _cpu, _floor, _warm_up

TARGET_THROTTLED_SHARE = 0.01


# ============================================================================================ worker (one variant)
async def _run(variant: str, trigger_cls: Any, work: dict, url: str, poll: float, seconds: float | None) -> list[str]:
    if variant == "floor":
        task = asyncio.ensure_future(_floor(work["targets"], url, poll, lockstep=True))  # every first poll at once
        done, _ = await asyncio.wait([task], timeout=seconds)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return ["still waiting"] * len(work["targets"])
        return list(task.result())
    if variant == "ours":
        triggers = [trigger_cls(p, u, poll_interval=poll) for p, u in work["targets"]]
    else:
        triggers = [trigger_cls(r, "dbx_official", polling_period_seconds=poll) for r in work["runs"]]
    tasks = []
    for trigger in triggers:  # one per loop turn, as the triggerer's create_triggers does
        tasks.append(asyncio.ensure_future(anext(trigger.run())))
        await asyncio.sleep(0)
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    statuses = ["still waiting"] * len(pending)
    for task in done:
        if task.exception() is not None:
            statuses.append(f"raised {type(task.exception()).__name__}")
            continue
        payload = task.result().payload
        if variant == "ours":
            statuses.append(payload["status"])
        else:
            statuses.append("success" if '"SUCCESS"' in str(payload.get("run_state")) else str(payload)[:60])
    return statuses


def worker(args: argparse.Namespace) -> None:
    trigger_cls = _warm_up(args.worker, args.url)
    open(os.path.join(args.dir, "ready"), "w").close()
    work_path = os.path.join(args.dir, "work.json")
    while not os.path.exists(work_path):
        time.sleep(0.01)
    with open(work_path) as f:
        work = json.load(f)
    cpu0, wall0 = _cpu(), time.monotonic()
    statuses = asyncio.run(_run(args.worker, trigger_cls, work, args.url, args.poll, args.seconds))
    result = {
        "cpu_seconds": _cpu() - cpu0,
        "wall_seconds": time.monotonic() - wall0,
        "statuses": {s: statuses.count(s) for s in set(statuses)},
    }
    with open(os.path.join(args.dir, "result.json"), "w") as f:
        json.dump(result, f)


# ============================================================================================ parent
def run_variant(name: str, args: argparse.Namespace, n: int, *, limit: float | None, seconds: float | None) -> dict:
    """``name`` is a variant, or ``ours@R``: ours with the connection extra ``max_requests_per_second`` R."""
    from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient

    variant, _, budget = name.partition("@")
    extras = {"extra": {"max_requests_per_second": float(budget)}} if budget else {}

    extra = ("--rate-limit", str(limit)) if limit else ()
    with (
        tempfile.TemporaryDirectory(prefix=f"budget-{variant}-") as tmp,
        emulator(args.update_seconds, extra_args=extra) as (url, _),
    ):
        client = EmulatorClient(url)
        client.set_rate_limit(None)  # set up at full speed; the limit is put back just before the waits start
        api = ApiClient(url)
        pipelines = api.create_pipelines(n) if variant != "official" else []
        parts = urlsplit(url)
        env = {
            **os.environ,
            "AIRFLOW_CONN_DATABRICKS_DEFAULT": json.dumps(
                {"conn_type": "lakeflow", "host": url, "password": "emulator-token", **extras}
            ),
            "AIRFLOW_CONN_DBX_OFFICIAL": json.dumps(
                {
                    "conn_type": "databricks",
                    "host": parts.hostname,
                    "port": parts.port,
                    "schema": "http",
                    "password": "emulator-token",
                }
            ),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--url", url, "--dir", tmp]
        cmd += ["--poll", str(args.poll)] + (["--seconds", str(seconds)] if seconds else [])
        log_path = os.path.join(tempfile.gettempdir(), f"workspace_budget-{name}-{n}.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                wait_for_file(os.path.join(tmp, "ready"), proc, timeout=120)
                if variant == "official":
                    work: dict[str, Any] = {"runs": [client.create_job_run(args.update_seconds) for _ in range(n)]}
                else:
                    work = {"targets": [[p, api.start_update(p)] for p in pipelines]}
                api.close()
                client.clear_requests()
                client.set_rate_limit(limit)  # also restarts the request-rate counts
                with open(os.path.join(tmp, "work.json.tmp"), "w") as f:
                    json.dump(work, f)
                os.replace(os.path.join(tmp, "work.json.tmp"), os.path.join(tmp, "work.json"))
                proc.wait(timeout=(seconds or args.update_seconds * 6) + 180)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if proc.returncode != 0 or not os.path.exists(os.path.join(tmp, "result.json")):
            raise RuntimeError(f"variant {variant} failed (exit {proc.returncode}); see {log_path}")
        with open(os.path.join(tmp, "result.json")) as f:
            result = json.load(f)
        result.update(client.request_rate())
        result["log"] = log_path
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waits", type=int, default=2000)
    parser.add_argument("--limit", type=float, default=50.0, help="the emulator's rate limit (requests/s)")
    parser.add_argument("--poll", type=float, default=20.0)
    parser.add_argument("--update-seconds", type=float, default=30.0)
    parser.add_argument("--storm", type=int, default=5000)
    parser.add_argument("--storm-seconds", type=float, default=60.0)
    parser.add_argument("--scenarios", default="limited,storm")
    parser.add_argument(
        "--variants",
        default="ours,ours@100,official",
        help="scenario 1's variants; ours@R: ours with max_requests_per_second R (above the limit: the 429s shrink it)",
    )
    parser.add_argument("--worker", choices=("ours", "official", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0

    from airflow_provider_lakeflow._engine.budget import DEFAULT_MAX_REQUESTS_PER_SECOND as BUDGET

    print(f"workspace_budget: default budget {BUDGET:g} requests/s per workspace and process")
    print(f"machine: {machine()}")
    print(f"versions: {versions()}\n")
    header = ["variant", "waits", "wall s", "CPU s", "requests", "429s", "429 share", "peak/s (1 s)", "peak/s (5 s)"]
    header += ["mean/s", "events"]
    verdicts = []

    def row(name: str, n: int, r: dict) -> list[Any]:
        share = r["throttled"] / max(1, r["requests"])
        return [
            name,
            n,
            f"{r['wall_seconds']:.0f}",
            f"{r['cpu_seconds']:.1f}",
            r["requests"],
            r["throttled"],
            f"{100 * share:.2f}%",
            r["peak_per_second"],
            f"{r['peak_per_second_over_5s']:.1f}",
            f"{r['mean_per_second']:.1f}",
            ", ".join(f"{k}={v}" for k, v in sorted(r["statuses"].items())),
        ]

    if "limited" in args.scenarios:
        print(
            f"1. rate-limited workspace: emulator limit {args.limit:g}/s, {args.waits} waits, poll {args.poll:g}s, "
            f"updates {args.update_seconds:g}s (demand ~{args.waits / args.poll:.0f} polls/s)"
        )
        rows = []
        for variant in args.variants.split(","):
            print(f"  running {variant} ...", flush=True)
            r = run_variant(variant, args, args.waits, limit=args.limit, seconds=None)
            rows.append(row(variant, args.waits, r))
            if variant.startswith("ours"):
                share = r["throttled"] / max(1, r["requests"])
                ok = r["statuses"] == {"success": args.waits} and share < TARGET_THROTTLED_SHARE
                verdicts.append(ok)
                print(
                    f"  {variant}: every wait succeeded: {r['statuses'] == {'success': args.waits}}; 429s "
                    f"{100 * share:.2f}% of requests (target < {100 * TARGET_THROTTLED_SHARE:.0f}%): "
                    f"{'MET' if ok else 'MISSED'}",
                    flush=True,
                )
        print(table(rows, header) + "\n")

    if "storm" in args.scenarios:
        print(
            f"2. restart storm: {args.storm} waits re-created at once, poll {args.poll:g}s, measured for "
            f"{args.storm_seconds:g}s (demand ~{args.storm / args.poll:.0f} polls/s, budget {BUDGET:g}/s)"
        )
        rows = []
        for variant, seconds in (("ours", args.storm_seconds), ("floor", min(10.0, args.storm_seconds))):
            print(f"  running {variant} ...", flush=True)
            saved, args.update_seconds = args.update_seconds, 3600.0
            try:
                r = run_variant(variant, args, args.storm, limit=None, seconds=seconds)
            finally:
                args.update_seconds = saved
            rows.append(row(variant, args.storm, r))
            if variant == "ours":
                ok = r["peak_per_second_over_5s"] <= BUDGET * 1.05 and r["mean_per_second"] <= BUDGET * 1.02
                verdicts.append(ok)
                print(
                    f"  ours: peak {r['peak_per_second']}/s in any 1 s, {r['peak_per_second_over_5s']:.1f}/s over any "
                    f"5 s, mean {r['mean_per_second']:.1f}/s (budget {BUDGET:g}/s): {'MET' if ok else 'MISSED'}",
                    flush=True,
                )
        print(table(rows, header))
        print("(floor: bare aiohttp, no budget and no spreading: every wait polls at once, measured for 10 s)\n")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
