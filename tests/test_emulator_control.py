# ruff: noqa: F811  (fixtures imported from the plugin module, so the tests run without the pytest11 entry point)
"""Fault injection, the request log, the HTTP control client, the CLI, the pytest fixtures and import cost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp
import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.errors import InternalError, ResourceAlreadyExists

from airflow_provider_lakeflow.testing import EmulatorClient, LakeflowEmulator
from airflow_provider_lakeflow.testing.emulator import ApiError
from airflow_provider_lakeflow.testing.emulator.control import ControlMethods
from airflow_provider_lakeflow.testing.emulator.control_ops import CONTROL_OPS, DELEGATED
from airflow_provider_lakeflow.testing.emulator.workspace import Workspace
from airflow_provider_lakeflow.testing.pytest_plugin import (  # noqa: F401  (fixtures)
    lakeflow_emulator,
    lakeflow_emulator_m2m_conn,
    lakeflow_emulator_server,
)

PAT = {"Authorization": "Bearer emulator-token"}


def client(url: str) -> WorkspaceClient:
    return WorkspaceClient(config=Config(host=url, token="emulator-token", retry_timeout_seconds=20))


def test_429_with_retry_after_is_retried_by_the_sdk(lakeflow_emulator: Any) -> None:
    w = client(lakeflow_emulator.url)
    lakeflow_emulator.inject_fault(r"^/api/2\.0/pipelines$", method="GET", status=429, retry_after=1, count=1)
    start = time.monotonic()
    assert list(w.pipelines.list_pipelines()) == []
    assert time.monotonic() - start >= 1.0
    attempts = lakeflow_emulator.requests(r"^/api/2\.0/pipelines$")
    assert [r.status for r in attempts] == [429, 200]


def test_status_faults_bodies_and_headers(lakeflow_emulator: Any) -> None:
    url = lakeflow_emulator.url + "/api/2.0/pipelines"
    lakeflow_emulator.inject_fault("pipelines", status=429, retry_after=7)
    r = requests.get(url, headers=PAT)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    lakeflow_emulator.inject_fault("pipelines", status=503, count=2)
    assert [requests.get(url, headers=PAT).json()["error_code"] for _ in range(2)] == ["TEMPORARILY_UNAVAILABLE"] * 2
    assert requests.get(url, headers=PAT).status_code == 200
    lakeflow_emulator.inject_fault("pipelines", status=500, count=None)
    with pytest.raises(InternalError):
        client(lakeflow_emulator.url).pipelines.get("x")  # 500 is not retried
    lakeflow_emulator.clear_faults()
    assert requests.get(url, headers=PAT).status_code == 200
    lakeflow_emulator.inject_fault("oidc/v1/token", status=503)
    assert requests.post(lakeflow_emulator.url + "/oidc/v1/token").status_code == 503


def test_drop_before_raises_connection_errors(lakeflow_emulator: Any) -> None:
    url = lakeflow_emulator.url + "/api/2.0/pipelines"
    lakeflow_emulator.inject_fault("pipelines", kind="drop")
    with pytest.raises(requests.ConnectionError):
        requests.get(url, headers=PAT)
    assert lakeflow_emulator.requests("pipelines")[-1].status == 0
    lakeflow_emulator.inject_fault("pipelines", kind="drop", count=None)

    async def fetch() -> None:
        async with aiohttp.ClientSession() as s, s.get(url, headers=PAT) as resp:
            await resp.read()

    import asyncio

    with pytest.raises(aiohttp.ServerDisconnectedError):
        asyncio.run(fetch())


def test_drop_after_a_post_that_succeeded(lakeflow_emulator: Any) -> None:
    """The response to a create is lost; the SDK retries the POST and meets the pipeline it already made."""
    lakeflow_emulator.inject_fault(r"^/api/2\.0/pipelines$", method="POST", kind="drop", when="after")
    w = client(lakeflow_emulator.url)
    with pytest.raises(ResourceAlreadyExists):
        w.pipelines.create(name="lost-response")
    assert [p["name"] for p in lakeflow_emulator.pipelines()] == ["lost-response"]
    assert [r.status for r in lakeflow_emulator.requests("pipelines", method="POST")] == [0, 409]


def test_slow_before_and_after(lakeflow_emulator: Any) -> None:
    url = lakeflow_emulator.url + "/api/2.0/pipelines"
    lakeflow_emulator.inject_fault("pipelines", kind="slow", delay=0.3)
    with pytest.raises(requests.Timeout):
        requests.get(url, headers=PAT, timeout=0.1)
    lakeflow_emulator.inject_fault("pipelines", kind="slow", delay=0.15, when="after", method="POST")
    start = time.monotonic()
    assert requests.post(url, headers=PAT, json={"name": "slow"}).status_code == 200
    assert time.monotonic() - start >= 0.15


def test_request_log(lakeflow_emulator: Any) -> None:
    w = WorkspaceClient(
        host=lakeflow_emulator.url, token="emulator-token", product="lakeflow-test", product_version="1.2.3"
    )
    lakeflow_emulator.clear_requests()
    pid = w.pipelines.create(name="logged").pipeline_id
    list(w.pipelines.list_pipeline_events(pid, filter="level='INFO'", order_by=["timestamp asc"]))
    # This client's requests (the session's emulator may also hear a poll another test left running).
    create, events = [r for r in lakeflow_emulator.requests() if r.user_agent.startswith("lakeflow-test/1.2.3 ")]
    assert (create.method, create.path, create.body, create.status, create.auth) == (
        "POST",
        "/api/2.0/pipelines",
        {"name": "logged"},
        200,
        "pat",
    )
    assert create.user_agent.startswith("lakeflow-test/1.2.3 databricks-sdk-py/")
    assert events.query == {"filter": "level='INFO'", "order_by": "timestamp asc"} and events.method == "GET"
    assert "emulator-token" not in repr(lakeflow_emulator.requests())
    assert lakeflow_emulator.requests(method="DELETE") == []


def test_every_control_operation_is_implemented_once() -> None:
    for op in CONTROL_OPS:
        own = getattr(Workspace, op) is not getattr(ControlMethods, op)
        assert own != (op in DELEGATED), op


def test_http_client_shares_the_interface(lakeflow_emulator: Any) -> None:
    ops = {name for name in vars(ControlMethods) if not name.startswith("_")}
    assert ops == set(CONTROL_OPS)
    assert all(callable(getattr(Workspace, op)) for op in CONTROL_OPS)

    c = EmulatorClient(lakeflow_emulator.url)
    w = WorkspaceClient(host=lakeflow_emulator.url, token="emulator-token")
    pid = w.pipelines.create(name="remote").pipeline_id
    c.script_pipeline("remote", phase_seconds=0.01, outcome="FAILED", error_message="boom")
    uid = c.start_update_externally(pid)
    deadline = time.monotonic() + 5
    while c.update(pid, uid)["state"] not in ("FAILED", "COMPLETED") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert c.update(pid, uid)["state"] == "FAILED" and c.updates(pid)[0]["cause"] == "USER_ACTION"
    assert c.pipeline("remote")["cause"] == "boom"
    assert [e["level"] for e in c.events(pid, uid)].count("ERROR") == 1  # no tables: only the update fails
    assert c.events(pid)[-1]["error"]["exceptions"][0]["message"] == "boom"
    reqs = c.requests("pipelines", method="POST")
    assert reqs[0].body == {"name": "remote"} and reqs[0].auth == "pat"
    c.inject_fault("remote-only", status=503)
    c.clear_faults()
    c.create_connection_as_ui("sf", "SALESFORCE", {"client_id": "x"})
    c.set_connection_state("sf", "FAILED", "consent revoked")
    assert c.connection("sf")["provisioning_info"]["state"] == "FAILED"
    run_id = c.create_job_run(1)
    assert c.job_run(run_id)["run_id"] == run_id
    with pytest.raises(ApiError) as err:
        c.pipeline("nope")
    assert err.value.status == 404
    with pytest.raises(ApiError, match="outcome"):
        c.script_pipeline(pid, outcome="MAYBE")
    c.set_token_ttl(10)
    c.expire_tokens()
    c.reset()
    assert c.pipelines() == [] and c.requests() == []


async def test_runs_inside_a_running_loop() -> None:
    async with LakeflowEmulator(update_seconds=60) as emu, aiohttp.ClientSession() as s:
        async with s.post(emu.url + "/api/2.0/pipelines", json={"name": "a"}, headers=PAT) as resp:
            pid = (await resp.json())["pipeline_id"]
        async with s.post(f"{emu.url}/api/2.0/pipelines/{pid}/updates", json={}, headers=PAT) as resp:
            uid = (await resp.json())["update_id"]
        async with s.get(f"{emu.url}/api/2.0/pipelines/{pid}/updates/{uid}", headers=PAT) as resp:
            assert (await resp.json())["update"]["state"] == "QUEUED"
        assert emu.update(pid)["update_id"] == uid


def test_background_thread_lifecycle() -> None:
    emu = LakeflowEmulator(tokens=("t1", "t2"), clients={"id": "secret"}).start()
    try:
        assert requests.get(emu.url + "/api/2.0/pipelines", headers={"Authorization": "Bearer t2"}).ok
        assert requests.post(
            emu.url + "/oidc/v1/token", auth=("id", "secret"), data={"grant_type": "client_credentials"}
        ).ok
        with pytest.raises(OSError):
            LakeflowEmulator(port=emu.port).start()  # port in use: start() raises, no thread left behind
    finally:
        emu.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(emu.url + "/.well-known/databricks-config", timeout=1)


def test_cli_subprocess() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_lakeflow.testing.emulator",
            "--port",
            "0",
            "--token",
            "cli-token",
            "--client-id",
            "cli-id",
            "--client-secret",
            "cli-secret",
            "--update-seconds",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("Lakeflow emulator listening on http://127.0.0.1:")
        assert proc.stdout.readline().strip() == "READY"
        url = first.rsplit(" ", 1)[-1]
        w = WorkspaceClient(host=url, client_id="cli-id", client_secret="cli-secret", auth_type="oauth-m2m")
        pid = w.pipelines.create(name="cli").pipeline_id
        uid = w.pipelines.start_update(pid).update_id
        c = EmulatorClient(url)
        assert c.update(pid)["update_id"] == uid
        assert requests.get(url + "/api/2.0/pipelines", headers={"Authorization": "Bearer cli-token"}).ok
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_fixtures_set_airflow_connections(lakeflow_emulator: Any, lakeflow_emulator_m2m_conn: str) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_DATABRICKS_DEFAULT"])
    assert conn == {"conn_type": "lakeflow", "host": lakeflow_emulator.url, "password": "emulator-token"}
    assert lakeflow_emulator_m2m_conn == "databricks_m2m"
    m2m = json.loads(os.environ["AIRFLOW_CONN_DATABRICKS_M2M"])
    assert (m2m["login"], m2m["password"], m2m["host"]) == ("emulator-client", "emulator-secret", lakeflow_emulator.url)


def test_imports_are_light() -> None:
    code = (
        "import sys, time; t = time.perf_counter();"
        "import airflow_provider_lakeflow.testing, airflow_provider_lakeflow.testing.pytest_plugin,"
        " airflow_provider_lakeflow.testing.emulator;"
        "t = time.perf_counter() - t;"
        "heavy = [m for m in ('aiohttp', 'databricks.sdk', 'airflow') if m in sys.modules];"
        "print(heavy, t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "[]", out
