"""What an update did: per-table progress in the log, table metrics, OpenLineage, and Assets for landed tables."""

from __future__ import annotations

import builtins
import json

import pytest
from conftest import make_pipeline, run_dag, task_state, xcom

from airflow_provider_lakeflow.hooks import LakeflowHook
from airflow_provider_lakeflow.lineage import asset_uri, datasets, operator_lineage
from airflow_provider_lakeflow.workspace.waiting import wait_for_update


class _Log:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, msg, *args):
        self.lines.append(msg % args)

    warning = info


def test_progress_is_logged_once_per_table_per_change(lakeflow_emulator):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(
        pipeline_id,
        phase_seconds={
            "QUEUED": 0.05,
            "WAITING_FOR_RESOURCES": 0.05,
            "INITIALIZING": 0.05,
            "SETTING_UP_TABLES": 0.05,
            "RUNNING": 1.0,
        },
    )
    update_id = lakeflow_emulator.start_update_externally(pipeline_id)
    log = _Log()
    hook = LakeflowHook()
    outcome = hook.run(
        wait_for_update(
            pipeline_id, update_id, host=hook.host, poll_interval=0.05, end_time=None, log=log, progress_interval=0.1
        )
    )
    assert outcome.status == "success"
    state_lines = [line for line in log.lines if line.startswith(f"Update {update_id}")]
    assert len(state_lines) == len(set(state_lines))  # one line per state change, not per poll
    polls = lakeflow_emulator.requests(path_regex=rf"/updates/{update_id}$", method="GET")
    assert len(polls) > len(state_lines)
    progress = [line for line in log.lines if line.startswith("Table ")]
    assert progress, log.lines
    assert len(progress) == len(set(progress))
    assert {line.split()[1].rstrip(":") for line in progress} <= {"main.sales.account", "main.sales.contact"}
    # Progress reads are rate-limited: far fewer event reads than polls.
    reads = lakeflow_emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/events$")
    assert 0 < len(reads) < len(polls)


def test_no_progress_reads_when_disabled(lakeflow_emulator):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.1)
    update_id = lakeflow_emulator.start_update_externally(pipeline_id)
    hook = LakeflowHook()
    hook.run(
        wait_for_update(
            pipeline_id,
            update_id,
            host=hook.host,
            poll_interval=0.05,
            end_time=None,
            log=_Log(),
            progress_interval=None,
        )
    )
    assert not lakeflow_emulator.requests(path_regex=r"/events$")


def test_table_metrics_match_the_event_log(airflow_db, lakeflow_emulator):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.05, rows={"main.sales.account": 1234})
    dag_run = run_dag("lf_run_worker", pipeline_name="sales")
    assert task_state(dag_run, "run") == "success"
    metrics = xcom(dag_run, "run", "table_metrics")
    assert metrics["main.sales.account"]["num_output_rows"] == 1234
    update_id = xcom(dag_run, "run", "update_id")
    flows = [
        e for e in lakeflow_emulator.events(pipeline_id, update_id) if (e.get("details") or {}).get("flow_progress")
    ]
    last = {}
    for event in flows:
        if "metrics" in event["details"]["flow_progress"]:
            last[event["origin"]["dataset_name"]] = event["details"]["flow_progress"]["metrics"]
    assert set(last) == set(metrics)
    for table, values in last.items():
        assert metrics[table]["num_output_rows"] == values["num_output_rows"]
        assert metrics[table]["num_upserted_rows"] == values["num_upserted_rows"]
        assert metrics[table]["num_deleted_rows"] == values["num_deleted_rows"]


SPEC = {
    "name": "sf",
    "ingestion_definition": {
        "connection_name": "salesforce_conn",
        "source_type": "SALESFORCE",
        "objects": [
            {
                "table": {
                    "source_schema": "objects",
                    "source_table": "Account",
                    "destination_catalog": "main",
                    "destination_schema": "sales",
                    "destination_table": "account",
                }
            },
            {"schema": {"source_schema": "objects", "destination_catalog": "main", "destination_schema": "raw"}},
            {
                "report": {
                    "source_url": "https://wd.example.com/ccx/service/customreport2/acme/Headcount",
                    "destination_catalog": "main",
                    "destination_schema": "hr",
                }
            },
        ],
    },
}


