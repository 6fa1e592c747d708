"""The Lakeflow views' API through Airflow's real api-server app (its simple auth manager, real users and tokens),
with task instances made by real runs (``dag.test()``) against the emulator.
"""

from __future__ import annotations

import pytest
from conftest import PASSWORDS, make_pipeline, run_dag
from fastapi.testclient import TestClient

from airflow_provider_lakeflow.ui import workspace

SECRETS = ("emulator-token", *PASSWORDS.values())


@pytest.fixture(scope="module")
def client(airflow_db) -> TestClient:
    from airflow.api_fastapi.app import create_app

    return TestClient(create_app("all"))


@pytest.fixture
def fresh_cache():
    workspace.READER.__init__()  # type: ignore[misc]
    yield workspace.READER


def login(client: TestClient, user: str) -> dict[str, str]:
    answer = client.post("/auth/token", json={"username": user, "password": PASSWORDS[user]})
    assert answer.status_code in (200, 201), answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def ti_view(client: TestClient, dag_run, user: str = "viewer", task_id: str = "run"):
    params = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "task_id": task_id}
    return client.get("/lakeflow/api/task-instance", params=params, headers=login(client, user))


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_every_route_refuses_an_anonymous_caller(client):
    params = {"dag_id": "lf_ui_run", "run_id": "x", "task_id": "run"}
    for path, query in (
        ("/lakeflow/api/task-instance", params),
        ("/lakeflow/api/pipelines", {}),
        ("/lakeflow/static/main.umd.cjs", {}),
    ):
        assert client.get(path, params=query).status_code == 401, path
        bad = {"Authorization": "Bearer not-a-token"}
        assert client.get(path, params=query, headers=bad).status_code in (401, 403), path


