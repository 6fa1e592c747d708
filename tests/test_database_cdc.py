"""Database sources end to end through real Airflow (dag.test) against the emulator: the example DAGs for SQL Server
CDC, PostgreSQL CDC and query-based MySQL; gateway idempotency; an ingestion run whose gateway is stopped or gone."""

from __future__ import annotations

import json

import pytest
from conftest import run_dag, task_state, xcom

SECRET = "Sq1-Server-Pa55word-for-tests"
CDC_TASKS = (
    "create_connection",
    "wait_for_connection",
    "create_gateway",
    "ensure_gateway_running",
    "create_ingestion",
    "run_ingestion",
)


@pytest.fixture
def sources(lakeflow_emulator, monkeypatch):
    """The Airflow connections and variable the example DAGs read their database credentials from."""
    for conn_id, port in (("SQLSERVER_ERP", 1433), ("MYSQL_SHOP", 3306)):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id}",
            json.dumps(
                {
                    "conn_type": "generic",
                    "host": "db.example.com",
                    "port": port,
                    "login": "cdc_reader",
                    "password": SECRET,
                }
            ),
        )
    monkeypatch.setenv("AIRFLOW_VAR_APPDB_REPLICATION_PASSWORD", SECRET)
    lakeflow_emulator.set_default_script(phase_seconds=0.05)
    return lakeflow_emulator


def _by_name(emulator) -> dict[str, dict]:
    return {p["spec"]["name"]: p for p in emulator.pipelines()}


def _assert_all_succeeded(dag_run, tasks, capfd) -> str:
    out = capfd.readouterr().out
    states = {t: task_state(dag_run, t) for t in tasks}
    assert set(states.values()) == {"success"}, (states, out[-4000:])
    return out


def test_sqlserver_cdc_example_end_to_end(airflow_db, sources, capfd):
    emulator = sources
    dag_run = run_dag("example_lakeflow_sqlserver_cdc")
    out = _assert_all_succeeded(dag_run, CDC_TASKS, capfd)
    assert SECRET not in out

    conn = emulator.connection("sqlserver_erp")
    assert conn["connection_type"] == "SQLSERVER"
    assert conn["options"] == {
        "host": "db.example.com",
        "port": "1433",
        "user": "cdc_reader",
        "trustServerCertificate": "true",
    }
    assert conn["secret_options"] == {"password": SECRET}

    pipelines = _by_name(emulator)
    gateway, ingestion = pipelines["sqlserver-erp-gateway"], pipelines["sqlserver-erp-ingestion"]
    assert xcom(dag_run, "create_gateway") == gateway["pipeline_id"]
    # The gateway: classic compute, continuous, reading the connection.
    assert gateway["spec"]["continuous"] is True
    assert gateway["spec"]["clusters"][0]["num_workers"] == 1
    assert "serverless" not in gateway["spec"]
    assert gateway["spec"]["gateway_definition"]["connection_name"] == "sqlserver_erp"
    # The ingestion pipeline: serverless, fed by the gateway through XCom.
    assert ingestion["spec"]["serverless"] is True
    assert ingestion["spec"]["ingestion_definition"]["ingestion_gateway_id"] == gateway["pipeline_id"]
    (update,) = emulator.updates(ingestion["pipeline_id"])
    assert update["state"] == "COMPLETED"
    assert xcom(dag_run, "run_ingestion", "state") == "COMPLETED"
    assert set(xcom(dag_run, "run_ingestion", "table_metrics")) == {"main.erp.customers", "main.erp.orders"}
    # The gateway keeps running (its one update, started at create, was adopted, not restarted).
    (gateway_update,) = emulator.updates(gateway["pipeline_id"])
    assert gateway_update["state"] == "RUNNING"


def test_second_run_is_idempotent(airflow_db, sources, capfd):
    emulator = sources
    run_dag("example_lakeflow_sqlserver_cdc")
    emulator.clear_requests()
    dag_run = run_dag("example_lakeflow_sqlserver_cdc")
    _assert_all_succeeded(dag_run, CDC_TASKS, capfd)
    pipelines = _by_name(emulator)
    assert set(pipelines) == {"sqlserver-erp-gateway", "sqlserver-erp-ingestion"}
    assert not emulator.requests(method="POST", path_regex=r"/api/2\.0/pipelines$")  # nothing created again
    assert not emulator.requests(method="PUT")  # nothing edited: the specs match
    assert not emulator.requests(method="POST", path_regex=r"/unity-catalog/connections$")
    assert len(emulator.requests(method="PATCH", path_regex=r"/connections/sqlserver_erp$")) == 1
    assert len(emulator.updates(pipelines["sqlserver-erp-gateway"]["pipeline_id"])) == 1
    assert len(emulator.updates(pipelines["sqlserver-erp-ingestion"]["pipeline_id"])) == 2


def test_a_stopped_gateway_is_started_again_by_the_example(airflow_db, sources, capfd):
    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.workspace import operations

    emulator = sources
    run_dag("example_lakeflow_sqlserver_cdc")
    gateway_id = _by_name(emulator)["sqlserver-erp-gateway"]["pipeline_id"]
    LakeflowHook().run(operations.stop_pipeline(gateway_id))
    dag_run = run_dag("example_lakeflow_sqlserver_cdc")
    _assert_all_succeeded(dag_run, CDC_TASKS, capfd)
    states = [u["state"] for u in emulator.updates(gateway_id)]
    assert sorted(states) == ["CANCELED", "RUNNING"]


