"""Soak: does a triggerer that runs our waits beside other providers' triggers keep its memory, round after round?

    python benchmarks/triggerer_soak.py [--rounds 30] [--ours 300] [--official 150] [--cycles 150]
        [--update-seconds 2] [--poll 0.5] [--budget 2000] [--variants defaults,freeze-0.2]

Issue 18: version 0.2 froze the heap (``gc.freeze()``) whenever 200 of our waits had settled. Freezing moves every
live object of the process into the permanent generation, other providers' objects too, and those that later become
unreachable reference cycles are never collected: a triggerer that runs for days grows for ever. This benchmark is
the guard: one event loop, as on a triggerer, runs rounds of

- ``--ours`` (300) ``LakeflowPipelineUpdateTrigger`` waits on pipeline updates lasting ``--update-seconds``, polling
  every ``--poll`` seconds (connection of type ``lakeflow`` with a PAT; its ``max_requests_per_second`` is set to
  ``--budget``, above the polls' demand, so that every wait polls on its interval: the default budget, 50 requests a
  second, would pace 300 waits to about one poll each; it is a request budget, not a memory setting),
- ``--official`` (150) ``DatabricksExecutionTrigger`` waits of apache-airflow-providers-databricks on job runs of the
  same length, polling as often (connection of type ``databricks`` with a PAT),
- ``--cycles`` (150) ``CycleHoldingTrigger`` waits: another provider's trigger whose state is a reference cycle
  (a dict that refers to itself and to a 64 KiB buffer) held for ``--hold-seconds``, then dropped; only the cyclic
  garbage collector can free it, as with any client object that refers back to its owner,

all started the way Airflow's triggerer starts triggers (one task each, interleaved, yielding to the loop before each),
each awaited until its first event and closed. The parent lengthens each round's updates and runs by the time it
took to start them, so that each lasts at least ``--update-seconds`` after the hand-over. After every round the worker
drops the round's objects, runs ``gc.collect()`` and only then reads its resident set size (``/proc/self/statm``),
once as it is and once after glibc's ``malloc_trim(0)`` has returned the allocator's free pages to the system, the
frozen-object count (``gc.get_freeze_count()``) and the number of objects the collector still walks
(``gc.get_objects()``, which leaves out the frozen ones). The untrimmed RSS swings by megabytes from round to round
with how busy the round was (freed memory malloc keeps for reuse): noise many times the goal. Memory still in use
cannot be trimmed, so a leak shows in both readings. The workers run with ``PYTHONMALLOC=malloc`` (``--allocator
pymalloc`` keeps CPython's own small-object allocator): pymalloc gives memory back only in whole 1 MiB arenas, so one
busy round (more cyclic garbage from the neighbours before a full collection) leaves a step of a megabyte in the
trimmed RSS too, a high-water mark rather than a leak, which is enough to tip a 15-round slope over the goal; with
malloc, freed objects go back page by page. Neither allocator changes what leaks: an unreachable frozen cycle is
never freed by either. The goal (issue 18): with the defaults, the least-squares slope of the trimmed RSS over the
second half of the rounds (the first half warms up pools and caches) is at most 0.05 MiB per round; the untrimmed
slope is printed beside it.

Variants, each in a fresh subprocess against a fresh emulator in yet another process
(``python -m airflow_provider_lakeflow.testing.emulator``):

- ``defaults``: the provider as installed. Since 0.3 it has no garbage-collection setting at all, so the defaults
  are every configuration there is.
- ``freeze-0.2`` (the control: shows that this benchmark detects the leak it guards against): the same rounds, plus a
  neighbour in the process that does what 0.2 did by default, from the benchmark, without touching the provider:
  ``gc.freeze()`` once after the imports (0.2 froze after importing databricks-sdk) and then whenever 200 of our
  waits have settled, at most every 0.1 s. 0.2 counted a wait as settled twice, before its first poll and after it;
  the neighbour counts the same two moments as the loop turn after the wait's task starts and one poll interval
  later.

The parent process prints every round as it ends, then per variant the slopes over the second half, and PASS or FAIL
for the defaults against the goal. It exits 0 only if the defaults meet the goal and every control variant run
exceeds it (a control that does not leak would mean the benchmark cannot see a leak).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import ApiClient, emulator, machine, table, versions, wait_for_file

VARIANTS = ("defaults", "freeze-0.2")
GOAL_MIB_PER_ROUND = 0.05
MIB = 1024 * 1024
#: 0.2's freezing schedule (hooks/_settled_heap.py, removed in 0.3): a freeze once this many waits have settled ...
FREEZE_BATCH = 200
#: ... and at most this often.
FREEZE_SPACING_SECONDS = 0.1


# ============================================================================================ worker (one variant)
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _trimmed_rss_bytes() -> int:
    """RSS once the C allocator has returned its free pages (glibc ``malloc_trim(0)``, every arena).

    Freed memory that malloc keeps for reuse makes the raw RSS swing by megabytes from round to round, with how busy
    the round was: noise many times the goal. What cannot be given back is memory still in use, so a leak shows in
    both readings; this one has most of the noise taken out.
    """
    import ctypes

    ctypes.CDLL(None).malloc_trim(0)
    return _rss_bytes()


def _cycle_holding_trigger() -> type:
    """Another provider's trigger whose state, while it waits, is a reference cycle (defined after Airflow's import)."""
    from airflow.triggers.base import BaseTrigger, TriggerEvent

    class CycleHoldingTrigger(BaseTrigger):
        def __init__(self, hold_seconds: float, kib: int) -> None:
            super().__init__()
            self.hold_seconds = hold_seconds
            self.kib = kib

        def serialize(self) -> tuple[str, dict[str, Any]]:
            return (f"{__name__}.CycleHoldingTrigger", {"hold_seconds": self.hold_seconds, "kib": self.kib})

        async def run(self):  # type: ignore[override]
            state: dict[str, Any] = {"buffer": bytearray(self.kib * 1024)}
            state["owner"] = state  # unreachable once the trigger ends: only the cyclic collector frees it
            await asyncio.sleep(self.hold_seconds)
            yield TriggerEvent({"status": "success"})

    return CycleHoldingTrigger


def _warm_up(args: argparse.Namespace) -> dict[str, type]:
    """Import the three triggers and build what a triggerer that has been up a while already has."""
    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook, _import_runtime_off_loop
    from airflow_provider_lakeflow.triggers import LakeflowPipelineUpdateTrigger
    from airflow_provider_lakeflow.workspace import operations

    LakeflowHook().run(operations.current_user())  # the connection loaded, the SDK config (credentials) built
    asyncio.run(_import_runtime_off_loop())  # the async path imported off the loop, as a first trigger does
    classes = {"ours": LakeflowPipelineUpdateTrigger, "cycles": _cycle_holding_trigger()}
    if args.official:  # --official 0 runs without apache-airflow-providers-databricks installed
        from airflow.providers.databricks.hooks.databricks import DatabricksHook
        from airflow.providers.databricks.triggers.databricks import DatabricksExecutionTrigger

        _ = DatabricksHook("dbx_official").user_agent_value  # the official hook's ProvidersManager lookup, once
        classes["official"] = DatabricksExecutionTrigger
    return classes


class SettledWaitFreezer:
    """The control's neighbour: 0.2's default freezing, reproduced outside the provider (see the module docstring)."""

    def __init__(self) -> None:
        self.settled_since_freeze = 0
        self.freezes = 0
        self._last = float("-inf")
        self._scheduled = False

    def settled(self) -> None:
        self.settled_since_freeze += 1
        if self.settled_since_freeze < FREEZE_BATCH or self._scheduled:
            return
        delay = self._last + FREEZE_SPACING_SECONDS - time.monotonic()
        if delay > 0.0:
            self._scheduled = True
            asyncio.get_running_loop().call_later(delay, self.freeze)
            return
        self.freeze()

    def freeze(self) -> None:
        self._scheduled = False
        self.settled_since_freeze = 0
        self._last = time.monotonic()
        self.freezes += 1
        gc.freeze()


async def _first_event(trigger: Any) -> str:
    """Await a trigger's first event and close its generator, as the triggerer does once the event is handled."""
    events = trigger.run()
    try:
        event = await anext(events)
    finally:
        await events.aclose()
    payload = event.payload
    if "run_state" in payload:  # the official trigger
        return "success" if '"SUCCESS"' in payload["run_state"] else "failed"
    return str(payload["status"])


