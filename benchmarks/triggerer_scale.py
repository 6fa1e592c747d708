"""N deferred waits in one event loop, as on a triggerer: our trigger vs the official Databricks one vs a floor.

    python benchmarks/triggerer_scale.py [--triggers 1000] [--poll 1] [--update-seconds 10] [--budget R] [--profile]

    # issue 10: 10,000 waits, the request budget (max_requests_per_second) above the demand (500 polls/s)
    python benchmarks/triggerer_scale.py --triggers 10000 --poll 20 --update-seconds 40 --budget 1000 \
        --variants ours,floor

The issue's target numbers were measured with ``--triggers 500``; the default is 1000.

Each variant runs in a fresh subprocess (its own interpreter, event loop and heap) against a fresh emulator, which
runs in yet another process (``python -m airflow_provider_lakeflow.testing.emulator``):

- ``ours``: N ``LakeflowPipelineUpdateTrigger``, each ``await anext(trigger.run())`` (the first event), connection
  of type ``lakeflow`` with a PAT.
- ``official``: N ``airflow.providers.databricks.triggers.databricks.DatabricksExecutionTrigger`` polling job runs
  (``GET /api/2.2/jobs/runs/get``) that last as long as our updates; connection of type ``databricks`` with a PAT.
  The provider's user-agent lookup (``ProvidersManager``) is warmed up before measuring, as on a running triggerer.
- ``floor``: N coroutines doing bare aiohttp keep-alive GETs of ``get_update`` on ONE shared session (same pool
  size as ours), ``json.loads`` of the body, until the update is terminal, each on the same slot of the poll interval
  as ours polls that update on: the least any trigger could spend for the same requests at the same moments.
- ``floor-lockstep`` (not run by default): the same, but every wait polls at once, every interval: the herd ours must
  not make, and cheaper per request because requests batch into fewer loop turns.

Waits (and the floor's coroutines) start the way Airflow's triggerer starts triggers: one task each, yielding to the
loop before each.

Measured in the variant's process, from the moment the work is handed over until every wait has ended:

- CPU per request in the steady state (the target's measure): process CPU time over the window from 1.5 poll
  intervals after the hand-over to one interval before the updates end, over the requests the emulator logged in it.
- CPU per request over the whole run: process CPU time (user + sys, all threads, ``getrusage``) / requests the
  emulator logged for the run (every request the variant made: the polls, plus our one-off ``/.well-known`` host
  probe, plus the official trigger's final ``runs/get`` per run).
- peak RSS per trigger: (``ru_maxrss`` at the end - ``ru_maxrss`` after imports and warm-up) / N.
- the largest event-loop stall: a ticker coroutine sleeps 10 ms in a loop and records how late it wakes up.
- TCP connections opened: the number of distinct client ports in the emulator's request log (the emulator records
  each request's source port; a new connection always gets a new ephemeral port, and a run this short never
  recycles one). This counts every connection that carried a request, including short-lived ones a periodic
  snapshot of ``/proc/net/tcp`` would miss. The peak of concurrently ESTABLISHED connections of the emulator process
  (psutil, sampled every 0.25 s from the parent) is printed alongside as a cross-check.

Logging is left as Airflow configures it in a bare interpreter (INFO, structlog), with the variant's stdout and
stderr going to a file, like a triggerer writing trigger logs: both triggers log their state changes (the official
one logs every poll).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import ApiClient, emulator, machine, table, versions, wait_for_file

VARIANTS = ("ours", "official", "floor", "floor-lockstep")
TICK = 0.010
STARTUP_SECONDS = 2.0
TARGET_VS_OFFICIAL = 0.6
TARGET_VS_FLOOR = 1.15
TARGET_STALL = 0.050


# ============================================================================================ worker (one variant)
class Ticker:
    """Wakes every 10 ms and records how late each wake-up was: the event loop's stalls."""

    def __init__(self) -> None:
        self.max_late = 0.0
        self.max_late_at = 0.0
        self.max_late_after_start = 0.0  # ignoring the first STARTUP_SECONDS, when every trigger starts at once
        self.over_50ms = 0
        self.ticks = 0
        #: bumped by the heap snapshot, whose own stall is not the loop's (see HeapSnapshot)
        self.snapshots = 0
        self.rss_peak = _rss_bytes()
        self._stop = False
        #: (wall clock, process CPU) once a second: the parent cuts the steady-state window out of these
        self.samples: list[tuple[float, float]] = [(time.time(), _cpu())]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not self._stop:
            before, snapshots = loop.time(), self.snapshots
            await asyncio.sleep(TICK)
            now = loop.time()
            late = now - before - TICK
            if snapshots != self.snapshots:
                continue
            self.ticks += 1
            if self.ticks % 10 == 0:
                self.rss_peak = max(self.rss_peak, _rss_bytes())
            if self.ticks % 100 == 0:
                self.samples.append((time.time(), _cpu()))
            if late > self.max_late:
                self.max_late, self.max_late_at = late, before - start
            if before - start > STARTUP_SECONDS:
                self.max_late_after_start = max(self.max_late_after_start, late)
            if late > 0.050:
                self.over_50ms += 1

    def stop(self) -> None:
        self._stop = True


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes() -> int:
    """Resident set size now (``/proc/self/statm``: a few microseconds)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class GcTimer:
    """Time spent in the cyclic garbage collector, and its longest pause (part of what the ticker sees)."""

    def __init__(self) -> None:
        self.total = self.longest = 0.0
        self.longest_full = 0.0  # generation 2: a pass over the whole heap
        self.collections = [0, 0, 0]
        self._t0 = 0.0
        self.ignoring = False  # the heap snapshot's own collection

    def __call__(self, phase: str, info: dict) -> None:
        if self.ignoring:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            took = time.perf_counter() - self._t0
            self.total += took
            self.longest = max(self.longest, took)
            if info["generation"] == 2:
                self.longest_full = max(self.longest_full, took)
            self.collections[info["generation"]] += 1


class HeapSnapshot:
    """Once, while every wait polls at its pace: a full collection, timed, then the objects it tracks.

    (tracked now - tracked after warm-up) / N is what each wait keeps for the collector, counting the few waits that
    are mid-request at that moment; the timed collection is what one full pass costs with N waits in the heap. The
    ticker ignores this one stall (it is the benchmark's, not the loop's); the collector's own passes are counted.
    """

    def __init__(self, at: float, base_objects: int, gc_timer: GcTimer) -> None:
        self.at, self.base_objects, self.gc_timer = at, base_objects, gc_timer
        self.objects = 0
        self.full_collection = 0.0

    async def run(self, ticker: Ticker) -> None:
        await asyncio.sleep(self.at)
        ticker.snapshots += 1
        self.gc_timer.ignoring = True
        t0 = time.perf_counter()
        gc.collect()
        self.full_collection = time.perf_counter() - t0
        self.gc_timer.ignoring = False
        self.objects = len(gc.get_objects())


def _maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _warm_up(variant: str, url: str) -> Any:
    """Import what the variant needs and build what a running triggerer would already have."""
    if variant == "ours":
        import aiohttp  # noqa: F401
        import databricks.sdk.config
        import databricks.sdk.errors  # noqa: F401
        import requests  # noqa: F401
        import tenacity  # noqa: F401

        import airflow_provider_lakeflow.workspace.waiting  # noqa: F401
        from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook, _import_runtime_off_loop
        from airflow_provider_lakeflow.triggers import LakeflowPipelineUpdateTrigger
        from airflow_provider_lakeflow.workspace import operations

        # A triggerer that has been up a while has loaded the connection, built the SDK config (credentials) and
        # imported the async path off the loop; it has not polled these updates.
        LakeflowHook().run(operations.current_user())
        asyncio.run(_import_runtime_off_loop())
        return LakeflowPipelineUpdateTrigger
    if variant == "official":
        from airflow.providers.databricks.hooks.databricks import DatabricksHook
        from airflow.providers.databricks.triggers.databricks import DatabricksExecutionTrigger

        _ = DatabricksHook("dbx_official").user_agent_value  # ProvidersManager, once per process
        return DatabricksExecutionTrigger
    _warm_up("ours", url)  # the same modules (and so the same heap for the garbage collector) as ours
    return None


async def _start_like_the_triggerer(runs: list[Any]) -> list[Any]:
    """Start each wait in its own task, yielding to the loop before each, as Airflow's ``create_triggers`` does."""
    tasks = []
    for run in runs:
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(run()))
    return await asyncio.gather(*tasks)


