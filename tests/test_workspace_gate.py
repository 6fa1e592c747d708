"""The per-workspace request budget and shared polls (_engine/budget.py, poll_schedule.py), measured at the emulator.

Every test goes through the emulator over real HTTP; assertions are on counts the emulator saw (requests per
one-second window, 429s, requests per poll), not on how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_lakeflow._engine import budget, transport
from airflow_provider_lakeflow._engine.auth import ConnectionConfigError, settings_from_connection
from airflow_provider_lakeflow._engine.budget import WorkspaceGate
from airflow_provider_lakeflow._engine.poll_schedule import aligned_pause
from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook
from airflow_provider_lakeflow.triggers import LakeflowPipelineUpdateTrigger
from airflow_provider_lakeflow.workspace import operations

UPDATE_PATH = r"^/api/2\.0/pipelines/[^/]+/updates/[^/]+$"
THROTTLED = "are being throttled"


@pytest.fixture(autouse=True)
def fresh_gates() -> Iterator[None]:
    """Each test starts with no budget history for the (session-wide) emulator's host."""
    budget._GATES.clear()
    yield
    budget._GATES.clear()


def _conn(monkeypatch: pytest.MonkeyPatch, emulator: Any, conn_id: str = "databricks_default", **extra: Any) -> str:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps({"conn_type": "lakeflow", "host": emulator.url, "password": "emulator-token", "extra": extra}),
    )
    return conn_id


def _updates(emulator: Any, count: int) -> list[tuple[str, str]]:
    """``count`` pipelines with one running update each, made directly in the workspace model (not measured)."""
    ws = emulator.workspace
    targets = []
    for i in range(count):
        body = {
            "name": f"gate-{i}",
            "ingestion_definition": {
                "connection_name": "c",
                "objects": [
                    {"table": {"source_table": f"t{i}", "destination_catalog": "m", "destination_schema": "s"}}
                ],
            },
        }
        pid = ws.api_create_pipeline(body, "u")["pipeline_id"]
        targets.append((pid, ws.api_start_update(pid, {})["update_id"]))
    return targets


async def _wait_all(
    triggers: list[LakeflowPipelineUpdateTrigger], seconds: float | None, started: Callable[[], Any] | None = None
) -> list[str]:
    """Run the triggers the way the triggerer starts them; after ``seconds``, cancel what still waits."""
    tasks = []
    for trigger in triggers:
        tasks.append(asyncio.ensure_future(anext(trigger.run())))
        await asyncio.sleep(0)
    if started is not None:
        await asyncio.to_thread(started)
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return [task.result().payload["status"] for task in done]


# ------------------------------------------------------------------------------------------------------- the budget
def test_ten_thousand_waits_stay_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """10,000 waits that want ~1,000 requests a second get the budget (200/s), never more, and none fails.

    The emulator runs in its own process here, so that the rate it records is not skewed by sharing this
    process's interpreter lock with 10,000 waits.
    """
    budget, waits, seconds = 200, 10_000, 12.0
    with _emulator_process("--update-seconds", "3600") as (url, control):
        targets = _updates_over_http(url, waits)
        monkeypatch.setenv(
            "AIRFLOW_CONN_DATABRICKS_DEFAULT",
            json.dumps(
                {
                    "conn_type": "lakeflow",
                    "host": url,
                    "password": "emulator-token",
                    "extra": {"max_requests_per_second": budget},
                }
            ),
        )
        triggers = [LakeflowPipelineUpdateTrigger(p, u, poll_interval=10) for p, u in targets]

        # Counted from two seconds after every wait has started: creating 10,000 tasks keeps the loop busy for a
        # while, and requests the gate let through on time meanwhile leave late, bunched, in the first second or so
        # (that restart storm is the benchmark's subject); counting from then on measures the budget held.
        def settled() -> None:
            time.sleep(2.0)
            control.set_rate_limit(None)

        statuses = asyncio.run(_wait_all(triggers, seconds, started=settled))
        seen = control.request_rate()
    assert statuses == []  # nothing ended: no wait failed (an error would be an event)
    # Busy against the budget (demand is 5x the budget), so the ceiling below is what held it back.
    assert seen["requests"] >= budget * (seconds - 6), seen
    assert seen["mean_per_second"] <= budget * 1.02, seen
    # The gate lets at most the budget go in any one-second window. The emulator sees them bunched now and then (by
    # up to 45% over one second on a loaded 2-core machine): a loop busy with 10,000 waits delivers some requests a
    # little after the gate let them go, and a descheduled emulator reads several at once. Since 0.3 nothing freezes
    # the heap, so a full collection of this process (10,000 waits beside Airflow's own heap: 0.3-0.5 s on Airflow
    # 2.11 here) holds the loop too: the requests the gate let go during it arrive after it, and five seconds at the
    # emulator then hold up to 5.5 s of the gate's schedule (218/s measured, against 200). Without the gate both
    # would be ~5x the budget.
    assert seen["peak_per_second_over_5s"] <= budget * 1.15, seen
    assert seen["peak_per_second"] <= budget * 1.6, seen