async def _round(classes: dict[str, type], work: dict, args: argparse.Namespace, freezer: Any) -> Counter:
    """One round: every wait in its own task, interleaved by kind, each started after a yield to the loop."""
    builds: dict[str, list[Any]] = {
        "ours": [lambda p=p, u=u: classes["ours"](p, u, poll_interval=args.poll) for p, u in work["updates"]],
        "official": [
            lambda r=r: classes["official"](r, "dbx_official", polling_period_seconds=args.poll) for r in work["runs"]
        ],
        "cycles": [lambda: classes["cycles"](args.hold_seconds, args.cycle_kib) for _ in range(work["cycles"])],
    }
    order = []
    longest = max(len(b) for b in builds.values())
    for i in range(longest):
        for kind in ("ours", "official", "cycles"):
            if i < len(builds[kind]):
                order.append((kind, builds[kind][i]))
    loop = asyncio.get_running_loop()
    tasks = []
    for kind, build in order:
        await asyncio.sleep(0)
        tasks.append((kind, asyncio.create_task(_first_event(build()))))  # built when its turn comes
        if freezer is not None and kind == "ours":
            loop.call_soon(freezer.settled)  # after the task's first step: before its first poll
            loop.call_later(args.poll, freezer.settled)  # after its first poll
    outcomes = Counter()
    for kind, task in tasks:
        outcomes[f"{kind}:{await task}"] += 1
    return outcomes


