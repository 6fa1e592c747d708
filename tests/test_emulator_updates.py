# ruff: noqa: F811  (fixtures imported from the plugin module, so the tests run without the pytest11 entry point)
"""The update state machine and event log: on a fake clock (exact) and through the SDK over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, ResourceConflict
from databricks.sdk.service import pipelines as P

from airflow_provider_lakeflow.testing.emulator.workspace import Workspace
from airflow_provider_lakeflow.testing.pytest_plugin import (  # noqa: F401  (fixtures)
    lakeflow_emulator,
    lakeflow_emulator_server,
)

PHASES = {
    "QUEUED": 1,
    "WAITING_FOR_RESOURCES": 1,
    "INITIALIZING": 1,
    "SETTING_UP_TABLES": 1,
    "RUNNING": 1,
    "STOPPING": 1,
}
FAST = dict.fromkeys(PHASES, 0.03)


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def ingestion(objects: list[dict[str, Any]], **definition: Any) -> dict[str, Any]:
    return {"name": "p", "ingestion_definition": {"connection_name": "conn", "objects": objects, **definition}}


def table(src: str, dest: str | None = None, schema: str = "bronze") -> dict[str, Any]:
    spec = {"source_schema": "dbo", "source_table": src, "destination_catalog": "main", "destination_schema": schema}
    if dest:
        spec["destination_table"] = dest
    return {"table": spec}


@pytest.fixture
def ws() -> tuple[Workspace, Clock]:
    clock = Clock()
    workspace = Workspace(now=clock)
    workspace.set_default_script(phase_seconds=PHASES)
    return workspace, clock


def test_phases_on_the_clock(ws: tuple[Workspace, Clock]) -> None:
    w, clock = ws
    pid = w.api_create_pipeline(ingestion([table("orders"), table("items", "line_items")]), "u")["pipeline_id"]
    uid = w.api_start_update(pid, {})["update_id"]
    seen = []
    for _ in range(7):
        seen.append(w.api_get_update(pid, uid)["update"]["state"])
        clock.t += 1
    assert seen == [
        "QUEUED",
        "WAITING_FOR_RESOURCES",
        "INITIALIZING",
        "SETTING_UP_TABLES",
        "RUNNING",
        "COMPLETED",
        "COMPLETED",
    ]
    events = w.events(pid)
    kinds = [
        (e["event_type"], e["details"].get("update_progress", e["details"].get("flow_progress", {}))) for e in events
    ]
    assert kinds[0][0] == "create_update"
    assert [k[1]["state"] for k in kinds if k[0] == "update_progress"] == seen[:6]
    flow_events = [e for e in events if e["event_type"] == "flow_progress"]
    assert [(e["origin"]["flow_name"], e["details"]["flow_progress"]["status"]) for e in flow_events] == [
        ("main.bronze.orders", "QUEUED"),
        ("main.bronze.line_items", "QUEUED"),
        ("main.bronze.orders", "RUNNING"),
        ("main.bronze.line_items", "RUNNING"),
        # partial batches a third and two thirds through RUNNING
        ("main.bronze.orders", "RUNNING"),
        ("main.bronze.line_items", "RUNNING"),
        ("main.bronze.orders", "RUNNING"),
        ("main.bronze.line_items", "RUNNING"),
        ("main.bronze.orders", "COMPLETED"),
        ("main.bronze.line_items", "COMPLETED"),
    ]
    rows = [e["details"]["flow_progress"].get("metrics", {}).get("num_output_rows") for e in flow_events[::2]]
    assert rows[0] is None and rows[1] is None  # QUEUED, RUNNING (no batch yet)
    assert 0 < rows[2] < rows[3] < rows[4]  # rows grow batch by batch up to the final count
    assert flow_events[-1]["origin"]["ingestion_source_table_name"] == "items"
    assert flow_events[-1]["details"]["flow_progress"]["metrics"]["num_output_rows"] >= 1000
    assert [e["sequence"]["control_plane_seq_no"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["timestamp"].endswith("Z") and len(events[0]["timestamp"]) == 24
    assert events[-1]["timestamp"] > events[0]["timestamp"]
    # events are materialized lazily and stay stable
    assert w.events(pid) == events


def test_failure_script_emits_error_events(ws: tuple[Workspace, Clock]) -> None:
    w, clock = ws
    pid = w.api_create_pipeline(ingestion([table("a"), table("b")]), "u")["pipeline_id"]
    w.script_pipeline(pid, outcome="FAILED", error_message="Source table dbo.a is gone.")
    uid = w.api_start_update(pid, {})["update_id"]
    clock.t += 10
    assert w.api_get_update(pid, uid)["update"]["state"] == "FAILED"
    got = w.api_get_pipeline(pid)
    assert got["health"] == "UNHEALTHY" and got["cause"] == "Source table dbo.a is gone." and got["state"] == "IDLE"
    errors = [e for e in w.events(pid) if e["level"] == "ERROR"]
    assert [e["event_type"] for e in errors] == ["flow_progress", "update_progress"]
    assert errors[-1]["error"]["fatal"] is True
    assert errors[-1]["error"]["exceptions"][0]["message"] == "Source table dbo.a is gone."
    assert errors[0]["details"]["flow_progress"]["status"] == "FAILED"


def test_stop_goes_stopping_then_canceled(ws: tuple[Workspace, Clock]) -> None:
    w, clock = ws
    pid = w.api_create_pipeline(ingestion([table("a")]), "u")["pipeline_id"]
    uid = w.api_start_update(pid, {})["update_id"]
    clock.t += 4.5  # RUNNING
    w.api_stop(pid)
    assert w.api_get_update(pid, uid)["update"]["state"] == "STOPPING"
    assert w.api_get_pipeline(pid)["state"] == "STOPPING"
    clock.t += 1
    assert w.api_get_update(pid, uid)["update"]["state"] == "CANCELED"
    assert w.api_get_pipeline(pid)["state"] == "IDLE"
    tail = [(e["event_type"], e["message"]) for e in w.events(pid)][-3:]
    assert tail == [
        ("update_progress", f"Update {uid[:6]} is STOPPING."),
        ("flow_progress", "Flow 'main.bronze.a' has STOPPED."),
        ("update_progress", f"Update {uid[:6]} is CANCELED."),
    ]
    w.api_stop(pid)  # no-op
    assert w.api_start_update(pid, {})["update_id"] != uid


def test_conflict_external_start_and_delete(ws: tuple[Workspace, Clock]) -> None:
    w, _clock = ws
    pid = w.api_create_pipeline(ingestion([table("a")]), "u")["pipeline_id"]
    ext = w.start_update_externally(pid)
    assert w.update(pid)["cause"] == "USER_ACTION"
    with pytest.raises(Exception) as err:
        w.api_start_update(pid, {})
    assert getattr(err.value, "status", None) == 409 and ext in str(err.value)
    w.api_delete_pipeline(pid)
    with pytest.raises(Exception, match="does not exist"):
        w.api_get_pipeline(pid)


def test_selection_rules_and_schema_tables(ws: tuple[Workspace, Clock]) -> None:
    w, clock = ws
    objects = [
        table("a"),
        {"schema": {"source_schema": "Sales Objects", "destination_catalog": "main", "destination_schema": "sf"}},
        {
            "report": {
                "source_url": "https://x/ccx/My-Report?format=json",
                "destination_catalog": "main",
                "destination_schema": "wd",
            }
        },
    ]
    pid = w.api_create_pipeline(ingestion(objects), "u")["pipeline_id"]
    with pytest.raises(Exception, match="refresh_selection: table 'nope'"):
        w.api_start_update(pid, {"refresh_selection": ["nope"]})
    with pytest.raises(Exception, match="full_refresh"):
        w.api_start_update(pid, {"full_refresh": True, "full_refresh_selection": ["a"]})
    uid = w.api_start_update(pid, {})["update_id"]
    clock.t += 10
    names = sorted({e["origin"]["flow_name"] for e in w.events(pid, uid) if e["event_type"] == "flow_progress"})
    assert names == [
        "main.bronze.a",
        "main.sf.sales_objects_table_1",
        "main.sf.sales_objects_table_2",
        "main.sf.sales_objects_table_3",
        "main.wd.my_report",
    ]
    w.script_pipeline(pid, tables=["account", "other.cat.contact"], rows=5)
    uid2 = w.api_start_update(pid, {"refresh_selection": ["main.sf.account", "contact"]})["update_id"]
    clock.t += 10
    done = [e for e in w.events(pid, uid2) if e["details"].get("flow_progress", {}).get("status") == "COMPLETED"]
    assert {e["origin"]["flow_name"]: e["details"]["flow_progress"]["metrics"]["num_output_rows"] for e in done} == {
        "main.sf.account": 5,
        "other.cat.contact": 5,
    }


def test_validate_only_and_list_updates_paging(ws: tuple[Workspace, Clock]) -> None:
    w, clock = ws
    pid = w.api_create_pipeline(ingestion([table("a")]), "u")["pipeline_id"]
    ids = []
    for _ in range(5):
        ids.append(w.api_start_update(pid, {"validate_only": True})["update_id"])
        clock.t += 10
    assert not [e for e in w.events(pid) if e["event_type"] == "flow_progress"]
    first = w.api_list_updates(pid, 2, None, None)
    assert [u["update_id"] for u in first["updates"]] == ids[::-1][:2] and "prev_page_token" not in first
    second = w.api_list_updates(pid, 2, first["next_page_token"], None)
    assert [u["update_id"] for u in second["updates"]] == ids[::-1][2:4]
    back = w.api_list_updates(pid, 2, second["prev_page_token"], None)
    assert [u["update_id"] for u in back["updates"]] == ids[::-1][:2]
    until = w.api_list_updates(pid, 25, None, ids[3])
    assert [u["update_id"] for u in until["updates"]] == [ids[4], ids[3]]


def test_gateway_rule(ws: tuple[Workspace, Clock]) -> None:
    w, clock = ws
    body = {"name": "ingest", "ingestion_definition": {"ingestion_gateway_id": "missing", "objects": [table("a")]}}
    pid = w.api_create_pipeline(body, "u")["pipeline_id"]
    uid = w.api_start_update(pid, {})["update_id"]
    clock.t += 10
    assert w.api_get_update(pid, uid)["update"]["state"] == "FAILED"
    err = [e for e in w.events(pid) if e["level"] == "ERROR"][-1]
    assert "gateway pipeline missing does not exist" in err["error"]["exceptions"][0]["message"]

    gw = w.api_create_pipeline(
        {
            "name": "gw",
            "continuous": True,
            "gateway_definition": {
                "connection_name": "sql",
                "gateway_storage_catalog": "main",
                "gateway_storage_schema": "gw",
            },
        },
        "u",
    )
    gw_update = w.update(gw["pipeline_id"])
    assert gw_update["mode"] == "CONTINUOUS" and gw_update["state"] == "QUEUED"
    clock.t += 100
    assert w.update(gw["pipeline_id"])["state"] == "RUNNING"
    body["ingestion_definition"]["ingestion_gateway_id"] = gw["pipeline_id"]
    w.api_edit_pipeline(pid, body)
    uid = w.api_start_update(pid, {})["update_id"]
    clock.t += 10
    assert w.api_get_update(pid, uid)["update"]["state"] == "COMPLETED"
    w.api_stop(gw["pipeline_id"])
    clock.t += 10
    uid = w.api_start_update(pid, {})["update_id"]
    clock.t += 10
    assert w.api_get_update(pid, uid)["update"]["state"] == "FAILED"
    assert "has no running update" in w.api_get_pipeline(pid)["cause"]


def test_event_filters_and_paging(ws: tuple[Workspace, Clock]) -> None:
    w, clock = ws
    pid = w.api_create_pipeline(ingestion([table("a")]), "u")["pipeline_id"]
    w.script_pipeline(pid, outcome="FAILED")
    w.api_start_update(pid, {})
    clock.t += 10
    all_events = w.api_list_events(pid, None, 250, [], None)["events"]
    n = len(all_events)
    assert n == 13
    assert [e["level"] for e in w.api_list_events(pid, "level='ERROR'", 25, [], None)["events"]] == ["ERROR"] * 2
    assert len(w.api_list_events(pid, "level in ('ERROR', 'WARN')", 25, [], None)["events"]) == 2
    one = all_events[3]
    assert w.api_list_events(pid, f"id='{one['id']}'", 25, [], None)["events"] == [one]
    ts = all_events[5]["timestamp"]
    newer = w.api_list_events(pid, f"timestamp > '{ts}' AND level = 'INFO'", 25, [], None)["events"]
    assert newer and all(e["timestamp"] > ts and e["level"] == "INFO" for e in newer)
    # paging: newest first by default; the SDK re-sends filter/order_by with the token
    pages, token, seen = 0, None, []
    while True:
        page = w.api_list_events(pid, "level='INFO'", 3, ["timestamp asc"], token)
        seen += page["events"]
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    assert [e["id"] for e in seen] == [e["id"] for e in reversed(all_events) if e["level"] == "INFO"]
    assert pages == 4  # 11 INFO events, 3 a page
    with pytest.raises(Exception, match="unsupported clause"):
        w.api_list_events(pid, "origin.update_id = 'x'", 25, [], None)


def test_sdk_progression_conflict_and_errors(lakeflow_emulator: Any) -> None:
    lakeflow_emulator.set_default_script(phase_seconds=FAST)
    w = WorkspaceClient(host=lakeflow_emulator.url, token="emulator-token")
    pid = w.api_client.do("POST", "/api/2.0/pipelines", body=ingestion([table("a")]))["pipeline_id"]
    uid = w.pipelines.start_update(pid).update_id
    with pytest.raises(ResourceConflict, match=uid):
        w.pipelines.start_update(pid)
    deadline = time.monotonic() + 5
    while lakeflow_emulator.update(pid, uid)["state"] != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(InvalidParameterValue, match="nope"):
        w.pipelines.start_update(pid, refresh_selection=["nope"])
    states = []
    uid = w.pipelines.start_update(pid).update_id
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        state = w.pipelines.get_update(pid, uid).update.state.value
        if not states or states[-1] != state:
            states.append(state)
        if state == "COMPLETED":
            break
        time.sleep(0.005)
    assert len(states) >= 2 and states[-1] == "COMPLETED"
    order = ["QUEUED", "WAITING_FOR_RESOURCES", "INITIALIZING", "SETTING_UP_TABLES", "RUNNING", "COMPLETED"]
    assert [order.index(s) for s in states] == sorted(order.index(s) for s in states)

    lakeflow_emulator.script_pipeline(pid, phase_seconds={"RUNNING": 30, "STOPPING": 0.3})
    other = lakeflow_emulator.start_update_externally(pid)
    with pytest.raises(ResourceConflict, match=other):
        w.pipelines.start_update(pid)
    w.pipelines.stop(pid)
    assert lakeflow_emulator.update(pid, other)["state"] == "STOPPING"
    time.sleep(0.35)
    assert w.pipelines.get_update(pid, other).update.state == P.UpdateInfoState.CANCELED