def test_bundle_is_served_to_a_signed_in_user(client):
    answer = client.get("/lakeflow/static/main.umd.cjs", headers=login(client, "viewer"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert "AirflowPlugin" in answer.text
    assert client.get("/lakeflow/static/../app.py", headers=login(client, "viewer")).status_code == 404


def test_completed_update_shows_each_table(client, lakeflow_emulator, fresh_cache):
    lakeflow_emulator.set_default_script(phase_seconds=0.05)
    pipeline_id = make_pipeline("ui-completed")
    dag_run = run_dag("lf_ui_run", pipeline_name="ui-completed")
    (update,) = lakeflow_emulator.updates(pipeline_id)
    answer = ti_view(client, dag_run)
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["is_lakeflow"] is True
    assert (view["pipeline_id"], view["update_id"]) == (pipeline_id, update["update_id"])
    assert view["task_state"] == "success"
    assert view["update"]["state"] == "COMPLETED"
    assert view["update"]["cause"] == update.get("cause")
    assert view["update_url"].endswith(f"/#joblist/pipelines/{pipeline_id}/updates/{update['update_id']}")
    # The finished task's connection is the one pointing at the update's workspace.
    assert view["connection"]["conn_id"] == "databricks_default"
    events = lakeflow_emulator.events(pipeline_id, update["update_id"])
    landed = {}
    for event in events:
        progress = (event.get("details") or {}).get("flow_progress") or {}
        if progress.get("status") == "COMPLETED":
            landed[event["origin"]["dataset_name"]] = progress["metrics"]["num_output_rows"]
    assert {row["table"]: row["num_output_rows"] for row in view["tables"]} == landed
    assert len(landed) == 2
    for row in view["tables"]:
        assert row["status"] == "COMPLETED"
        assert row["duration_seconds"] is not None and row["duration_seconds"] >= 0
        assert set(row) >= {"num_upserted_rows", "num_deleted_rows", "started", "ended"}
    assert view["failure"] is None and view["workspace_error"] is None
    assert_no_secret(answer.text)


def test_reads_are_cached_per_update(client, lakeflow_emulator, fresh_cache):
    lakeflow_emulator.set_default_script(phase_seconds=0.05)
    pipeline_id = make_pipeline("ui-cached")
    dag_run = run_dag("lf_ui_run", pipeline_name="ui-cached")
    lakeflow_emulator.clear_requests()
    for _ in range(3):
        assert ti_view(client, dag_run).status_code == 200
    reads = lakeflow_emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/updates/", method="GET")
    assert len(reads) == 1
    assert fresh_cache.reads == 1


def test_failed_update_shows_category_tables_fix_and_raw_messages(client, lakeflow_emulator, fresh_cache):
    lakeflow_emulator.set_default_script(phase_seconds=0.05)
    pipeline_id = make_pipeline("ui-failed")
    condition = "SAAS_CONNECTOR_DUPLICATE_DATA.ROWS_WITH_SAME_PRIMARY_KEY"
    lakeflow_emulator.script_condition(pipeline_id, condition, table="contact")
    dag_run = run_dag("lf_ui_run", pipeline_name="ui-failed")
    view = ti_view(client, dag_run).json()
    assert view["task_state"] == "failed"
    assert view["update"]["state"] == "FAILED"
    assert view["failure"]["category"] == "duplicate_keys"
    assert view["failure"]["tables"] == ["main.sales.contact"]
    assert view["failure"]["error_classes"] == [condition]
    assert view["failure"]["fix"]
    assert any(condition in message for message in view["messages"])
    statuses = {row["table"]: row["status"] for row in view["tables"]}
    assert statuses["main.sales.contact"] == "FAILED"


def test_schema_change_follow_up_is_shown_beside_the_original(client, lakeflow_emulator, fresh_cache):
    lakeflow_emulator.set_default_script(phase_seconds=0.05)
    pipeline_id = make_pipeline("ui-remedy")
    condition = "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE"
    lakeflow_emulator.script_condition(pipeline_id, condition, table="contact")
    dag_run = run_dag("lf_ui_remedy", pipeline_name="ui-remedy")
    follow_up, failed = lakeflow_emulator.updates(pipeline_id)
    view = ti_view(client, dag_run).json()
    assert view["update_id"] == follow_up["update_id"]
    assert view["update"]["state"] == "COMPLETED"
    assert view["update"]["full_refresh_selection"] == ["main.sales.contact"]
    assert view["follow_up"]["failed_update_id"] == failed["update_id"]
    assert view["original"]["update_id"] == failed["update_id"]
    assert view["original"]["update"]["state"] == "FAILED"
    assert any(condition in message for message in view["original"]["messages"])


def test_workspace_error_is_a_message_not_a_500(client, lakeflow_emulator, fresh_cache):
    lakeflow_emulator.set_default_script(phase_seconds=0.05)
    pipeline_id = make_pipeline("ui-unreadable")
    dag_run = run_dag("lf_ui_run", pipeline_name="ui-unreadable")
    lakeflow_emulator.inject_fault(rf"/pipelines/{pipeline_id}/updates/", method="GET", status=403, count=None)
    try:
        answer = ti_view(client, dag_run)
    finally:
        lakeflow_emulator.clear_faults()
    assert answer.status_code == 200
    view = answer.json()
    assert view["update"] is None
    assert view["workspace_error"].startswith("Could not read the update from the workspace (connection ")
    assert "403" in view["workspace_error"] or "ermission" in view["workspace_error"]
    assert_no_secret(answer.text)


def test_pipelines_page_lists_our_runs_and_filters_failures(client, lakeflow_emulator, fresh_cache):
    lakeflow_emulator.set_default_script(phase_seconds=0.05)
    pipeline_id = make_pipeline("ui-history")
    ok_run = run_dag("lf_ui_run", pipeline_name="ui-history")
    lakeflow_emulator.script_condition(pipeline_id, "DC_CONNECTION_ERROR.INVALID_CREDENTIALS")
    failed_run = run_dag("lf_ui_run", pipeline_name="ui-history")
    headers = login(client, "viewer")
    lakeflow_emulator.clear_requests()
    answer = client.get("/lakeflow/api/pipelines", headers=headers)
    assert answer.status_code == 200
    # The page is built from Airflow's database only: it never lists (or reads) the workspace.
    assert lakeflow_emulator.requests() == []
    (ours,) = [p for p in answer.json()["pipelines"] if p["pipeline_id"] == pipeline_id]
    assert ours["dags"] == ["lf_ui_run"]
    newest, oldest = ours["updates"]
    assert (newest["run_id"], newest["state"], newest["failure_category"]) == (
        failed_run.run_id,
        "FAILED",
        "source_credentials",
    )
    assert (oldest["run_id"], oldest["state"]) == (ok_run.run_id, "COMPLETED")
    assert set(oldest["rows"]) == {"main.sales.account", "main.sales.contact"}
    assert all(isinstance(v, int) for v in oldest["rows"].values())
    assert oldest["duration_seconds"] is not None and oldest["started_by"] == "Airflow: lf_ui_run.run"
    failed_only = client.get("/lakeflow/api/pipelines", params={"failed_only": "true"}, headers=headers).json()
    (ours,) = [p for p in failed_only["pipelines"] if p["pipeline_id"] == pipeline_id]
    assert [u["run_id"] for u in ours["updates"]] == [failed_run.run_id]
    assert_no_secret(answer.text)


def test_user_without_access_to_the_dag_is_refused(client, lakeflow_emulator, fresh_cache):
    from airflow.models.dag import DagModel, clear_team_name_cache
    from airflow.models.team import dag_bundle_team_association_table
    from airflow.utils.session import create_session
    from sqlalchemy import delete, insert, select

    lakeflow_emulator.set_default_script(phase_seconds=0.05)
    make_pipeline("ui-team")
    dag_run = run_dag("lf_ui_run", pipeline_name="ui-team")
    with create_session() as session:
        bundle = session.scalar(select(DagModel.bundle_name).where(DagModel.dag_id == "lf_ui_run"))
        session.execute(insert(dag_bundle_team_association_table).values(dag_bundle_name=bundle, team_name="team_b"))
    # Airflow caches each DAG's team for a while; earlier tests read this DAG's (none) moments ago.
    clear_team_name_cache()
    try:
        assert ti_view(client, dag_run, user="alice").status_code == 403
        assert ti_view(client, dag_run, user="bob").status_code == 200
        for user, visible in (("alice", False), ("bob", True)):
            listed = client.get("/lakeflow/api/pipelines", headers=login(client, user)).json()
            dags = {dag for p in listed["pipelines"] for dag in p["dags"]}
            assert ("lf_ui_run" in dags) is visible, user
    finally:
        with create_session() as session:
            session.execute(delete(dag_bundle_team_association_table))
        clear_team_name_cache()
