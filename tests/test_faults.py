"""A fault matrix over starting an update (POST .../updates) and polling it (GET .../updates/{id}).

Each fault runs through the sync path (``hook.run``) and the async path (``hook.arun`` for the start, then the
trigger's first event), and some through ``LakeflowRunPipelineOperator`` in a DAG (``dag.test``). Every run must end in
success having started EXACTLY ONE update, however the start request was mangled (a lost response included).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook
from airflow_provider_lakeflow.triggers import LakeflowPipelineUpdateTrigger
from airflow_provider_lakeflow.workspace import operations
from airflow_provider_lakeflow.workspace.waiting import wait_for_update

START_PATH = r"^/api/2\.0/pipelines/[^/]+/updates$"
POLL_PATH = r"^/api/2\.0/pipelines/[^/]+/updates/[^/]+$"
TOKEN_PATH = r"^/oidc/v1/token$"
PIPELINE_PATH = r"^/api/2\.0/pipelines/[^/]+$"
HTTP_TIMEOUT = 1  # seconds, the connection's http_timeout_seconds
PHASE = 0.05  # seconds per emulated update phase: an update takes ~0.25 s
POLL = 0.1
PERSIST_SECONDS = 2.5  # a fault that outlasts the 1 s retry budget of the tests below
log = logging.getLogger("test_faults")

SPEC = {
    "name": "faults-pipeline",
    "ingestion_definition": {
        "connection_name": "salesforce_conn",
        "objects": [
            {
                "table": {
                    "source_schema": "objects",
                    "source_table": "Account",
                    "destination_catalog": "main",
                    "destination_schema": "sales",
                }
            }
        ],
    },
}

# name -> (inject_fault kwargs, or "expire" for a 401 after the OAuth token was revoked)
FAULTS: dict[str, dict[str, Any] | str] = {
    "429-retry-after": {"kind": "status", "status": 429, "retry_after": 1},
    "500": {"kind": "status", "status": 500},
    "503": {"kind": "status", "status": 503},
    # A gateway's 5xx after the backend acted: the start took effect although the client saw an error.
    "500-after": {"kind": "status", "status": 500, "when": "after"},
    "503-after": {"kind": "status", "status": 503, "when": "after"},
    "drop-before": {"kind": "drop", "when": "before"},
    "drop-after": {"kind": "drop", "when": "after"},
    "slow-before": {"kind": "slow", "delay": HTTP_TIMEOUT + 0.5, "when": "before"},
    "slow-after": {"kind": "slow", "delay": HTTP_TIMEOUT + 0.5, "when": "after"},
    "401-token-expired": "expire",
}


def _extra(retry_timeout: int = 30) -> str:
    return json.dumps({"http_timeout_seconds": HTTP_TIMEOUT, "retry_timeout_seconds": retry_timeout})


@pytest.fixture
def emulator(lakeflow_emulator: Any, lakeflow_emulator_m2m_conn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """PAT ``databricks_default`` and OAuth M2M ``databricks_m2m``, both with a 1 s HTTP timeout."""
    for conn_id, auth in (
        ("DATABRICKS_DEFAULT", {"password": "emulator-token"}),
        ("DATABRICKS_M2M", {"login": "emulator-client", "password": "emulator-secret"}),
    ):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id}",
            json.dumps({"conn_type": "lakeflow", "host": lakeflow_emulator.url, "extra": _extra(), **auth}),
        )
    lakeflow_emulator.set_default_script(phase_seconds=PHASE)
    yield lakeflow_emulator
    # A slow request that the client gave up on is still in the server: let it end (and be logged) before the
    # next test resets the emulator, or it would land in that test's request log.
    if _SLOW_UNTIL:
        time.sleep(max(0.0, max(_SLOW_UNTIL) - time.time()))
        _SLOW_UNTIL.clear()


def conn_for(fault: dict[str, Any] | str) -> str:
    return "databricks_m2m" if fault == "expire" else "databricks_default"


def new_pipeline(emulator: Any, conn_id: str = "databricks_default", **script: Any) -> str:
    pipeline_id = LakeflowHook(conn_id).run(operations.create_pipeline(SPEC))
    if script:
        emulator.script_pipeline(pipeline_id, **script)
    emulator.clear_requests()
    return pipeline_id


_SLOW_UNTIL: list[float] = []


def inject(emulator: Any, fault: dict[str, Any] | str, path: str, method: str, count: int = 1) -> None:
    if fault == "expire":
        emulator.expire_tokens()
        return
    assert isinstance(fault, dict)
    if fault["kind"] == "slow":
        _SLOW_UNTIL.append(time.time() + count * fault["delay"] + 0.5)
    emulator.inject_fault(path, method=method, count=count, **fault)


@pytest.fixture
def later() -> Iterator[Callable[[float, Callable[[], Any]], None]]:
    """Run a control call from another thread after a delay (works for both the sync and the async path)."""
    timers: list[threading.Timer] = []

    def schedule(delay: float, fn: Callable[[], Any]) -> None:
        timer = threading.Timer(delay, fn)
        timers.append(timer)
        timer.start()

    yield schedule
    for timer in timers:
        timer.cancel()
        timer.join()


# --- the two paths


def sync_start(conn_id: str, pipeline_id: str, before_start: Callable[[], None] = lambda: None) -> str:
    hook = LakeflowHook(conn_id)
    known = operations.update_ids(hook.run(operations.get_pipeline(pipeline_id)))
    before_start()
    return hook.run(operations.start_update(pipeline_id, known_update_ids=known))


def sync_wait(conn_id: str, pipeline_id: str, update_id: str, timeout: float = 60) -> dict[str, Any]:
    hook = LakeflowHook(conn_id)
    outcome = hook.run(
        wait_for_update(
            pipeline_id, update_id, host=hook.host, poll_interval=POLL, end_time=time.time() + timeout, log=log
        )
    )
    return outcome.as_event()


async def _trigger_event(trigger: LakeflowPipelineUpdateTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def trigger_wait(conn_id: str, pipeline_id: str, update_id: str, timeout: float = 60) -> dict[str, Any]:
    trigger = LakeflowPipelineUpdateTrigger(
        pipeline_id=pipeline_id,
        update_id=update_id,
        databricks_conn_id=conn_id,
        poll_interval=POLL,
        end_time=time.time() + timeout,
    )
    return asyncio.run(_trigger_event(trigger))


def async_start_and_wait(conn_id: str, pipeline_id: str, before_start: Callable[[], None]) -> tuple[str, dict]:
    """The start through ``hook.arun`` (aiohttp), then the trigger, all in one event loop."""

    async def main() -> tuple[str, dict]:
        hook = LakeflowHook(conn_id)
        async with hook.session_scope():
            known = operations.update_ids(await hook.arun(operations.get_pipeline(pipeline_id)))
            before_start()
            update_id = await hook.arun(operations.start_update(pipeline_id, known_update_ids=known))
            trigger = LakeflowPipelineUpdateTrigger(
                pipeline_id=pipeline_id,
                update_id=update_id,
                databricks_conn_id=conn_id,
                poll_interval=POLL,
                end_time=time.time() + 60,
            )
            return update_id, await _trigger_event(trigger)

    return asyncio.run(main())


# --- assertions


def assert_exactly_one_update(emulator: Any, pipeline_id: str, update_id: str) -> None:
    updates = emulator.updates(pipeline_id)
    assert [u["update_id"] for u in updates] == [update_id], updates
    assert updates[0]["state"] == "COMPLETED"
    processed = [r for r in emulator.requests(START_PATH, "POST") if r.status == 200]
    assert len(processed) <= 1, processed  # a dropped-after start is processed but recorded with status 0


def assert_fault_fired(emulator: Any, fault: dict[str, Any] | str, path: str, method: str) -> None:
    seen = emulator.requests(path, method)
    if fault == "expire":
        assert any(r.status == 401 for r in seen), seen
        assert emulator.requests(TOKEN_PATH, "POST"), "no token refresh after the 401"
        return
    assert isinstance(fault, dict)
    if fault["kind"] == "status":
        bad = [i for i, r in enumerate(seen) if r.status == fault["status"]]
        assert bad, seen
        if fault.get("retry_after"):
            i = bad[0]
            assert i + 1 < len(seen), "no retry after the 429"
            gap = seen[i + 1].time - seen[i].time
            assert gap >= fault["retry_after"], (
                f"retried {gap:.2f}s after a 429 with Retry-After {fault['retry_after']}"
            )
    elif fault["kind"] == "drop":
        assert any(r.status == 0 for r in seen), seen
    else:
        # slow: the client gave up on the slow answer and asked again, or (a start) looked up the pipeline to find
        # the update its lost request may have started. The slow request itself is logged when it ends.
        def next_steps() -> int:
            again = len(emulator.requests(path, method)) - 1
            lookups = len(emulator.requests(PIPELINE_PATH, "GET")) - 1 if path == START_PATH else 0
            return again + lookups

        deadline = time.monotonic() + fault["delay"] + 2
        while next_steps() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert next_steps() >= 1, emulator.requests()


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture) -> str:
    """Log lines from stdlib logging and, on Airflow 3, from the trigger's structlog logger (written to stdout)."""
    captured = capsys.readouterr()
    return caplog.text + captured.out + captured.err


