"""Failures that say what to do: each documented condition, through real Airflow (dag.test) and the emulator."""

from __future__ import annotations

import pytest
from conftest import run_dag, task_state, xcom

from airflow_provider_lakeflow.hooks import LakeflowHook
from airflow_provider_lakeflow.workspace import operations

TABLES = ("Account", "Contact", "Opportunity")


def make_sales_pipeline(name: str = "sales", rename: dict[str, str] | None = None) -> str:
    """Three Salesforce tables, main.sales.<source name> unless renamed with ``destination_table``."""
    objects = []
    for table in TABLES:
        spec = {
            "source_schema": "objects",
            "source_table": table,
            "destination_catalog": "main",
            "destination_schema": "sales",
        }
        if rename and table in rename:
            spec["destination_table"] = rename[table]
        objects.append({"table": spec})
    spec = {"name": name, "ingestion_definition": {"connection_name": "salesforce_conn", "objects": objects}}
    return LakeflowHook().run(operations.create_pipeline(spec))


#: (condition, scripted table or None for the whole update, expected category)
SCHEMA_CHANGE = [
    ("SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.COLUMN_RENAME", "schema_change_full_refresh"),
    ("SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.COLUMN_TYPE_CHANGE", "schema_change_rerun"),
    ("SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.CURSOR_KEY_CHANGE", "schema_change_full_refresh"),
    ("SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.DROP_COLUMNS", "schema_change_rerun"),
    ("SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.DROP_TABLE", "schema_change_rerun"),
    ("SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.INCOMPATIBLE_COLUMN_TYPE_CHANGE", "schema_change_full_refresh"),
    ("SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.NEW_COLUMNS", "schema_change_rerun"),
    ("SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE", "schema_change_full_refresh"),
    ("CDC_INCOMPATIBLE_SCHEMA_CHANGES.ADD_COLUMN_WITH_BACKFILL", "schema_change_full_refresh"),
    ("CDC_INCOMPATIBLE_SCHEMA_CHANGES.COLUMNS_ADDED_AND_DELETED", "schema_change_full_refresh"),
    ("CDC_INCOMPATIBLE_SCHEMA_CHANGES.COLUMN_NULLABLE_TO_NON_NULLABLE", "schema_change_full_refresh"),
    ("CDC_INCOMPATIBLE_SCHEMA_CHANGES.NON_INCREMENTAL_SCHEMA_CHANGE", "schema_change_full_refresh"),
    ("CDC_INCOMPATIBLE_SCHEMA_CHANGES.PRIMARY_KEY_CHANGE", "schema_change_full_refresh"),
    ("CDC_INCOMPATIBLE_SCHEMA_CHANGES.UNSUPPORTED_DATA_TYPE_CHANGE", "schema_change_full_refresh"),
]
#: One documented condition (or more) per other category: (condition, on a table?, category).
CATEGORIES = [
    ("MANAGED_INGESTION_PIPELINE_SPEC_VALIDATION_ERROR.CATALOG_MISMATCH", False, "invalid_spec"),
    ("QUERY_BASED_INGESTION_CONNECTOR_ERROR.INVALID_CURSOR_COLUMNS", True, "invalid_spec"),
    ("SAAS_UC_CONNECTION_INACCESSIBLE.NO_CONNECTION_EXISTS", False, "connection_unavailable"),
    ("SAAS_UC_CONNECTION_INACCESSIBLE.USE_CONNECTION_PERMISSION_DENIED", False, "connection_unavailable"),
    ("DC_CONNECTION_ERROR.INVALID_CREDENTIALS", False, "source_credentials"),
    ("SFDC_CONNECTOR_BULK_QUERY_JOB_INCOMPLETE.MISSING_VIEW_ALL_DATA_PERMISSION", True, "source_permissions"),
    ("DC_SQLSERVER_ERROR.CDC_NOT_ENABLED", True, "gateway_setup"),
    ("INGESTION_GATEWAY_PG_SLOT_CREATION_FAILED.MAX_SLOT_EXCEEDED", True, "gateway_setup"),
    ("SAAS_CONNECTOR_UNSUPPORTED_ERROR.UNSUPPORTED_SFDC_OBJECT", True, "unsupported"),
    ("SAAS_CONNECTOR_UNSUPPORTED_ERROR.UNSUPPORTED_SCHEMA_CHANGE", True, "schema_change_full_refresh"),
    ("CANNOT_WRITE_TO_INACTIVE_TABLES", True, "source_table_removed"),
    ("SAAS_CONNECTOR_DUPLICATE_DATA.ROWS_WITH_SAME_PRIMARY_KEY", True, "duplicate_keys"),
    ("QUERY_BASED_CONNECTOR_DUPLICATE_RECORDS.SOURCE_HAS_DUPLICATES", True, "duplicate_keys"),
    ("DC_API_QUOTA_EXCEEDED.SFDC_API_DAILY_QUOTA_THRESHOLD_EXCEEDED", False, "source_quota"),
    ("INGESTION_GATEWAY_OPERATION_TIMEOUT.FETCH_METADATA", False, "source_unavailable"),
    ("INGESTION_GATEWAY_DATABASE_UNAVAILABLE.SHUTDOWN_IN_PROGRESS", False, "source_unavailable"),
    ("DC_SFDC_API_ERROR.FAILED_TO_EXECUTE_REST_API_QUERY", True, "source_error"),
]
NO_RETRY = {
    "invalid_spec",
    "connection_unavailable",
    "source_credentials",
    "source_permissions",
    "gateway_setup",
    "unsupported",
    "source_table_removed",
    "schema_change_full_refresh",
    "duplicate_keys",
    "cancelled",
}