@pytest.mark.parametrize("gateway_gone", ["stopped", "deleted"])
def test_ingestion_fails_clearly_when_its_gateway_is_not_running(airflow_db, sources, gateway_gone, capfd):
    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.workspace import operations

    emulator = sources
    run_dag("example_lakeflow_sqlserver_cdc")
    gateway_id = _by_name(emulator)["sqlserver-erp-gateway"]["pipeline_id"]
    hook = LakeflowHook()
    if gateway_gone == "stopped":
        hook.run(operations.stop_pipeline(gateway_id))
        expected = f"Ingestion gateway pipeline {gateway_id} ('sqlserver-erp-gateway') has no running update"
    else:
        hook.run(operations.delete_pipeline(gateway_id))
        expected = f"Ingestion gateway pipeline {gateway_id} does not exist"
    capfd.readouterr()
    dag_run = run_dag("lf_cdc_run_ingestion", name="sqlserver-erp-ingestion")
    assert task_state(dag_run, "run") == "failed"
    out = capfd.readouterr().out
    assert expected in out
    assert "ended in state FAILED" in out


def test_postgresql_cdc_example_passes_slot_and_publication_through(airflow_db, sources, capfd):
    emulator = sources
    dag_run = run_dag("example_lakeflow_postgresql_cdc")
    _assert_all_succeeded(dag_run, CDC_TASKS, capfd)
    assert emulator.connection("pg_appdb")["secret_options"] == {"password": SECRET}
    pipelines = _by_name(emulator)
    gateway_id = pipelines["pg-appdb-gateway"]["pipeline_id"]
    (create,) = [
        r
        for r in emulator.requests(method="POST", path_regex=r"/api/2\.0/pipelines$")
        if r.body["name"] == "pg-appdb-ingestion"
    ]
    definition = create.body["ingestion_definition"]
    assert definition["ingestion_gateway_id"] == gateway_id
    assert definition["source_configurations"] == [
        {
            "catalog": {
                "source_catalog": "appdb",
                "postgres": {"slot_config": {"slot_name": "lakeflow_appdb", "publication_name": "lakeflow_appdb_pub"}},
            }
        }
    ]
    live = pipelines["pg-appdb-ingestion"]["spec"]["ingestion_definition"]
    assert live["source_configurations"] == definition["source_configurations"]
    (update,) = emulator.updates(pipelines["pg-appdb-ingestion"]["pipeline_id"])
    assert update["state"] == "COMPLETED"


def test_query_based_example_end_to_end(airflow_db, sources, capfd):
    emulator = sources
    dag_run = run_dag("example_lakeflow_query_based")
    tasks = ("create_connection", "wait_for_connection", "create_pipeline", "run_pipeline")
    _assert_all_succeeded(dag_run, tasks, capfd)
    assert emulator.connection("mysql_shop")["connection_type"] == "MYSQL"
    pipelines = _by_name(emulator)
    assert set(pipelines) == {"mysql-shop-query-based"}  # no gateway
    definition = pipelines["mysql-shop-query-based"]["spec"]["ingestion_definition"]
    assert definition["connector_type"] == "QUERY_BASED"
    assert definition["connection_name"] == "mysql_shop"
    cursors = [
        o["table"]["table_configuration"]["query_based_connector_config"]["cursor_columns"]
        for o in definition["objects"]
    ]
    assert cursors == [["updated_at"], ["modified_at", "customer_id"]]
    assert set(xcom(dag_run, "run_pipeline", "table_metrics")) == {"main.shop.orders", "main.shop.customers"}


def test_query_based_spec_without_cursor_columns_is_rejected():
    from airflow_provider_lakeflow.spec.errors import PipelineSpecError
    from airflow_provider_lakeflow.spec.shape import validate_spec

    spec = {
        "name": "q",
        "ingestion_definition": {
            "connection_name": "mysql_shop",
            "connector_type": "QUERY_BASED",
            "objects": [
                {
                    "table": {
                        "source_table": "orders",
                        "destination_catalog": "main",
                        "destination_schema": "shop",
                        "table_configuration": {"query_based_connector_config": {"cursor_columns": []}},
                    }
                }
            ],
        },
    }
    with pytest.raises(PipelineSpecError, match="cursor_columns"):
        validate_spec(spec)


def test_a_deleted_gateway_is_recreated_and_the_ingestion_pipeline_follows_it(airflow_db, sources, capfd):
    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.workspace import operations

    emulator = sources
    run_dag("example_lakeflow_sqlserver_cdc")
    old_gateway = _by_name(emulator)["sqlserver-erp-gateway"]["pipeline_id"]
    LakeflowHook().run(operations.delete_pipeline(old_gateway))
    dag_run = run_dag("example_lakeflow_sqlserver_cdc")
    _assert_all_succeeded(dag_run, CDC_TASKS, capfd)
    pipelines = _by_name(emulator)
    new_gateway = pipelines["sqlserver-erp-gateway"]["pipeline_id"]
    assert new_gateway != old_gateway
    assert pipelines["sqlserver-erp-ingestion"]["spec"]["ingestion_definition"]["ingestion_gateway_id"] == new_gateway