def assert_success(event: dict[str, Any], pipeline_id: str, update_id: str) -> None:
    assert event["status"] == "success", event
    assert event["state"] == "COMPLETED"
    assert (event["pipeline_id"], event["update_id"]) == (pipeline_id, update_id)


# --- the matrix

MATRIX = pytest.mark.parametrize("fault", list(FAULTS.values()), ids=list(FAULTS))


@MATRIX
def test_start_fault_sync(emulator: Any, fault: dict[str, Any] | str) -> None:
    conn_id = conn_for(fault)
    pipeline_id = new_pipeline(emulator, conn_id)
    update_id = sync_start(conn_id, pipeline_id, lambda: inject(emulator, fault, START_PATH, "POST"))
    event = sync_wait(conn_id, pipeline_id, update_id)
    assert_success(event, pipeline_id, update_id)
    assert_fault_fired(emulator, fault, START_PATH, "POST")
    assert_exactly_one_update(emulator, pipeline_id, update_id)


@MATRIX
def test_start_fault_async(emulator: Any, fault: dict[str, Any] | str) -> None:
    conn_id = conn_for(fault)
    pipeline_id = new_pipeline(emulator, conn_id)
    update_id, event = async_start_and_wait(conn_id, pipeline_id, lambda: inject(emulator, fault, START_PATH, "POST"))
    assert_success(event, pipeline_id, update_id)
    assert_fault_fired(emulator, fault, START_PATH, "POST")
    assert_exactly_one_update(emulator, pipeline_id, update_id)