def _waited_in_trigger(text: str, update_id: str) -> bool:
    """The trigger's poll log names the update (stdout on Airflow 3, the logging capture on 2.11)."""
    return any("LakeflowPipelineUpdateTrigger" in line and update_id in line for line in text.splitlines())


def _check_failure(dag_run, capfd, emulator, pipeline_id, condition, category, tables):
    assert task_state(dag_run, "run") == "failed"
    ti = dag_run.get_task_instance("run")
    failure = xcom(dag_run, "run", "failure")
    (update,) = emulator.updates(pipeline_id)
    assert failure["category"] == category
    assert failure["error_classes"] == [condition]
    assert failure["tables"] == tables
    assert failure["update_url"] == xcom(dag_run, "run", "update_url")
    assert failure["update_id"] == update["update_id"]
    assert failure["fix"]
    for table in tables:
        assert table in failure["fix"] or category not in ("schema_change_full_refresh",)
    out = capfd.readouterr().out
    # The log leads with the category, the tables and the fix, then the raw message with its SQLSTATE.
    head = out.index(f"(category {category})")
    assert head < out.index(f"Fix: {failure['fix']}") < out.index(f"- [{condition}]")
    assert ti.try_number == 1
    return failure, out


@pytest.mark.parametrize(("condition", "category"), SCHEMA_CHANGE, ids=[c for c, _ in SCHEMA_CHANGE])
def test_schema_change_conditions(airflow_db, lakeflow_emulator, capfd, condition, category):
    lakeflow_emulator.set_default_script(phase_seconds=0.02)
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_condition(pipeline_id, condition, table="Contact")
    dag_run = run_dag("lf_failure_worker", pipeline_name="sales")
    failure, out = _check_failure(
        dag_run, capfd, lakeflow_emulator, pipeline_id, condition, category, ["main.sales.Contact"]
    )
    assert "SQLSTATE: 42KD4" in out
    assert failure["retry"] is (category not in NO_RETRY)
    if category == "schema_change_full_refresh":
        assert "full_refresh_selection=['main.sales.Contact']" in failure["fix"]


@pytest.mark.parametrize(("condition", "on_table", "category"), CATEGORIES, ids=[c for c, *_ in CATEGORIES])
def test_one_condition_per_category(airflow_db, lakeflow_emulator, capfd, condition, on_table, category):
    lakeflow_emulator.set_default_script(phase_seconds=0.02)
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_condition(pipeline_id, condition, table="Opportunity" if on_table else None)
    dag_run = run_dag("lf_failure_worker", pipeline_name="sales")
    tables = ["main.sales.Opportunity"] if on_table else []
    failure, _ = _check_failure(dag_run, capfd, lakeflow_emulator, pipeline_id, condition, category, tables)
    assert failure["retry"] is (category not in NO_RETRY)


def test_renamed_destination_table_is_reported_by_its_destination_name(airflow_db, lakeflow_emulator, capfd):
    lakeflow_emulator.set_default_script(phase_seconds=0.02)
    pipeline_id = make_sales_pipeline(rename={"Account": "customers"})
    condition = "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE"
    lakeflow_emulator.script_condition(pipeline_id, condition, table="customers")
    dag_run = run_dag("lf_failure_worker", pipeline_name="sales")
    failure, out = _check_failure(
        dag_run,
        capfd,
        lakeflow_emulator,
        pipeline_id,
        condition,
        "schema_change_full_refresh",
        ["main.sales.customers"],
    )
    assert "table objects.Account" in out  # the message names the source table
    assert "full_refresh_selection=['main.sales.customers']" in failure["fix"]