@contextlib.contextmanager
def _emulator_process(*args: str) -> Iterator[tuple[str, Any]]:
    from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient

    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_lakeflow.testing.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = next(line.split()[-1] for line in proc.stdout if "listening on" in line)
        yield url, EmulatorClient(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _updates_over_http(url: str, count: int) -> list[tuple[str, str]]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": "Bearer emulator-token", "Content-Type": "application/json"}

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        data = response.read()
        assert response.status == 200, (path, response.status, data[:300])
        return dict(json.loads(data))

    targets = []
    for i in range(count):
        pid = post("/api/2.0/pipelines", _spec(f"gate-{i}"))["pipeline_id"]
        targets.append((pid, post(f"/api/2.0/pipelines/{pid}/updates", {})["update_id"]))
    conn.close()
    return targets


def test_429_shrinks_the_budget_which_recovers_and_is_logged_once(
    lakeflow_emulator: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Against a workspace limited below the budget: the 429s shrink it, every poll gets through, one log line."""
    clock = [1000.0]
    conn_id = _conn(monkeypatch, lakeflow_emulator, max_requests_per_second=40)
    gate = budget._GATES[lakeflow_emulator.url] = WorkspaceGate(lakeflow_emulator.url, 40)
    lakeflow_emulator.set_default_script(phase_seconds=600)
    targets = _updates(lakeflow_emulator, 200)
    lakeflow_emulator.set_rate_limit(15, burst=5)
    triggers = [LakeflowPipelineUpdateTrigger(p, u, databricks_conn_id=conn_id, poll_interval=5) for p, u in targets]
    with caplog.at_level(logging.WARNING, logger="airflow_provider_lakeflow"):
        statuses = asyncio.run(_wait_all(triggers, 8.0))
    seen = lakeflow_emulator.request_rate()
    assert statuses == []
    assert seen["throttled"] >= 1 and gate.shrinks >= 1  # the workspace said 429 and the budget shrank
    assert gate.rate < gate.limit
    assert seen["throttled"] <= 0.1 * seen["requests"], seen  # the shrink took: 429s stay rare
    assert caplog.text.count(THROTTLED) == 1

    # Recovery, on an injected clock: linear back to the budget over RECOVERY_SECONDS after the pause.
    gate = WorkspaceGate("w", 40, clock=lambda: clock[0])
    gate.observe(_raw_429(retry_after="2"))
    assert gate.rate == 20
    gate.observe(_raw_429(retry_after="2"))  # a 429 of the same episode (sent before the first one came back)
    assert (gate.rate, gate.shrinks) == (20, 1)
    assert gate.reserve()[0] == 2.0  # the Retry-After pause holds every request of the workspace
    clock[0] += 2 + budget.RECOVERY_SECONDS / 4
    gate.reserve()
    assert gate.rate == 30
    clock[0] += budget.RECOVERY_SECONDS
    gate.reserve()
    assert gate.rate == 40


def _raw_429(retry_after: str) -> Any:
    from airflow_provider_lakeflow._engine.responses import RawResponse

    return RawResponse(429, "Too Many Requests", {"Retry-After": retry_after}, b"{}", "http://w/api", "GET")


def test_sync_path_honours_429_and_the_budget(lakeflow_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker (hook.run) shares the process budget and comes through a rate-limited workspace."""
    conn_id = _conn(monkeypatch, lakeflow_emulator, max_requests_per_second=100)
    pipeline_id = LakeflowHook(conn_id).run(operations.create_pipeline(_spec("sync-gate")))
    lakeflow_emulator.set_rate_limit(5, burst=2)
    hook = LakeflowHook(conn_id)
    for _ in range(12):
        assert hook.run(operations.get_pipeline(pipeline_id))["pipeline_id"] == pipeline_id
    seen = lakeflow_emulator.request_rate()
    gate = budget._GATES[lakeflow_emulator.url]
    assert seen["throttled"] >= 1 and gate.shrinks >= 1
    assert seen["throttled"] <= 6, seen  # after the first 429 the worker paces itself instead of hammering


def _spec(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "ingestion_definition": {
            "connection_name": "c",
            "objects": [{"table": {"source_table": name, "destination_catalog": "m", "destination_schema": "s"}}],
        },
    }


# ------------------------------------------------------------------------------------------------------ spreading
def test_recreated_waits_spread_their_first_polls(lakeflow_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a restart, 200 waits re-created at once spread their first polls over the poll interval."""
    interval, waits = 4.0, 200
    conn_id = _conn(monkeypatch, lakeflow_emulator, max_requests_per_second=1000)
    lakeflow_emulator.set_default_script(phase_seconds=600)
    targets = _updates(lakeflow_emulator, waits)
    lakeflow_emulator.clear_requests()
    triggers = [
        LakeflowPipelineUpdateTrigger(p, u, databricks_conn_id=conn_id, poll_interval=interval) for p, u in targets
    ]
    start = time.time()
    asyncio.run(_wait_all(triggers, interval + 3.0))  # slack for a busy machine
    first: dict[str, float] = {}
    for request in lakeflow_emulator.requests(UPDATE_PATH, method="GET"):
        first.setdefault(request.path, request.time)
    assert len(first) == waits  # every wait polled once within one interval
    offsets = sorted(moment - start for moment in first.values())
    # Uniform: a quarter of them in the first quarter of the interval, the median half-way. The thundering herd: all
    # of them at once, at the start. (A busy machine only makes polls later, so these bounds do not depend on it.)
    early = sum(1 for offset in offsets if offset < interval / 4)
    assert early <= 0.4 * waits, offsets
    assert offsets[waits // 2] >= interval / 4, offsets


def test_aligned_pause_keeps_each_subject_on_its_slot() -> None:
    interval = 30.0
    slots = {round((100.0 + aligned_pause(0.0, interval, f"update p/{i}", now=100.0)) % interval, 6) for i in range(3)}
    assert len(slots) == 3  # different subjects, different slots
    first = aligned_pause(0.0, interval, "update p/u", now=100.0)
    assert 0 <= first < interval
    # A poll that took 2 s after its slot sleeps to the next slot of the same subject, not a full interval.
    later = aligned_pause(interval, interval, "update p/u", now=100.0 + first + 2.0)
    assert later == pytest.approx(interval - 2.0)


# ------------------------------------------------------------------------------------------------------- sharing
def test_waits_on_one_update_share_one_request_per_poll(
    lakeflow_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run task's wait and two sensors on the same update, started apart: one GET of the update per poll."""
    interval = 1.0
    conn_id = _conn(monkeypatch, lakeflow_emulator)
    lakeflow_emulator.set_default_script(phase_seconds=1.2)  # the update takes ~6 s: about six polls
    (pipeline_id, update_id), (other_pipeline, other_update) = _updates(lakeflow_emulator, 2)
    lakeflow_emulator.clear_requests()

    async def three_waits() -> list[str]:
        def trigger(p: str, u: str) -> LakeflowPipelineUpdateTrigger:
            return LakeflowPipelineUpdateTrigger(p, u, databricks_conn_id=conn_id, poll_interval=interval)

        run_wait = asyncio.ensure_future(anext(trigger(pipeline_id, update_id).run()))
        alone = asyncio.ensure_future(anext(trigger(other_pipeline, other_update).run()))
        await asyncio.sleep(0.3)
        sensor_1 = asyncio.ensure_future(anext(trigger(pipeline_id, update_id).run()))
        await asyncio.sleep(0.4)
        sensor_2 = asyncio.ensure_future(anext(trigger(pipeline_id, update_id).run()))
        events = await asyncio.gather(run_wait, sensor_1, sensor_2, alone)
        return [e.payload["status"] for e in events]

    assert asyncio.run(three_waits()) == ["success"] * 4
    shared = [r.time for r in lakeflow_emulator.requests(rf"^/api/2\.0/pipelines/{pipeline_id}/updates/", "GET")]
    alone = [r.time for r in lakeflow_emulator.requests(rf"^/api/2\.0/pipelines/{other_pipeline}/updates/", "GET")]
    assert len(shared) >= 4
    # One request per poll: never two GETs of the update within the same poll interval, and no more than a single
    # wait on an update of the same length sends.
    gaps = [b - a for a, b in itertools.pairwise(shared)]
    assert min(gaps) > interval / 2, gaps
    assert len(shared) <= len(alone) + 1, (shared, alone)


# ------------------------------------------------------------------------------------------- the emulator's limit
def test_emulator_rate_limit_through_the_sdk(lakeflow_emulator: Any) -> None:
    """databricks-sdk sees Databricks' 429 (RequestLimitExceeded with Retry-After), retries, and succeeds."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import TooManyRequests

    client = WorkspaceClient(host=lakeflow_emulator.url, token="emulator-token", auth_type="pat")
    created = client.pipelines.create(**{"name": "sdk-limit", "serverless": True})
    lakeflow_emulator.set_rate_limit(2, burst=1)
    for _ in range(4):
        assert client.pipelines.get(created.pipeline_id).pipeline_id == created.pipeline_id
    seen = lakeflow_emulator.request_rate()
    assert seen["throttled"] >= 1 and seen["requests"] == 4 + seen["throttled"]

    from databricks.sdk.errors import _Parser

    from airflow_provider_lakeflow._engine.responses import RawResponse, _as_requests_response

    request = urllib.request.Request(
        f"{lakeflow_emulator.url}/api/2.0/pipelines/{created.pipeline_id}",
        headers={"Authorization": "Bearer emulator-token"},
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        for _ in range(3):
            urllib.request.urlopen(request, timeout=5).close()
    raw = RawResponse(
        429, "Too Many Requests", dict(answer.value.headers), answer.value.read(), request.full_url, "GET"
    )
    error = _Parser().get_api_error(_as_requests_response(raw))
    assert isinstance(error, TooManyRequests) and error.error_code == "REQUEST_LIMIT_EXCEEDED"
    assert error.retry_after_secs >= 1


def test_emulator_cli_rate_limit() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_lakeflow.testing.emulator", "--port", "0", "--rate-limit", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = next(line.split()[-1] for line in proc.stdout if "listening on" in line)
        request = urllib.request.Request(f"{url}/api/2.0/pipelines", headers={"Authorization": "Bearer emulator-token"})
        codes = []
        for _ in range(3):
            try:
                urllib.request.urlopen(request, timeout=5).close()
                codes.append(200)
            except urllib.error.HTTPError as err:
                codes.append(err.code)
                assert err.headers["Retry-After"] == "1"
        assert codes == [200, 429, 429]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("value", [0, -1, "fast", True, None])
def test_max_requests_per_second_must_be_positive(value: Any) -> None:
    with pytest.raises(ConnectionConfigError, match="max_requests_per_second") as err:
        settings_from_connection(
            "c",
            host="https://x.cloud.databricks.com",
            login=None,
            password="t",
            extra={"max_requests_per_second": value},
            known_attributes=frozenset(),
        )
    assert "Fix" in str(err.value)


def test_max_requests_per_second_is_read() -> None:
    settings = settings_from_connection(
        "c",
        host="https://x.cloud.databricks.com",
        login=None,
        password="t",
        extra={"max_requests_per_second": "12.5"},
        known_attributes=frozenset(),
    )
    assert budget.gate_for(settings).limit == 12.5


# ------------------------------------------------------------------------------------------- process-wide caches
def test_rotated_secrets_do_not_pile_up_in_the_credential_cache() -> None:

    def settings(conn_id: str, secret: str) -> Any:
        return settings_from_connection(
            conn_id,
            host="https://x.cloud.databricks.com",
            login=None,
            password=secret,
            extra=None,
            known_attributes=frozenset(),
        )

    transport._CREDENTIALS.clear()
    first = transport.credentials_for(settings("rotating", "secret-1"))
    assert transport.credentials_for(settings("rotating", "secret-1")) is first
    for i in range(2, 50):
        rotated = transport.credentials_for(settings("rotating", f"secret-{i}"))
    assert list(transport._CREDENTIALS) == ["rotating"] and rotated.settings.secrets == ("secret-49",)
    for i in range(transport.MAX_CACHED_CONNECTIONS + 10):
        transport.credentials_for(settings(f"conn-{i}", "s"))
    assert len(transport._CREDENTIALS) == transport.MAX_CACHED_CONNECTIONS
    transport._CREDENTIALS.clear()


def test_poll_ticks_wake_sleepers_together_never_early_and_cancel_alone() -> None:
    """Pollers' scheduled sleeps share one timer per tick; a cancelled wait cancels nobody else's sleep."""
    from airflow_provider_lakeflow._engine.poll_schedule import TICK_SECONDS, PollTicks

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ticks = PollTicks(loop)
        timers_before = len(loop._scheduled)  # type: ignore[attr-defined]
        started = loop.time()
        futures = [ticks.sleep(0.1 + (i % 5) * 0.001) for i in range(500)]  # all due within one or two ticks
        assert len(loop._scheduled) - timers_before <= 2  # type: ignore[attr-defined]
        futures[0].cancel()
        woke: list[float] = []
        for future in futures[1:]:
            future.add_done_callback(lambda _f: woke.append(loop.time()))
        await asyncio.gather(*futures[1:])
        assert len(woke) == 499 and min(woke) >= started + 0.1
        assert futures[0].cancelled() and not any(f.cancelled() for f in futures[1:])
        assert not ticks._due  # nothing left behind
        assert TICK_SECONDS <= 0.05

    asyncio.run(main())