def _poll_fault_setup(emulator: Any, fault: dict[str, Any] | str, later: Callable) -> tuple[str, str, str]:
    conn_id = conn_for(fault)
    # A token revoked mid-wait needs an update that is still running when it happens.
    pipeline_id = new_pipeline(emulator, conn_id, phase_seconds=0.2 if fault == "expire" else PHASE)
    update_id = sync_start(conn_id, pipeline_id)
    if fault == "expire":
        later(0.35, emulator.expire_tokens)
    else:
        inject(emulator, fault, POLL_PATH, "GET")
    return conn_id, pipeline_id, update_id


@MATRIX
def test_poll_fault_sync(emulator: Any, later: Callable, fault: dict[str, Any] | str) -> None:
    conn_id, pipeline_id, update_id = _poll_fault_setup(emulator, fault, later)
    event = sync_wait(conn_id, pipeline_id, update_id)
    assert_success(event, pipeline_id, update_id)
    assert_fault_fired(emulator, fault, POLL_PATH, "GET")
    assert_exactly_one_update(emulator, pipeline_id, update_id)


@MATRIX
def test_poll_fault_trigger(emulator: Any, later: Callable, fault: dict[str, Any] | str) -> None:
    conn_id, pipeline_id, update_id = _poll_fault_setup(emulator, fault, later)
    event = trigger_wait(conn_id, pipeline_id, update_id)
    assert_success(event, pipeline_id, update_id)
    assert_fault_fired(emulator, fault, POLL_PATH, "GET")
    assert_exactly_one_update(emulator, pipeline_id, update_id)


