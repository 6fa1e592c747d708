# ruff: noqa: F811  (fixtures imported from the plugin module, so the tests run without the pytest11 entry point)
"""The emulator through the real databricks-sdk over real HTTP: every endpoint, field round-trips, auth."""

from __future__ import annotations

import time
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceDoesNotExist, Unauthenticated
from databricks.sdk.service import catalog as C
from databricks.sdk.service import iam
from databricks.sdk.service import pipelines as P

from airflow_provider_lakeflow.testing.emulator.workspace import Workspace
from airflow_provider_lakeflow.testing.pytest_plugin import (  # noqa: F401  (fixtures)
    lakeflow_emulator,
    lakeflow_emulator_server,
)

FAST = {
    "QUEUED": 0.02,
    "WAITING_FOR_RESOURCES": 0.02,
    "INITIALIZING": 0.02,
    "SETTING_UP_TABLES": 0.02,
    "RUNNING": 0.04,
    "STOPPING": 0.02,
}


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    """Poll instead of sleeping a fixed time: the machine is shared and slow at times."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _strip_details(raw: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    if "events" in out:
        out["events"] = [{k: v for k, v in e.items() if k != "details"} for e in out["events"]]
    return out


def assert_roundtrip(cls: Any, raw: dict[str, Any]) -> None:
    """Every field the emulator sends survives the SDK's own dataclass (events' ``details`` excepted)."""
    assert cls.from_dict(raw).as_dict() == _strip_details(raw)


def sf_definition(**extra: Any) -> P.IngestionPipelineDefinition:
    return P.IngestionPipelineDefinition(
        connection_name="sf_conn",
        table_configuration=P.TableSpecificConfig(scd_type=P.TableSpecificConfigScdType.SCD_TYPE_1),
        objects=[
            P.IngestionConfig(
                schema=P.SchemaSpec(source_schema="objects", destination_catalog="main", destination_schema="sf")
            ),
            P.IngestionConfig(
                table=P.TableSpec(
                    source_schema="dbo",
                    source_table="Account",
                    destination_catalog="main",
                    destination_schema="sf",
                    destination_table="account",
                    table_configuration=P.TableSpecificConfig(
                        scd_type=P.TableSpecificConfigScdType.SCD_TYPE_2,
                        primary_keys=["Id"],
                        sequence_by=["SystemModstamp"],
                        exclude_columns=["Secret__c"],
                    ),
                )
            ),
            P.IngestionConfig(
                report=P.ReportSpec(
                    source_url="https://wd.example.com/ccx/Worker_Report?format=json",
                    destination_catalog="main",
                    destination_schema="wd",
                )
            ),
        ],
        **extra,
    )


@pytest.fixture
def w(lakeflow_emulator: Any) -> WorkspaceClient:
    lakeflow_emulator.set_default_script(phase_seconds=FAST)
    return WorkspaceClient(host=lakeflow_emulator.url, token="emulator-token")


def test_pipeline_crud_roundtrip(w: WorkspaceClient, lakeflow_emulator: Any) -> None:
    created = w.pipelines.create(
        name="sf-ingest",
        serverless=True,
        budget_policy_id="bp-1",
        tags={"team": "data"},
        run_as=P.RunAs(service_principal_name="sp-app-id"),
        parameters={"p": "1"},
        notifications=[P.Notifications(alerts=["on-update-failure"], email_recipients=["a@b.c"])],
        ingestion_definition=sf_definition(),
    )
    pid = created.pipeline_id
    assert pid
    raw = w.api_client.do("GET", f"/api/2.0/pipelines/{pid}")
    assert_roundtrip(P.GetPipelineResponse, raw)
    got = w.pipelines.get(pid)
    assert got.name == "sf-ingest" and got.state == P.PipelineState.IDLE and got.spec.id == pid
    assert got.run_as_user_name == "sp-app-id" and got.creator_user_name == "emulator-user@example.com"
    assert got.spec.ingestion_definition.objects[1].table.table_configuration.scd_type.value == "SCD_TYPE_2"
    assert isinstance(got.last_modified, int) and got.parameters == {"p": "1"}
    assert "run_as" not in raw["spec"] and "parameters" not in raw["spec"]

    w.pipelines.update(
        pid,
        name="sf-ingest-2",
        serverless=True,
        ingestion_definition=sf_definition(),
        expected_last_modified=got.last_modified,
    )
    assert w.pipelines.get(pid).name == "sf-ingest-2"
    assert w.pipelines.get(pid).spec.tags is None  # the whole spec is replaced
    with pytest.raises(Exception) as stale:
        w.pipelines.update(pid, name="x", ingestion_definition=sf_definition(), expected_last_modified=1)
    assert "expected_last_modified" in str(stale.value)

    dry = w.api_client.do(
        "POST",
        "/api/2.0/pipelines",
        body={"name": "dry", "dry_run": True, "ingestion_definition": sf_definition().as_dict()},
    )
    assert_roundtrip(P.CreatePipelineResponse, dry)
    assert "pipeline_id" not in dry and dry["effective_settings"]["name"] == "dry"
    assert len(lakeflow_emulator.pipelines()) == 1

    w.pipelines.delete(pid)
    with pytest.raises(ResourceDoesNotExist, match=f"Pipeline {pid} does not exist."):
        w.pipelines.get(pid)


def test_list_pipelines_like_filter_and_pagination(w: WorkspaceClient) -> None:
    names = ["sales_a", "sales%b", "salesXc", "sales_long", "other", "sales%", "s_les"]
    for n in names:
        w.pipelines.create(name=n, libraries=[P.PipelineLibrary(notebook=P.NotebookLibrary(path=f"/nb/{n}"))])

    def like(pattern: str) -> list[str]:
        return sorted(p.name for p in w.pipelines.list_pipelines(filter=f"name LIKE '{pattern}'", max_results=2))

    assert like("sales%") == sorted(n for n in names if n.startswith("sales"))
    assert like("sales_") == ["sales%"]  # _ is exactly one character
    assert like("s_les") == ["s_les"]
    assert like(r"sales\_%") == ["sales_a", "sales_long"]
    assert like(r"sales\%%") == ["sales%", "sales%b"]
    assert like(r"sales\%") == ["sales%"]
    assert like("%X%") == ["salesXc"]
    assert [p.name for p in w.pipelines.list_pipelines(filter="notebook='/nb/other'")] == ["other"]
    assert len(list(w.pipelines.list_pipelines(max_results=3))) == len(names)

    raw = w.api_client.do("GET", "/api/2.0/pipelines", query={"max_results": 3})
    assert len(raw["statuses"]) == 3 and raw["next_page_token"]
    assert_roundtrip(P.ListPipelinesResponse, raw)
    with pytest.raises(Exception, match="max_results"):
        w.api_client.do("GET", "/api/2.0/pipelines", query={"max_results": 101})
    with pytest.raises(Exception, match="filter"):
        list(w.pipelines.list_pipelines(filter="name = 'x' OR 1=1"))


def test_updates_and_events_roundtrip(w: WorkspaceClient, lakeflow_emulator: Any) -> None:
    pid = w.pipelines.create(name="ev", ingestion_definition=sf_definition()).pipeline_id
    lakeflow_emulator.script_pipeline(
        pid, phase_seconds=FAST, rows={"account": 7}, data_quality={"account": {"dropped_records": 1}}
    )
    uid = w.pipelines.start_update(
        pid,
        full_refresh_selection=["main.sf.account"],
        refresh_selection=["worker_report"],
        cause=P.StartUpdateCause.JOB_TASK,
    ).update_id
    raw = w.api_client.do("GET", f"/api/2.0/pipelines/{pid}/updates/{uid}")
    assert_roundtrip(P.GetUpdateResponse, raw)
    info = w.pipelines.get_update(pid, uid).update
    assert info.cause == P.UpdateInfoCause.JOB_TASK and isinstance(info.creation_time, int)
    assert info.config.id == pid and info.mode == P.UpdateMode.DEFAULT and info.full_refresh is False
    assert info.full_refresh_selection == ["main.sf.account"] and info.refresh_selection == ["worker_report"]

    wait_for(lambda: w.pipelines.get_update(pid, uid).update.state == P.UpdateInfoState.COMPLETED)
    got = w.api_client.do("GET", f"/api/2.0/pipelines/{pid}")
    assert got["latest_updates"][0]["update_id"] == uid and isinstance(got["latest_updates"][0]["creation_time"], str)
    assert_roundtrip(P.GetPipelineResponse, got)

    listed = w.api_client.do("GET", f"/api/2.0/pipelines/{pid}/updates")
    assert_roundtrip(P.ListUpdatesResponse, listed)
    assert "config" not in listed["updates"][0] and "mode" not in listed["updates"][0]
    assert [u.update_id for u in w.pipelines.list_updates(pid).updates] == [uid]

    raw_events = w.api_client.do("GET", f"/api/2.0/pipelines/{pid}/events", query={"max_results": 100})
    assert_roundtrip(P.ListPipelineEventsResponse, raw_events)
    events = raw_events["events"]
    assert events[0]["details"]["update_progress"]["state"] == "COMPLETED"  # newest first
    flows = {
        e["origin"]["flow_name"]: e["details"]["flow_progress"]
        for e in events
        if e["event_type"] == "flow_progress" and e["details"]["flow_progress"]["status"] == "COMPLETED"
    }
    # only the selected tables got flows
    assert set(flows) == {"main.sf.account", "main.wd.worker_report"}
    assert flows["main.sf.account"]["metrics"] == {"num_output_rows": 7, "num_upserted_rows": 7, "num_deleted_rows": 0}
    assert flows["main.sf.account"]["data_quality"] == {"dropped_records": 1}
    sdk_events = list(w.pipelines.list_pipeline_events(pid, max_results=3, order_by=["timestamp asc"]))
    assert [e.id for e in sdk_events] == [e["id"] for e in reversed(events)]
    assert sdk_events[0].event_type == "create_update" and sdk_events[0].origin.update_id == uid


def test_stop_and_continuous_gateway(w: WorkspaceClient, lakeflow_emulator: Any) -> None:
    gw = w.pipelines.create(
        name="gw",
        continuous=True,
        catalog="main",
        schema="gw",
        clusters=[P.PipelineCluster(label="default", num_workers=1)],
        gateway_definition=P.IngestionGatewayPipelineDefinition(
            connection_name="sqlserver", gateway_storage_catalog="main", gateway_storage_schema="gw"
        ),
    ).pipeline_id
    info = w.pipelines.get(gw)
    assert info.state == P.PipelineState.RUNNING
    uid = info.latest_updates[0].update_id
    assert w.pipelines.get_update(gw, uid).update.mode == P.UpdateMode.CONTINUOUS
    wait_for(lambda: w.pipelines.get_update(gw, uid).update.state == P.UpdateInfoState.RUNNING)
    time.sleep(0.1)
    assert w.pipelines.get_update(gw, uid).update.state == P.UpdateInfoState.RUNNING  # continuous: stays
    w.pipelines.stop(gw)
    time.sleep(0.05)
    assert w.pipelines.stop_and_wait(gw).state == P.PipelineState.IDLE
    assert w.pipelines.get_update(gw, uid).update.state == P.UpdateInfoState.CANCELED
    progress = [e.message for e in w.pipelines.list_pipeline_events(gw, order_by=["timestamp asc"])]
    assert progress[-2:] == [f"Update {uid[:6]} is STOPPING.", f"Update {uid[:6]} is CANCELED."]
    w.pipelines.stop(gw)  # no-op without an active update
    assert w.pipelines.get(gw).state == P.PipelineState.IDLE


def test_connections_roundtrip(w: WorkspaceClient, lakeflow_emulator: Any) -> None:
    info = w.connections.create(
        name="sqlserver_conn",
        connection_type=C.ConnectionType.SQLSERVER,
        comment="db",
        options={
            "host": "db.example.com",
            "port": "1433",
            "user": "svc",
            "password": "s3cret",
            "trustServerCertificate": "true",
        },
        properties={"purpose": "ingest"},
    )
    assert info.options == {"host": "db.example.com", "port": "1433", "user": "svc", "trustServerCertificate": "true"}
    assert info.provisioning_info.state == C.ProvisioningInfoState.ACTIVE
    assert info.credential_type == C.CredentialType.USERNAME_PASSWORD
    raw = w.api_client.do("GET", "/api/2.1/unity-catalog/connections/sqlserver_conn")
    assert_roundtrip(C.ConnectionInfo, raw)
    assert "s3cret" not in str(raw)
    assert lakeflow_emulator.connection("sqlserver_conn")["secret_options"] == {"password": "s3cret"}

    for i in range(60):
        w.connections.create(
            name=f"c{i:02d}", connection_type=C.ConnectionType.HTTP, options={"host": "h", "bearer_token": "t"}
        )
    assert len(list(w.connections.list())) == 61  # max_results=0: server-sized pages, followed by the SDK
    page = w.api_client.do("GET", "/api/2.1/unity-catalog/connections", query={"max_results": 10})
    assert len(page["connections"]) == 10 and page["next_page_token"]
    assert_roundtrip(C.ListConnectionsResponse, page)

    updated = w.connections.update(
        "sqlserver_conn", options={"host": "db2", "password": "new"}, new_name="sql2", owner="team"
    )
    assert updated.name == "sql2" and updated.owner == "team" and updated.options == {"host": "db2"}
    with pytest.raises(NotFound):
        w.connections.get("sqlserver_conn")
    with pytest.raises(Exception, match="already exists"):
        w.connections.create(name="SQL2", connection_type=C.ConnectionType.SQLSERVER, options={})
    w.connections.delete("sql2")
    with pytest.raises(ResourceDoesNotExist):
        w.connections.delete("sql2")


def test_connection_provisioning_script_and_ui(w: WorkspaceClient, lakeflow_emulator: Any) -> None:
    lakeflow_emulator.script_connections(provisioning_seconds=0.4, final_state="FAILED", message="bad host")
    info = w.connections.create(name="pg", connection_type=C.ConnectionType.POSTGRESQL, options={"host": "h"})
    assert info.provisioning_info.state == C.ProvisioningInfoState.PROVISIONING
    wait_for(lambda: w.connections.get("pg").provisioning_info.state == C.ProvisioningInfoState.FAILED)
    assert lakeflow_emulator.connection("pg")["provisioning_message"] == "bad host"

    lakeflow_emulator.create_connection_as_ui("sf_conn", "SALESFORCE", {"client_secret": "x"}, state="PROVISIONING")
    sf = w.connections.get("sf_conn")
    assert sf.credential_type == C.CredentialType.OAUTH_U2M and sf.created_by == "ui-user@example.com"
    assert sf.provisioning_info.state == C.ProvisioningInfoState.PROVISIONING and sf.options is None
    lakeflow_emulator.set_connection_state("sf_conn", "ACTIVE")
    assert w.connections.get("sf_conn").provisioning_info.state == C.ProvisioningInfoState.ACTIVE
    # an ingestion pipeline on a known connection reports its source type
    pid = w.pipelines.create(name="sf", ingestion_definition=sf_definition()).pipeline_id
    assert w.pipelines.get(pid).spec.ingestion_definition.source_type == P.IngestionSourceType.SALESFORCE


def test_current_user_pat_and_oauth_m2m(lakeflow_emulator: Any) -> None:
    url = lakeflow_emulator.url
    pat = WorkspaceClient(host=url, token="emulator-token")
    raw = pat.api_client.do("GET", "/api/2.0/preview/scim/v2/Me")
    assert iam.User.from_dict(raw).as_dict() == raw
    assert pat.current_user.me().user_name == "emulator-user@example.com"
    assert lakeflow_emulator.requests("/scim")[-1].auth == "pat"

    lakeflow_emulator.clear_requests()
    m2m = WorkspaceClient(host=url, client_id="emulator-client", client_secret="emulator-secret", auth_type="oauth-m2m")
    assert m2m.current_user.me().user_name == "emulator-client"
    m2m.pipelines.create(name="via-oauth")
    assert [p.name for p in m2m.pipelines.list_pipelines()] == ["via-oauth"]
    token_posts = lakeflow_emulator.requests("/oidc/v1/token", method="POST")
    assert len(token_posts) == 1 and token_posts[0].body["grant_type"] == "client_credentials"
    assert "emulator-secret" not in str(lakeflow_emulator.requests())
    assert {r.auth for r in lakeflow_emulator.requests("^/api/")} == {"oauth"}
    assert (
        m2m.pipelines.get(next(iter(m2m.pipelines.list_pipelines())).pipeline_id).creator_user_name == "emulator-client"
    )

    lakeflow_emulator.expire_tokens()
    with pytest.raises(Unauthenticated):
        m2m.current_user.me()
    assert lakeflow_emulator.requests("/scim")[-1].auth == "invalid"
    with pytest.raises(Unauthenticated):
        WorkspaceClient(host=url, token="wrong").current_user.me()
    with pytest.raises(ValueError, match="invalid_client"):
        WorkspaceClient(
            host=url, client_id="emulator-client", client_secret="nope", auth_type="oauth-m2m"
        ).current_user.me()


def test_token_ttl(lakeflow_emulator: Any) -> None:
    import requests

    lakeflow_emulator.set_token_ttl(0.6)
    tok = requests.post(
        f"{lakeflow_emulator.url}/oidc/v1/token",
        auth=("emulator-client", "emulator-secret"),
        data={"grant_type": "client_credentials", "scope": "all-apis"},
    ).json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 0 and tok["scope"] == "all-apis"
    headers = {"Authorization": f"Bearer {tok['access_token']}"}
    assert requests.get(f"{lakeflow_emulator.url}/api/2.0/pipelines", headers=headers).status_code == 200
    time.sleep(0.65)
    r = requests.get(f"{lakeflow_emulator.url}/api/2.0/pipelines", headers=headers)
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
    assert requests.get(f"{lakeflow_emulator.url}/api/2.0/pipelines").status_code == 401
    form = requests.post(
        f"{lakeflow_emulator.url}/oidc/v1/token",
        data={"grant_type": "client_credentials", "client_id": "emulator-client", "client_secret": "emulator-secret"},
    )
    assert form.status_code == 200


def test_job_runs_for_the_official_trigger(lakeflow_emulator: Any) -> None:
    import requests

    run_id = lakeflow_emulator.create_job_run(100)
    headers = {"Authorization": "Bearer emulator-token"}
    for version in ("2.1", "2.2"):
        run = requests.get(
            f"{lakeflow_emulator.url}/api/{version}/jobs/runs/get", params={"run_id": run_id}, headers=headers
        ).json()
        assert run["state"]["life_cycle_state"] == "PENDING" and run["tasks"] == [] and run["run_page_url"]
    assert (
        requests.get(
            f"{lakeflow_emulator.url}/api/2.1/jobs/runs/get", params={"run_id": 1}, headers=headers
        ).status_code
        == 400
    )
    # transitions on a fake clock
    clock = [0.0]
    ws = Workspace(now=lambda: clock[0])
    run_id = ws.create_job_run(10)
    states = []
    for t in (0, 1.9, 2.0, 9.9, 10):
        clock[0] = t
        states.append(ws.job_run(run_id)["state"])
    assert [s["life_cycle_state"] for s in states] == ["PENDING", "PENDING", "RUNNING", "RUNNING", "TERMINATED"]
    assert states[-1]["result_state"] == "SUCCESS" and ws.job_run(run_id)["end_time"] == 10_000