def test_lineage_names_sources_and_destination_tables():
    inputs, outputs = datasets(SPEC, "https://adb-1.azuredatabricks.net")
    assert [(d.namespace, d.name) for d in inputs] == [
        ("salesforce://salesforce_conn", "objects.Account"),
        ("salesforce://salesforce_conn", "objects"),
        ("salesforce://salesforce_conn", "https://wd.example.com/ccx/service/customreport2/acme/Headcount"),
    ]
    assert [(d.namespace, d.name) for d in outputs] == [
        ("databricks://adb-1.azuredatabricks.net", "main.sales.account"),
        ("databricks://adb-1.azuredatabricks.net", "main.hr.Headcount"),
    ]
    landed = ["main.sales.account", "main.raw.objects_table_1"]
    inputs, outputs = datasets(SPEC, "https://adb-1.azuredatabricks.net", landed=landed)
    assert [d.name for d in outputs] == ["main.sales.account", "main.raw.objects_table_1"]
    assert [d.name for d in inputs] == ["objects.Account", "objects"]


def test_operator_lineage_with_and_without_openlineage(monkeypatch):
    pytest.importorskip("airflow.providers.openlineage")
    lineage = operator_lineage(SPEC, "https://adb-1.azuredatabricks.net")
    assert [d.name for d in lineage.outputs] == ["main.sales.account", "main.hr.Headcount"]
    assert lineage.inputs[0].namespace == "salesforce://salesforce_conn"

    real_import = builtins.__import__

    def no_openlineage(name, *args, **kwargs):
        if name.startswith(("airflow.providers.openlineage", "openlineage")):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openlineage)
    assert operator_lineage(SPEC, "https://adb-1.azuredatabricks.net") is None


def test_run_operator_reports_lineage_after_a_run(airflow_db, lakeflow_emulator):
    pytest.importorskip("airflow.providers.openlineage")
    from conftest import load_dag

    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.set_default_script(phase_seconds=0.02)
    dag_run = run_dag("lf_run_worker", pipeline_name="sales")
    task = load_dag("lf_run_worker").get_task("run")
    task._resolved_pipeline_id = pipeline_id

    class _TI:
        def xcom_pull(self, task_ids, key):
            return xcom(dag_run, task_ids, key)

    lineage = task.get_openlineage_facets_on_complete(_TI())
    host = lakeflow_emulator.url.split("://", 1)[1]
    assert sorted((d.namespace, d.name) for d in lineage.outputs) == [
        (f"databricks://{host}", "main.sales.account"),
        (f"databricks://{host}", "main.sales.contact"),
    ]
    assert {d.namespace for d in lineage.inputs} == {"lakeflow-connect://salesforce_conn"}
    # The schema facet comes from the update's flow_definition events.
    for dataset in lineage.outputs:
        fields = [(f.name, f.type) for f in dataset.facets["schema"].fields]
        assert ("id", "LONG") in fields and ("updated_at", "TIMESTAMP") in fields


def test_assets_published_per_landed_table(airflow_db, lakeflow_emulator, monkeypatch):
    lakeflow_emulator.create_connection_as_ui("salesforce_conn", "SALESFORCE", {"instance_url": "https://x"})
    make_pipeline("salesforce-to-main-sales", tables=("account", "opportunity"))
    lakeflow_emulator.set_default_script(phase_seconds=0.02)
    dag_run = run_dag("example_lakeflow_assets_producer")
    assert task_state(dag_run, "run_ingestion") == "success"
    from airflow.utils.session import create_session

    try:
        from airflow.models.asset import AssetEvent, AssetModel
    except ImportError:  # Airflow 2
        from airflow.models.dataset import DatasetEvent as AssetEvent
        from airflow.models.dataset import DatasetModel as AssetModel

    with create_session() as session:
        rows = (
            session.query(AssetEvent, AssetModel)
            .join(
                AssetModel,
                AssetEvent.dataset_id == AssetModel.id
                if hasattr(AssetEvent, "dataset_id")
                else AssetEvent.asset_id == AssetModel.id,
            )
            .all()
        )
        uris = sorted(model.uri for _, model in rows)
        extras = {model.uri: event.extra for event, model in rows}
    host = lakeflow_emulator.url
    assert uris == [asset_uri(host, "main.sales.account"), asset_uri(host, "main.sales.opportunity")]
    account = extras[asset_uri(host, "main.sales.account")]
    account = json.loads(account) if isinstance(account, str) else account
    assert account["table"] == "main.sales.account"
    assert account["num_output_rows"] > 0