# --- beyond the retry budget


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 503},
        {"kind": "status", "status": 500},
        {"kind": "drop"},
        {"kind": "status", "status": 429, "retry_after": 1},
    ],
    ids=["503", "500", "drop", "429"],
)
def test_trigger_polls_through_faults_that_outlast_the_retry_budget(
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture,
    later: Callable,
    fault: dict[str, Any],
) -> None:
    """With a 1 s retry budget, a fault that lasts 2.5 s makes the request layer give up at least once; the trigger
    logs it and keeps polling until the update ends, never reporting the fault as the task's failure."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATABRICKS_DEFAULT",
        json.dumps(
            {
                "conn_type": "lakeflow",
                "host": emulator.url,
                "password": "emulator-token",
                "extra": _extra(retry_timeout=1),
            }
        ),
    )
    pipeline_id = new_pipeline(emulator)
    update_id = sync_start("databricks_default", pipeline_id)
    emulator.inject_fault(POLL_PATH, method="GET", count=None, **fault)
    later(PERSIST_SECONDS, emulator.clear_faults)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        event = trigger_wait("databricks_default", pipeline_id, update_id)
    assert_success(event, pipeline_id, update_id)
    assert time.monotonic() - started >= PERSIST_SECONDS
    polls = emulator.requests(POLL_PATH, "GET")
    assert len([r for r in polls if r.status != 200]) >= 2
    assert "polling again" in logged(caplog, capsys)  # the budget ran out at least once and the wait carried on
    assert_exactly_one_update(emulator, pipeline_id, update_id)


def test_sync_wait_polls_through_faults_that_outlast_the_retry_budget(
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture,
    later: Callable,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATABRICKS_DEFAULT",
        json.dumps(
            {
                "conn_type": "lakeflow",
                "host": emulator.url,
                "password": "emulator-token",
                "extra": _extra(retry_timeout=1),
            }
        ),
    )
    pipeline_id = new_pipeline(emulator)
    update_id = sync_start("databricks_default", pipeline_id)
    emulator.inject_fault(POLL_PATH, method="GET", count=None, status=503)
    later(PERSIST_SECONDS, emulator.clear_faults)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        event = sync_wait("databricks_default", pipeline_id, update_id)
    assert_success(event, pipeline_id, update_id)
    assert time.monotonic() - started >= PERSIST_SECONDS
    assert "polling again" in logged(caplog, capsys)
    assert_exactly_one_update(emulator, pipeline_id, update_id)


# --- permanent errors


def test_pipeline_deleted_gives_an_error_event(emulator: Any) -> None:
    pipeline_id = new_pipeline(emulator, phase_seconds=5)
    update_id = sync_start("databricks_default", pipeline_id)
    LakeflowHook().run(operations.delete_pipeline(pipeline_id))
    started = time.monotonic()
    event = trigger_wait("databricks_default", pipeline_id, update_id)
    assert event["status"] == "error", event
    assert (event["pipeline_id"], event["update_id"]) == (pipeline_id, update_id)
    assert "NotFound" in event["message"] or "does not exist" in event["message"]
    assert time.monotonic() - started < 5, "a 404 must not be retried"
    assert [r.status for r in emulator.requests(POLL_PATH, "GET")] == [404]


def test_pipeline_deleted_mid_wait_gives_an_error_event(emulator: Any, later: Callable) -> None:
    pipeline_id = new_pipeline(emulator, phase_seconds=5)
    update_id = sync_start("databricks_default", pipeline_id)
    later(0.3, lambda: emulator.workspace.api_delete_pipeline(pipeline_id))
    event = trigger_wait("databricks_default", pipeline_id, update_id)
    assert event["status"] == "error", event
    polls = emulator.requests(POLL_PATH, "GET")
    assert polls[0].status == 200 and polls[-1].status == 404


def test_pipeline_deleted_fails_the_sync_wait(emulator: Any) -> None:
    from databricks.sdk.errors import NotFound

    pipeline_id = new_pipeline(emulator, phase_seconds=5)
    update_id = sync_start("databricks_default", pipeline_id)
    LakeflowHook().run(operations.delete_pipeline(pipeline_id))
    with pytest.raises(NotFound):
        sync_wait("databricks_default", pipeline_id, update_id)
    assert len(emulator.requests(POLL_PATH, "GET")) == 1


# --- unknown state


@pytest.fixture
def unknown_state(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The emulator cannot script a state it does not know, so its GetUpdate is wrapped: the first 3 polls of an
    update report a state that databricks-sdk has no enum value for."""
    state = "WAITING_FOR_A_NEW_KIND_OF_RESOURCE"
    original = emulator.workspace.api_get_update
    calls = {"n": 0}

    def api_get_update(pipeline_id: str, update_id: str) -> dict[str, Any]:
        result = original(pipeline_id, update_id)
        calls["n"] += 1
        if calls["n"] <= 3:
            result["update"]["state"] = state
        return result

    monkeypatch.setattr(emulator.workspace, "api_get_update", api_get_update)
    return state