async def _first_event(trigger_cls: Any, args: tuple, kwargs: dict) -> Any:
    trigger = trigger_cls(*args, **kwargs)  # built when its turn comes, as the triggerer does
    async for event in trigger.run():
        return event
    raise RuntimeError("the trigger ended without an event")


async def _floor(targets: list[list[str]], url: str, poll: float, lockstep: bool) -> list[str]:
    """Bare aiohttp on one session. Spread (the default): each wait polls on its own slot of the interval, as ours
    must (no thundering herd); lockstep: every wait polls at once, every interval (cheaper per request: batched)."""
    import zlib

    import aiohttp

    from airflow_provider_lakeflow._engine.transport import ASYNC_POOL_SIZE

    headers = {"Authorization": "Bearer emulator-token", "Accept": "application/json"}
    terminal = {"COMPLETED", "FAILED", "CANCELED"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=ASYNC_POOL_SIZE, keepalive_timeout=60)
    ) as session:

        async def one(pipeline_id: str, update_id: str) -> str:
            target = f"{url}/api/2.0/pipelines/{pipeline_id}/updates/{update_id}"
            # the same slot of the interval as ours polls this update on (see _engine.poll_schedule.aligned_pause)
            offset = zlib.crc32(f"update {pipeline_id}/{update_id}".encode()) / 2**32 * poll
            if not lockstep:
                await asyncio.sleep((offset - time.time()) % poll)
            while True:
                async with session.get(target, headers=headers) as response:
                    state = json.loads(await response.read())["update"]["state"]
                if state in terminal:
                    return "success" if state == "COMPLETED" else "failed"
                await asyncio.sleep(poll if lockstep else (offset - time.time()) % poll or poll)

        if lockstep:
            return await asyncio.gather(*(one(p, u) for p, u in targets))
        return await _start_like_the_triggerer([lambda p=p, u=u: one(p, u) for p, u in targets])