async def _soak(classes: dict[str, type], args: argparse.Namespace, freezer: Any) -> None:
    for k in range(args.rounds):
        work_path = os.path.join(args.dir, f"work-{k}.json")
        while not os.path.exists(work_path):
            await asyncio.sleep(0.02)
        with open(work_path) as f:
            work = json.load(f)
        started = time.monotonic()
        outcomes = await _round(classes, work, args, freezer)
        wall = time.monotonic() - started
        del work
        await asyncio.sleep(0.05)  # let closed connections and finalizers run their callbacks
        unreachable = gc.collect()
        result = {
            "round": k,
            "rss_bytes": _rss_bytes(),
            "rss_trimmed_bytes": _trimmed_rss_bytes(),
            "frozen": gc.get_freeze_count(),
            "tracked": len(gc.get_objects()),
            "unreachable": unreachable,
            "freezes": freezer.freezes if freezer else 0,
            "outcomes": dict(outcomes),
            "wall_seconds": wall,
        }
        tmp = os.path.join(args.dir, f"result-{k}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(result, f)
        os.replace(tmp, os.path.join(args.dir, f"result-{k}.json"))


def worker(args: argparse.Namespace) -> None:
    classes = _warm_up(args)
    freezer = None
    if args.worker == "freeze-0.2":
        freezer = SettledWaitFreezer()
        freezer.freeze()  # 0.2: after importing databricks-sdk
    gc.collect()
    with open(os.path.join(args.dir, "ready.json.tmp"), "w") as f:
        json.dump(
            {"rss_bytes": _rss_bytes(), "rss_trimmed_bytes": _trimmed_rss_bytes(), "frozen": gc.get_freeze_count()}, f
        )
    os.replace(os.path.join(args.dir, "ready.json.tmp"), os.path.join(args.dir, "ready.json"))
    asyncio.run(_soak(classes, args, freezer))


# ============================================================================================ parent
def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    return fit(points)[0]


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope of y over x and its standard error (how far round-to-round noise alone moves it)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if not sxx:
        return 0.0, 0.0
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    residuals = sum((y - my - b * (x - mx)) ** 2 for x, y in points)
    return b, (residuals / (n - 2) / sxx) ** 0.5 if n > 2 else 0.0


class RoundSetup:
    """Starts a round's updates and job runs over a few keep-alive connections at once (not measured): the sooner
    they are all started, the less the first ones must be lengthened to outlast the setup."""

    THREADS = 4

    def __init__(self, url: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._url = url
        self._local = threading.local()
        self._clients: list[ApiClient] = []
        self._pool = ThreadPoolExecutor(self.THREADS, thread_name_prefix="soak-setup")

    def _client(self) -> ApiClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = ApiClient(self._url)
            self._clients.append(client)
        return client

    def start_updates(self, pipelines: list[str]) -> list[list[str]]:
        return list(self._pool.map(lambda p: [p, self._client().start_update(p)], pipelines))

    def create_job_runs(self, n: int, seconds: float) -> list[int]:
        def create(_: int) -> int:
            reply = self._client().call("POST", "/__emulator__/create_job_run", {"duration_seconds": seconds})
            return int(reply["result"])

        return list(self._pool.map(create, range(n)))

    def close(self) -> None:
        self._pool.shutdown()
        for client in self._clients:
            client.close()


def run_variant(variant: str, args: argparse.Namespace) -> dict:
    from urllib.parse import urlsplit

    from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient

    log_path = os.path.join(args.log_dir, f"triggerer_soak-{variant}.log")
    with tempfile.TemporaryDirectory(prefix=f"soak-{variant}-") as tmp, emulator(args.update_seconds) as (url, _):
        client = EmulatorClient(url)
        api = ApiClient(url)
        pipelines = api.create_pipelines(args.ours, prefix="soak")
        setup = RoundSetup(url)
        parts = urlsplit(url)
        env = {
            **os.environ,
            "AIRFLOW_CONN_DATABRICKS_DEFAULT": json.dumps(
                {
                    "conn_type": "lakeflow",
                    "host": url,
                    "password": "emulator-token",
                    "extra": {"max_requests_per_second": args.budget},
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
        if args.allocator == "malloc":
            env["PYTHONMALLOC"] = "malloc"
        else:
            env.pop("PYTHONMALLOC", None)
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--dir", tmp]
        for name in ("rounds", "official", "poll", "hold_seconds", "cycle_kib"):
            cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        rounds: list[dict] = []
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                wait_for_file(os.path.join(tmp, "ready.json"), proc, timeout=180)
                with open(os.path.join(tmp, "ready.json")) as f:
                    ready = json.load(f)
                print(
                    f"  warmed up: RSS {ready['rss_bytes'] / MIB:.1f} MiB "
                    f"(trimmed {ready['rss_trimmed_bytes'] / MIB:.1f}), "
                    f"{ready['frozen']:,} frozen objects",
                    flush=True,
                )
                setup_seconds = 2.0  # a first guess; then what the previous round's setup took
                for k in range(args.rounds):
                    # Every update and run lasts at least --update-seconds after the hand-over: lengthened by the
                    # time starting them takes (the first ones started would otherwise end before the round begins).
                    lasts = args.update_seconds + 1.2 * setup_seconds
                    setup_started = time.monotonic()
                    client.set_default_script(update_seconds=lasts)
                    work = {
                        "runs": setup.create_job_runs(args.official, lasts),
                        "updates": setup.start_updates(pipelines),
                        "cycles": args.cycles,
                    }
                    setup_seconds = time.monotonic() - setup_started
                    client.clear_requests()
                    with open(os.path.join(tmp, f"work-{k}.json.tmp"), "w") as f:
                        json.dump(work, f)
                    os.replace(os.path.join(tmp, f"work-{k}.json.tmp"), os.path.join(tmp, f"work-{k}.json"))
                    wait_for_file(os.path.join(tmp, f"result-{k}.json"), proc, timeout=args.update_seconds * 20 + 120)
                    with open(os.path.join(tmp, f"result-{k}.json")) as f:
                        r = json.load(f)
                    seen = client.requests()
                    r["polls_ours"] = sum(1 for q in seen if q.method == "GET" and "/updates/" in q.path)
                    r["polls_official"] = sum(1 for q in seen if q.path.endswith("/jobs/runs/get"))
                    rounds.append(r)
                    previous = (rounds[-2] if k else ready)["rss_trimmed_bytes"]
                    print(
                        f"  round {k + 1:>2}: RSS {r['rss_bytes'] / MIB:6.1f}, "
                        f"trimmed {r['rss_trimmed_bytes'] / MIB:6.1f} MiB "
                        f"({(r['rss_trimmed_bytes'] - previous) / MIB:+6.2f}), frozen {r['frozen']:>8,}, "
                        f"walked {r['tracked']:>8,}, collected {r['unreachable']:>6,}, freezes {r['freezes']:>3}, "
                        f"polls ours/official {r['polls_ours']}/{r['polls_official']}, "
                        f"{r['wall_seconds']:.1f}s, {_outcomes(r['outcomes'])}",
                        flush=True,
                    )
                proc.wait(timeout=60)
            finally:
                api.close()
                setup.close()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"variant {variant} failed (exit {proc.returncode}); see {log_path}")
    half = rounds[len(rounds) // 2 :]
    return {
        "variant": variant,
        "ready": ready,
        "rounds": rounds,
        "slope_mib": slope([(r["round"], r["rss_trimmed_bytes"] / MIB) for r in half]),
        "slope_mib_stderr": fit([(r["round"], r["rss_trimmed_bytes"] / MIB) for r in half])[1],
        "slope_raw_mib": slope([(r["round"], r["rss_bytes"] / MIB) for r in half]),
        "slope_frozen": slope([(r["round"], r["frozen"]) for r in half]),
        "slope_tracked": slope([(r["round"], r["tracked"]) for r in half]),
        "log": log_path,
    }


def _outcomes(outcomes: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds per variant (at least 20)")
    parser.add_argument("--ours", type=int, default=300, help="our update waits per round")
    parser.add_argument("--official", type=int, default=150, help="official DatabricksExecutionTrigger waits per round")
    parser.add_argument("--cycles", type=int, default=150, help="cycle-holding triggers per round")
    parser.add_argument("--update-seconds", type=float, default=2.0, help="how long each update / job run lasts")
    parser.add_argument("--poll", type=float, default=0.5, help="poll interval of ours and the official trigger")
    parser.add_argument(
        "--allocator",
        choices=("malloc", "pymalloc"),
        default="malloc",
        help="the workers' allocator for Python objects (PYTHONMALLOC); see the module docstring",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=2000,
        help="our connection's max_requests_per_second, above the polls' demand (--ours / --poll) so that every wait "
        "polls on its interval (the default budget, 50/s, would pace 300 waits to one poll each)",
    )
    parser.add_argument("--hold-seconds", type=float, default=1.5, help="how long a cycle holder waits")
    parser.add_argument("--cycle-kib", type=int, default=64, help="the buffer each cycle holder's cycle keeps")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--log-level", default="WARNING", help="Airflow logging level in the variants")
    parser.add_argument("--log-dir", default=tempfile.gettempdir())
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    if args.rounds < 20:
        parser.error("--rounds: at least 20 (issue 18), so that the second half has 10 rounds to fit a slope to")
    os.makedirs(args.log_dir, exist_ok=True)
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")

    print(
        f"triggerer_soak: {args.rounds} rounds in one event loop, each {args.ours} of our update waits + "
        f"{args.official} official DatabricksExecutionTrigger waits + {args.cycles} triggers holding a "
        f"{args.cycle_kib} KiB reference cycle for {args.hold_seconds}s; updates/runs {args.update_seconds}s, "
        f"poll {args.poll}s, our request budget {args.budget:g}/s, allocator {args.allocator}; gc.collect() before "
        "each RSS reading; emulator in a separate process"
    )
    print(f"machine: {machine()}")
    print(f"versions: {versions()}\n")
    results = {}
    for variant in variants:
        print(f"running {variant} ...", flush=True)
        results[variant] = run_variant(variant, args)

    rows = []
    verdicts = []
    for name, r in results.items():
        first, last = r["rounds"][0], r["rounds"][-1]
        if name == "defaults":
            ok = r["slope_mib"] <= GOAL_MIB_PER_ROUND
            verdict = f"{'PASS' if ok else 'FAIL'} (goal <= {GOAL_MIB_PER_ROUND})"
        else:
            ok = r["slope_mib"] > GOAL_MIB_PER_ROUND
            verdict = (
                f"control: leak {'detected' if ok else 'NOT detected'} ({r['slope_mib'] / GOAL_MIB_PER_ROUND:.0f}x)"
            )
        verdicts.append(ok)
        rows.append(
            [
                name,
                len(r["rounds"]),
                f"{r['ready']['rss_trimmed_bytes'] / MIB:.1f}",
                f"{first['rss_trimmed_bytes'] / MIB:.1f} -> {last['rss_trimmed_bytes'] / MIB:.1f}",
                f"{r['slope_mib']:+.3f} ± {r['slope_mib_stderr']:.3f}",
                f"{r['slope_raw_mib']:+.3f}",
                f"{first['frozen']:,} -> {last['frozen']:,}",
                f"{r['slope_frozen']:+,.0f}",
                f"{r['slope_tracked']:+,.0f}",
                verdict,
            ]
        )
    print()
    print(
        table(
            rows,
            [
                "variant",
                "rounds",
                "RSS warmed up MiB",
                "RSS round 1 -> last MiB",
                "RSS slope MiB/round (2nd half) ± std. error",
                "untrimmed RSS slope",
                "frozen objects round 1 -> last",
                "frozen/round (2nd half)",
                "walked objects/round (2nd half)",
                "verdict",
            ],
        )
    )
    for name, r in results.items():
        print(f"log of {name}: {r['log']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