@pytest.mark.parametrize("mode", ["worker", "deferred"])
def test_deferred_and_worker_read_the_same_failure(airflow_db, lakeflow_emulator, capfd, mode):
    lakeflow_emulator.set_default_script(phase_seconds=0.02)
    pipeline_id = make_sales_pipeline()
    condition = "DC_CONNECTION_ERROR.INVALID_CREDENTIALS"
    lakeflow_emulator.script_condition(pipeline_id, condition)
    dag_run = run_dag(f"lf_failure_retries_{mode}", pipeline_name="sales")
    # retries=1, but credentials are not something a retry fixes: one try, one update.
    failure, out = _check_failure(dag_run, capfd, lakeflow_emulator, pipeline_id, condition, "source_credentials", [])
    assert failure["retry"] is False
    assert "LakeflowUpdateFailedNoRetry" in out


@pytest.mark.parametrize("mode", ["worker", "deferred"])
def test_transient_category_keeps_the_retries(airflow_db, lakeflow_emulator, mode):
    lakeflow_emulator.set_default_script(phase_seconds=0.02)
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_condition(pipeline_id, "INGESTION_GATEWAY_OPERATION_TIMEOUT.FETCH_METADATA")
    dag_run = run_dag(f"lf_failure_retries_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "run") == "success"
    assert dag_run.get_task_instance("run").try_number == 2
    states = [u["state"] for u in lakeflow_emulator.updates(pipeline_id)]
    assert states == ["COMPLETED", "FAILED"]  # newest first: the retry's update completed


def test_unknown_error_keeps_the_raw_messages(airflow_db, lakeflow_emulator, capfd):
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_pipeline(
        pipeline_id, phase_seconds=0.02, outcome="FAILED", error_message="java.lang.IllegalStateException: boom"
    )
    dag_run = run_dag("lf_failure_worker", pipeline_name="sales")
    assert task_state(dag_run, "run") == "failed"
    failure = xcom(dag_run, "run", "failure")
    assert failure["category"] == "unknown"
    assert failure["error_classes"] == []
    assert failure["messages"] == ["java.lang.IllegalStateException: boom"]
    assert failure["retry"] is True
    assert "- java.lang.IllegalStateException: boom" in capfd.readouterr().out


@pytest.mark.parametrize("mode", ["worker", "deferred"])
def test_update_cancelled_from_outside(airflow_db, lakeflow_emulator, mode):
    import threading
    import time

    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.5)

    def stop_when_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            updates = lakeflow_emulator.updates(pipeline_id)
            if updates and updates[0]["state"] == "RUNNING":
                LakeflowHook().run(operations.stop_pipeline(pipeline_id))
                return
            time.sleep(0.05)

    stopper = threading.Thread(target=stop_when_running)
    stopper.start()
    try:
        dag_run = run_dag(f"lf_failure_retries_{mode}", pipeline_name="sales")
    finally:
        stopper.join()
    assert task_state(dag_run, "run") == "failed"
    failure = xcom(dag_run, "run", "failure")
    assert failure["category"] == "cancelled"
    assert failure["state"] == "CANCELED"
    assert dag_run.get_task_instance("run").try_number == 1  # a stop is someone's decision: no retry
    assert len(lakeflow_emulator.updates(pipeline_id)) == 1


# --- the schema-change remedy -------------------------------------------------------------------------------------


def _phase_seconds(mode: str) -> float:
    """Deferred: each update must still be running at the operator's one check before deferring, which a loaded machine
    can hold back for a good part of a second; in the worker, quick updates keep the test short."""
    return 1.0 if mode == "deferred" else 0.1