async def _run_variant(variant: str, trigger_cls: Any, work: dict, url: str, poll: float) -> list[str]:
    if variant == "ours":
        events = await _start_like_the_triggerer(
            [lambda p=p, u=u: _first_event(trigger_cls, (p, u), {"poll_interval": poll}) for p, u in work["targets"]]
        )
        return [e.payload["status"] for e in events]
    if variant == "official":
        events = await _start_like_the_triggerer(
            [
                lambda r=r: _first_event(trigger_cls, (r, "dbx_official"), {"polling_period_seconds": poll})
                for r in work["runs"]
            ]
        )
        return ["success" if '"SUCCESS"' in e.payload["run_state"] else "failed" for e in events]
    return await _floor(work["targets"], url, poll, lockstep=variant == "floor-lockstep")


def worker(args: argparse.Namespace) -> None:
    trigger_cls = _warm_up(args.worker, args.url)
    gc.collect()
    # What every full collection walks whatever the waits keep: Airflow, databricks-sdk, aiohttp and the rest.
    t0 = time.perf_counter()
    gc.collect()
    base_full_collection = time.perf_counter() - t0
    base_objects = len(gc.get_objects())
    rss_base = _maxrss_kb()
    rss_now = _rss_bytes()
    gc_timer = GcTimer()
    open(os.path.join(args.dir, "ready"), "w").close()
    work_path = os.path.join(args.dir, "work.json")
    while not os.path.exists(work_path):
        time.sleep(0.01)
    with open(work_path) as f:
        work = json.load(f)

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()

    async def main() -> tuple[list[str], Ticker, dict]:
        if args.debug_stalls:
            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = args.debug_stalls
        ticker = Ticker()
        tick_task = asyncio.create_task(ticker.run())
        snapshot_task = asyncio.create_task(snapshot.run(ticker)) if snapshot else None
        await asyncio.sleep(0.05)  # the ticker is running before the first trigger starts
        if profiler:
            profiler.enable()
        try:
            statuses = await _run_variant(args.worker, trigger_cls, work, args.url, args.poll)
        finally:
            if profiler:
                profiler.disable()
        ticker.stop()
        await tick_task
        if snapshot_task is not None and not snapshot_task.done():
            snapshot_task.cancel()
        return statuses, ticker, {}

    snapshot = HeapSnapshot(args.snapshot_at, base_objects, gc_timer) if args.snapshot_at else None
    gc.callbacks.append(gc_timer)
    started_at = time.time()
    cpu0, wall0 = _cpu(), time.monotonic()
    statuses, ticker, extra = asyncio.run(main())
    cpu, wall = _cpu() - cpu0, time.monotonic() - wall0
    gc.callbacks.remove(gc_timer)
    result = {
        "variant": args.worker,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "max_stall": ticker.max_late,
        "max_stall_at": ticker.max_late_at,
        "max_stall_after_start": ticker.max_late_after_start,
        "stalls_over_50ms": ticker.over_50ms,
        "ticks": ticker.ticks,
        "rss_base_kb": rss_base,
        "rss_peak_kb": _maxrss_kb(),
        "rss_sampled_delta_kb": (ticker.rss_peak - rss_now) / 1024,
        "gc_seconds": gc_timer.total,
        "gc_longest": gc_timer.longest,
        "gc_longest_full": gc_timer.longest_full,
        "base_objects": base_objects,
        "base_full_collection": base_full_collection,
        "snapshot_objects": snapshot.objects if snapshot else 0,
        "snapshot_full_collection": snapshot.full_collection if snapshot else 0.0,
        "gc_collections": gc_timer.collections,
        "statuses": {s: statuses.count(s) for s in set(statuses)},
        "started_at": started_at,
        "cpu_samples": ticker.samples,
        **extra,
    }
    if profiler:
        import io
        import pstats

        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(int(os.environ.get("BENCH_PROFILE_LINES", "30")))
        stats.sort_stats("cumulative").print_stats(40)
        with open(os.path.join(args.dir, "profile.txt"), "w") as f:
            f.write(out.getvalue())
    with open(os.path.join(args.dir, "result.json.tmp"), "w") as f:
        json.dump(result, f)
    os.replace(os.path.join(args.dir, "result.json.tmp"), os.path.join(args.dir, "result.json"))