@pytest.mark.parametrize("path", ["sync", "trigger"])
def test_unknown_state_is_waited_through_and_logged_raw(
    emulator: Any, unknown_state: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture, path: str
) -> None:
    pipeline_id = new_pipeline(emulator, phase_seconds=0.01)  # terminal long before the wrapper stops lying
    update_id = sync_start("databricks_default", pipeline_id)
    with caplog.at_level(logging.INFO):
        wait = sync_wait if path == "sync" else trigger_wait
        event = wait("databricks_default", pipeline_id, update_id)
    assert_success(event, pipeline_id, update_id)
    assert len(emulator.requests(POLL_PATH, "GET")) == 4  # three unknown, then COMPLETED
    captured = capsys.readouterr()
    # Logged raw, as the server sent it, and once on the change, not once per poll (the same line may reach both
    # stdlib logging and stdout, so each channel is counted on its own).
    counts = [text.count(f"reports state {unknown_state!r}") for text in (caplog.text, captured.out + captured.err)]
    assert max(counts) == 1, counts


def test_unknown_state_until_the_deadline_times_out(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An update stuck in an unknown state is never waited on forever: the deadline ends the wait."""
    original = emulator.workspace.api_get_update

    def always_unknown(pipeline_id: str, update_id: str) -> dict[str, Any]:
        result = original(pipeline_id, update_id)
        result["update"]["state"] = "SOMETHING_NEW"
        return result

    monkeypatch.setattr(emulator.workspace, "api_get_update", always_unknown)
    pipeline_id = new_pipeline(emulator)
    update_id = sync_start("databricks_default", pipeline_id)
    event = trigger_wait("databricks_default", pipeline_id, update_id, timeout=0.5)
    assert event["status"] == "timeout", event
    assert event["state"] == "SOMETHING_NEW"


# --- through a DAG

DAG_FAULTS = {
    "start-drop-after": ("faults_run_sync", START_PATH, "POST", FAULTS["drop-after"]),
    "start-500": ("faults_run_deferrable", START_PATH, "POST", FAULTS["500"]),
    "poll-429": ("faults_run_deferrable", POLL_PATH, "GET", FAULTS["429-retry-after"]),
    "poll-slow": ("faults_run_sync", POLL_PATH, "GET", FAULTS["slow-after"]),
}


@pytest.mark.parametrize(("dag_id", "path", "method", "fault"), list(DAG_FAULTS.values()), ids=list(DAG_FAULTS))
def test_fault_through_run_operator_in_a_dag(
    airflow_db: Any, emulator: Any, dag_id: str, path: str, method: str, fault: dict[str, Any]
) -> None:
    from conftest import load_dag

    pipeline_id = new_pipeline(emulator)
    inject(emulator, fault, path, method)
    dag = load_dag(dag_id)
    dag_run = dag.test(run_conf={"pipeline_id": pipeline_id})
    assert dag_run.state == "success"
    updates = emulator.updates(pipeline_id)
    assert len(updates) == 1, updates
    assert updates[0]["state"] == "COMPLETED"
    assert_fault_fired(emulator, fault, path, method)


# --- creating a UC connection: a lost or 5xx'd response is reconciled, not created twice


@pytest.mark.parametrize(
    "fault",
    [FAULTS["503-after"], FAULTS["500-after"], FAULTS["drop-after"], FAULTS["drop-before"], FAULTS["503"]],
    ids=["503-after", "500-after", "drop-after", "drop-before", "503-before"],
)
def test_create_connection_fault_creates_exactly_one(emulator: Any, fault: dict[str, Any]) -> None:
    body = {
        "name": "pg_conn",
        "connection_type": "POSTGRESQL",
        "options": {"host": "db.example.com", "port": "5432", "user": "u", "password": "p"},
    }
    inject(emulator, fault, r"^/api/2\.1/unity-catalog/connections$", "POST")
    created = LakeflowHook().run(operations.create_connection(body))
    assert created["name"] == "pg_conn"
    assert emulator.connection("pg_conn")["name"] == "pg_conn"
    posts = emulator.requests(r"^/api/2\.1/unity-catalog/connections$", "POST")
    assert [r.status for r in posts].count(200) <= 1, posts