@pytest.mark.parametrize("mode", ["worker", "deferred"])
def test_remedy_fully_refreshes_exactly_the_broken_table(airflow_db, lakeflow_emulator, capfd, caplog, mode):
    lakeflow_emulator.set_default_script(phase_seconds=_phase_seconds(mode))
    pipeline_id = make_sales_pipeline()
    condition = "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE"
    lakeflow_emulator.script_condition(pipeline_id, condition, table="Contact")
    dag_run = run_dag(f"lf_remedy_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "run") == "success"
    follow_up, failed = lakeflow_emulator.updates(pipeline_id)  # newest first
    assert failed["state"] == "FAILED" and follow_up["state"] == "COMPLETED"
    assert follow_up["full_refresh_selection"] == ["main.sales.Contact"]
    assert not follow_up["full_refresh"] and "refresh_selection" not in follow_up
    starts = lakeflow_emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/updates$", method="POST")
    assert [s.body.get("full_refresh_selection") for s in starts] == [None, ["main.sales.Contact"]]
    remedied = xcom(dag_run, "run", "remedied")
    assert remedied["failed_update_id"] == failed["update_id"]
    assert remedied["update_id"] == follow_up["update_id"]
    assert remedied["full_refresh_selection"] == ["main.sales.Contact"]
    assert remedied["error_classes"] == [condition]
    assert xcom(dag_run, "run") == follow_up["update_id"]
    assert xcom(dag_run, "run", "update_id") == follow_up["update_id"]
    assert xcom(dag_run, "run", "state") == "COMPLETED"
    out = capfd.readouterr().out
    assert "starts one follow-up update with full_refresh_selection=['main.sales.Contact']" in out
    if mode == "deferred":
        assert _waited_in_trigger(out + caplog.text, failed["update_id"])
        assert _waited_in_trigger(out + caplog.text, follow_up["update_id"])


@pytest.mark.parametrize("mode", ["worker", "deferred"])
def test_remedy_runs_once_per_try(airflow_db, lakeflow_emulator, capfd, caplog, mode):
    lakeflow_emulator.set_default_script(phase_seconds=_phase_seconds(mode))
    pipeline_id = make_sales_pipeline()
    condition = "CDC_INCOMPATIBLE_SCHEMA_CHANGES.PRIMARY_KEY_CHANGE"
    # Fails the first update and the full refresh that follows it.
    lakeflow_emulator.script_condition(pipeline_id, condition, table="Account", updates=2)
    dag_run = run_dag(f"lf_remedy_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "run") == "failed"
    updates = lakeflow_emulator.updates(pipeline_id)
    assert [u["state"] for u in updates] == ["FAILED", "FAILED"]  # no third update
    failure = xcom(dag_run, "run", "failure")
    assert failure["update_id"] == updates[0]["update_id"]
    assert failure["category"] == "schema_change_full_refresh"
    assert xcom(dag_run, "run", "remedied")["update_id"] == updates[0]["update_id"]
    out = capfd.readouterr().out
    assert "failed too; no further update is started" in out
    if mode == "deferred":
        assert _waited_in_trigger(out + caplog.text, updates[0]["update_id"])


def test_remedy_does_not_act_on_other_errors(airflow_db, lakeflow_emulator):
    lakeflow_emulator.set_default_script(phase_seconds=0.02)
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_condition(
        pipeline_id, "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE", table="Account"
    )
    lakeflow_emulator.script_condition(pipeline_id, "SAAS_CONNECTOR_DUPLICATE_DATA.IDENTICAL_ROWS", table="Contact")
    dag_run = run_dag("lf_remedy_worker", pipeline_name="sales")
    assert task_state(dag_run, "run") == "failed"
    assert len(lakeflow_emulator.updates(pipeline_id)) == 1
    failure = xcom(dag_run, "run", "failure")
    assert failure["category"] == "schema_change_full_refresh"  # the first listed of the two
    assert set(failure["error_classes"]) == {
        "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE",
        "SAAS_CONNECTOR_DUPLICATE_DATA.IDENTICAL_ROWS",
    }
    assert failure["tables"] == ["main.sales.Account", "main.sales.Contact"]


# --- no data --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["worker", "deferred"])
@pytest.mark.parametrize("policy", ["ignore", "warn", "fail"])
def test_no_data(airflow_db, lakeflow_emulator, capfd, policy, mode):
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.02, rows=0)
    dag_run = run_dag(f"lf_no_data_{policy}_{mode}", pipeline_name="sales")
    out = capfd.readouterr().out
    assert task_state(dag_run, "run") == ("failed" if policy == "fail" else "success")
    assert ("landed no rows in any table" in out) is (policy == "warn")
    failure = xcom(dag_run, "run", "failure")
    if policy == "fail":
        assert failure["category"] == "no_data"
        assert failure["tables"] == ["main.sales.Account", "main.sales.Contact", "main.sales.Opportunity"]
        assert "no new or changed rows" in failure["fix"]
        assert "(category no_data)" in out
    else:
        assert failure is None


def test_no_data_check_passes_when_one_table_landed_rows(airflow_db, lakeflow_emulator):
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_pipeline(
        pipeline_id, phase_seconds=0.02, rows={"Account": 0, "Contact": 3, "Opportunity": 0}
    )
    dag_run = run_dag("lf_no_data_fail_worker", pipeline_name="sales")
    assert task_state(dag_run, "run") == "success"


def test_emulated_condition_events_parse_with_databricks_sdk_and_control_over_http(lakeflow_emulator):
    import time

    from databricks.sdk.service.pipelines import PipelineEvent

    from airflow_provider_lakeflow.testing.emulator.control import EmulatorClient
    from airflow_provider_lakeflow.testing.emulator.errors import ApiError

    pipeline_id = make_sales_pipeline()
    client = EmulatorClient(lakeflow_emulator.url)
    with pytest.raises(ApiError, match=r"PRIMARY_KEY_CHANG.*known: .*PRIMARY_KEY_CHANGE"):
        client.script_condition(pipeline_id, "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANG", table="Account")
    client.script_condition(
        pipeline_id,
        "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE",
        table="Account",
        parameters={"oldKey": "[Id]", "newKey": "[Id, Tenant]"},
    )
    client.script_pipeline(pipeline_id, phase_seconds=0.01)
    update_id = client.start_update_externally(pipeline_id)
    deadline = time.monotonic() + 30
    while client.update(pipeline_id, update_id)["state"] != "FAILED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    w = LakeflowHook().get_conn()
    errors = [e for e in w.pipelines.list_pipeline_events(pipeline_id, filter="level='ERROR'")]
    assert errors and all(isinstance(e, PipelineEvent) for e in errors)
    flow = next(e for e in errors if e.origin.dataset_name)
    assert flow.origin.dataset_name == "main.sales.Account"
    assert flow.origin.ingestion_source_table_name == "Account"
    assert flow.error.exceptions[0].message == (
        "[SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE] A schema change has occurred in table "
        "objects.Account of the SALESFORCE source. The primary key has changed from [Id] to [Id, Tenant]. Please "
        "perform a FULL REFRESH on the specific destination table. SQLSTATE: 42KD4"
    )
    # The condition keeps failing incremental updates until the table is fully refreshed.
    again = client.start_update_externally(pipeline_id, refresh_selection=["main.sales.Account"])
    fixed = None
    while fixed is None or client.update(pipeline_id, fixed)["state"] not in ("COMPLETED", "FAILED"):
        assert time.monotonic() < deadline
        if client.update(pipeline_id, again)["state"] in ("COMPLETED", "FAILED") and fixed is None:
            assert client.update(pipeline_id, again)["state"] == "FAILED"
            fixed = client.start_update_externally(pipeline_id, full_refresh_selection=["main.sales.Account"])
        time.sleep(0.05)
    assert client.update(pipeline_id, fixed)["state"] == "COMPLETED"


@pytest.mark.parametrize("mode", ["worker", "deferred"])
def test_classifying_a_flow_failure_costs_no_extra_request(airflow_db, lakeflow_emulator, mode):
    """The failure is read from the events the task reads anyway; the flow's event names its destination table, so
    the spec is not read."""
    lakeflow_emulator.set_default_script(phase_seconds=0.02)
    pipeline_id = make_sales_pipeline()
    lakeflow_emulator.script_condition(
        pipeline_id, "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR.PRIMARY_KEY_CHANGE", table="Account"
    )

    def reads() -> dict[str, int]:
        events = lakeflow_emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/events$", method="GET")
        return {
            "spec": len(lakeflow_emulator.requests(path_regex=rf"/pipelines/{pipeline_id}$", method="GET")),
            # the update's events read once when the wait ends (metrics, and now the failure)
            "all_events": sum(1 for r in events if "filter" not in r.query),
            # the wait's own read of the ERROR events, as before categories existed
            "error_events": sum(1 for r in events if "level='ERROR'" in str(r.query.get("filter"))),
        }

    lakeflow_emulator.clear_requests()
    dag_run = run_dag(f"lf_failure_{mode}", pipeline_name="sales")
    assert xcom(dag_run, "run", "failure")["tables"] == ["main.sales.Account"]
    failed = reads()
    lakeflow_emulator.clear_conditions(pipeline_id)
    lakeflow_emulator.clear_requests()
    run_dag(f"lf_failure_{mode}", pipeline_name="sales")
    succeeded = reads()
    assert failed == {"spec": succeeded["spec"], "all_events": 1, "error_events": 1}
    assert succeeded["all_events"] == 1 and succeeded["error_events"] == 0