# ============================================================================================ parent
class ConnectionSampler(threading.Thread):
    """Peak ESTABLISHED TCP connections of the emulator process (a cross-check of the request log count)."""

    def __init__(self, pid: int, port: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.port, self.peak = pid, port, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            import psutil
        except ImportError:
            self.peak = -1
            return
        proc = psutil.Process(self.pid)
        while not self._stop_event.wait(0.25):
            with contextlib.suppress(psutil.Error):
                conns = proc.net_connections(kind="tcp")
                n = sum(1 for c in conns if c.status == "ESTABLISHED" and c.laddr and c.laddr.port == self.port)
                self.peak = max(self.peak, n)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def _steady_state(result: dict, requests_seen: list, poll: float, update_seconds: float) -> dict:
    """CPU per request once every wait polls at its own pace: from 1.5 poll intervals after the hand-over (every wait
    has started and polled) until one interval before the updates end (no final events yet). The whole run's figure
    also carries what each wait costs once (the trigger object, its first connection lookup, its task, its event)."""
    start, end = result["started_at"] + 1.5 * poll, result["started_at"] + update_seconds - poll
    inside = [(t, cpu) for t, cpu in result.pop("cpu_samples") if start <= t <= end]
    if len(inside) < 2:
        return {"steady_cpu_per_request_ms": None, "steady_requests": 0, "steady_seconds": 0.0}
    (t0, cpu0), (t1, cpu1) = inside[0], inside[-1]
    sent = sum(1 for r in requests_seen if t0 <= r.time < t1)
    return {
        "steady_cpu_per_request_ms": 1000 * (cpu1 - cpu0) / max(1, sent),
        "steady_requests": sent,
        "steady_seconds": t1 - t0,
    }


def run_variant(variant: str, args: argparse.Namespace) -> dict:
    from urllib.parse import urlsplit

    from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient

    n = args.triggers
    with tempfile.TemporaryDirectory(prefix=f"bench-{variant}-") as tmp, emulator(args.update_seconds) as (url, emu):
        client = EmulatorClient(url)
        api = ApiClient(url)
        pipelines = api.create_pipelines(n) if variant != "official" else []
        parts = urlsplit(url)
        env = {
            **os.environ,
            "AIRFLOW_CONN_DATABRICKS_DEFAULT": json.dumps(
                {
                    "conn_type": "lakeflow",
                    "host": url,
                    "password": "emulator-token",
                    **({"extra": {"max_requests_per_second": args.budget}} if args.budget else {}),
                }
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
            "AIRFLOW__LOGGING__LOGGING_LEVEL": args.log_level,
        }
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            variant,
            "--url",
            url,
            "--dir",
            tmp,
            "--poll",
            str(args.poll),
            # the heap snapshot at the end of the steady state, before the first wait ends
            "--snapshot-at",
            str(max(0.0, args.update_seconds - args.poll)),
        ]
        if args.profile and variant in args.profile_variants:
            cmd.append("--profile")
        if args.debug_stalls:
            cmd += ["--debug-stalls", str(args.debug_stalls)]
        log_path = os.path.join(args.log_dir, f"triggerer_scale-{variant}.log")
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
                client.set_rate_limit(None)  # no limit; restarts the emulator's request-rate counts
                sampler = ConnectionSampler(emu.pid, parts.port or 0)
                sampler.start()
                with open(os.path.join(tmp, "work.json.tmp"), "w") as f:
                    json.dump(work, f)
                os.replace(os.path.join(tmp, "work.json.tmp"), os.path.join(tmp, "work.json"))
                proc.wait(timeout=args.update_seconds * 4 + 120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        sampler.stop()
        if proc.returncode != 0 or not os.path.exists(os.path.join(tmp, "result.json")):
            raise RuntimeError(f"variant {variant} failed (exit {proc.returncode}); see {log_path}")
        with open(os.path.join(tmp, "result.json")) as f:
            result = json.load(f)
        requests_seen = client.requests()
        polls = [
            r
            for r in requests_seen
            if r.method == "GET" and ("/updates/" in r.path or r.path.endswith("/jobs/runs/get"))
        ]
        result.update(_steady_state(result, requests_seen, args.poll, args.update_seconds))
        rate = client.request_rate()
        result["peak_per_second"] = rate["peak_per_second"]
        result["peak_per_second_over_5s"] = rate["peak_per_second_over_5s"]
        result["requests"] = len(requests_seen)
        result["polls"] = len(polls)
        result["paths"] = sorted(
            {r.path.split("/api/")[-1].split("/")[0] if "/api/" in r.path else r.path for r in requests_seen}
        )
        ports = {r.client_port for r in requests_seen if getattr(r, "client_port", None)}
        poll_ports = {r.client_port for r in polls if getattr(r, "client_port", None)}
        result["connections"] = len(ports) if ports else None
        result["poll_connections"] = len(poll_ports) if poll_ports else None
        result["peak_established"] = sampler.peak
        result["non_2xx"] = sum(1 for r in requests_seen if not 200 <= r.status < 300)
        result["log"] = log_path
        profile = os.path.join(tmp, "profile.txt")
        if os.path.exists(profile):
            with open(profile) as f:
                result["profile"] = f.read()
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--triggers", type=int, default=1000, help="concurrent triggers (issue targets used 500)")
    parser.add_argument("--poll", type=float, default=1.0, help="poll interval, seconds")
    parser.add_argument("--update-seconds", type=float, default=10.0, help="how long each update/run lasts")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--budget", type=float, default=None, help="ours: connection extra max_requests_per_second (default: default)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the variants in --profile-variants")
    parser.add_argument("--profile-variants", default="ours")
    parser.add_argument(
        "--debug-stalls",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="asyncio debug mode: log every callback that holds the loop longer (diagnosis only)",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="Airflow logging level in the variants (INFO: every state change / poll is logged)",
    )
    parser.add_argument("--log-dir", default=tempfile.gettempdir())
    parser.add_argument("--json", help="also write the results to this file")
    # worker mode (internal)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0

    from airflow_provider_lakeflow._engine.transport import ASYNC_POOL_SIZE

    print(
        f"triggerer_scale: N={args.triggers} triggers in one event loop, poll {args.poll}s, updates "
        f"{args.update_seconds}s, Airflow log level {args.log_level}; emulator in a separate process"
    )
    print(f"machine: {machine()}")
    print(f"versions: {versions()}\n")
    results: dict[str, dict] = {}
    for variant in args.variants.split(","):
        print(f"running {variant} ...", flush=True)
        results[variant] = run_variant(variant, args)
        r = results[variant]
        print(f"  done in {r['wall_seconds']:.1f}s: {r['statuses']}, {r['requests']} requests", flush=True)

    n = args.triggers
    rows = []
    for name, r in results.items():
        r["cpu_per_request_ms"] = 1000 * r["cpu_seconds"] / max(1, r["requests"])
        r["rss_per_trigger_kb"] = (r["rss_peak_kb"] - r["rss_base_kb"]) / n
        r["rss_sampled_per_trigger_kb"] = r["rss_sampled_delta_kb"] / n
        rows.append(
            [
                name,
                f"{r['wall_seconds']:.1f}",
                f"{r['cpu_seconds']:.2f}",
                r["requests"],
                r["polls"],
                f"{r['cpu_per_request_ms']:.3f}",
                "n/a"
                if r["steady_cpu_per_request_ms"] is None
                else f"{r['steady_cpu_per_request_ms']:.3f} ({r['steady_requests']} in {r['steady_seconds']:.0f}s)",
                f"{r['rss_per_trigger_kb']:.1f} / {r['rss_sampled_per_trigger_kb']:.1f}",
                f"{r['gc_seconds']:.2f} / {1000 * r['gc_longest']:.0f}",
                f"{1000 * r['max_stall']:.0f} @{r['max_stall_at']:.1f}s",
                f"{1000 * r['max_stall_after_start']:.0f}",
                r["stalls_over_50ms"],
                f"{r['poll_connections']} ({r['connections']})",
                r["peak_established"],
                r["non_2xx"],
                ",".join(f"{k}={v}" for k, v in sorted(r["statuses"].items())),
            ]
        )
    print()
    print(
        table(
            rows,
            [
                "variant",
                "wall s",
                "CPU s",
                "requests",
                "polls",
                "CPU ms/request",
                "steady CPU ms/request",
                "peak RSS KiB/trigger (maxrss / sampled)",
                "GC s / longest ms",
                "max stall ms",
                f"stall after {STARTUP_SECONDS:.0f}s",
                "stalls>50ms",
                "TCP conns: polls (all)",
                "peak ESTAB",
                "non-2xx",
                "events",
            ],
        )
    )
    print()

    verdicts = []

    def check(label: str, value: float | None, target: float, fmt: str, lower: bool = True) -> None:
        if value is None:
            print(f"{label}: n/a")
            return
        ok = value <= target if lower else value < target
        verdicts.append(ok)
        print(
            f"{label}: {fmt.format(value)} (target {'<=' if lower else '<'} {fmt.format(target)}) "
            f"{'MET' if ok else 'MISSED'}"
        )

    ours = results.get("ours")
    if ours:
        if "official" in results:
            check(
                "ours/official CPU per request",
                ours["cpu_per_request_ms"] / results["official"]["cpu_per_request_ms"],
                TARGET_VS_OFFICIAL,
                "{:.2f}",
            )
            print(
                f"ours/official peak RSS per trigger: "
                f"{ours['rss_per_trigger_kb'] / max(0.001, results['official']['rss_per_trigger_kb']):.2f}"
            )
        if "floor" in results:
            floor = results["floor"]
            if ours["steady_cpu_per_request_ms"] and floor["steady_cpu_per_request_ms"]:
                check(
                    "ours/floor CPU per poll (steady state)",
                    ours["steady_cpu_per_request_ms"] / floor["steady_cpu_per_request_ms"],
                    TARGET_VS_FLOOR,
                    "{:.2f}",
                )
            print(
                "ours/floor CPU per request over the whole run (each wait's start and end included): "
                f"{ours['cpu_per_request_ms'] / floor['cpu_per_request_ms']:.2f}"
            )
            if ours["steady_cpu_per_request_ms"]:
                once = ours["cpu_seconds"] - ours["steady_cpu_per_request_ms"] / 1000 * ours["requests"]
                print(f"ours: what a wait costs once (start, event), beyond its polls: {1000 * once / n:.2f} ms")
        if "floor-lockstep" in results:
            lockstep = results["floor-lockstep"]["cpu_per_request_ms"]
            print(
                "ours/floor-lockstep CPU per request over the whole run (the floor polling every wait at once, "
                f"a herd ours must not make): {ours['cpu_per_request_ms'] / lockstep:.2f}"
            )
        check("ours max event-loop stall (ms)", 1000 * ours["max_stall"], 1000 * TARGET_STALL, "{:.1f}", lower=False)
        check(
            f"ours TCP connections carrying polls (pool size {ASYNC_POOL_SIZE})",
            ours["poll_connections"],
            ASYNC_POOL_SIZE,
            "{:.0f}",
        )
        print(f"ours TCP connections in all: {ours['connections']} (+ the SDK's one-off host probe at Config build)")
        from airflow_provider_lakeflow._engine.budget import DEFAULT_MAX_REQUESTS_PER_SECOND

        budget = args.budget or DEFAULT_MAX_REQUESTS_PER_SECOND
        print(
            f"ours peak request rate at the emulator: {ours['peak_per_second']}/s in any 1 s, "
            f"{ours['peak_per_second_over_5s']:.0f}/s over any 5 s (budget {budget:g}/s: "
            f"{ours['peak_per_second'] / budget:.2f} and {ours['peak_per_second_over_5s'] / budget:.2f} of it)"
        )
        if "floor" in results:
            print(
                f"floor peak request rate at the emulator: {results['floor']['peak_per_second']}/s in any 1 s "
                "(no budget: what the same waits send unpaced)"
            )
        print(
            f"memory per wait (peak RSS over the warmed-up process): ours {ours['rss_per_trigger_kb']:.1f} KiB"
            + (f", floor {results['floor']['rss_per_trigger_kb']:.1f} KiB" if "floor" in results else "")
        )
        for name, r in results.items():
            if not r.get("snapshot_objects"):
                continue
            print(
                f"{name}: tracked objects per wait {(r['snapshot_objects'] - r['base_objects']) / n:.1f} "
                f"(heap {r['snapshot_objects']:,} with the waits, {r['base_objects']:,} after warm-up); one full "
                f"collection: {1000 * r['snapshot_full_collection']:.0f} ms with the waits, "
                f"{1000 * r['base_full_collection']:.0f} ms over the warmed-up heap alone; the collector's longest "
                f"full collection during the run {1000 * r['gc_longest_full']:.0f} ms ({r['gc_collections'][2]} full)"
            )
        if "official" in results:
            print(f"official TCP connections: {results['official']['connections']} for {n} triggers")
        print(
            f"requests per trigger: ours {ours['requests'] / n:.1f} (polls {ours['polls'] / n:.1f})"
            + (f", official {results['official']['requests'] / n:.1f}" if "official" in results else "")
            + (f", floor {results['floor']['requests'] / n:.1f}" if "floor" in results else "")
        )
    for name, r in results.items():
        if "profile" in r:
            print(f"\n===== cProfile of {name} (main thread, while the triggers ran) =====")
            print(r["profile"])
        print(f"log of {name}: {r['log']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: {kk: vv for kk, vv in v.items() if kk != "profile"} for k, v in results.items()}, f, indent=2)
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
