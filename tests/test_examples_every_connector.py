"""Every example DAG: parses cleanly and lightly, is scheduled, never continuous; and the per-connector examples run end
to end through real Airflow (``dag.test()``) against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from conftest import ROOT, load_dag, run_dag, xcom

EXAMPLES = ROOT / "example_dags"
SECRET = "Examp1e-Secret-never-logged"

# Runs in a fresh interpreter, so that nothing the test session imported hides what parsing the DAG files imports.
_PARSE_SCRIPT = r"""
import json, sys

HEAVY = ("databricks.sdk", "aiohttp")


def heavy():
    return sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


try:
    from airflow.dag_processing.dagbag import DagBag  # Airflow 3
except ImportError:
    from airflow.models.dagbag import DagBag  # Airflow 2

before = heavy()
bag = DagBag(dag_folder=sys.argv[1])  # examples off: AIRFLOW__CORE__LOAD_EXAMPLES=False
after = heavy()
dags = {}
for dag_id, dag in bag.dags.items():
    specs = {}
    for task in dag.tasks:
        spec = getattr(task, "spec", None)
        if isinstance(spec, dict):
            specs[task.task_id] = spec
    dags[dag_id] = {
        "file": dag.fileloc,
        "timetable": type(dag.timetable).__name__,
        "catchup": dag.catchup,
        "specs": specs,
    }
print(json.dumps({
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "heavy_before": before,
    "heavy_after": after,
    "dags": dags,
}))
"""


@pytest.fixture(scope="module")
def parsed(airflow_db):
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE_SCRIPT, str(EXAMPLES)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_example_parses_without_errors(parsed):
    assert parsed["import_errors"] == {}
    files = {p.name for p in EXAMPLES.glob("*.py")}
    assert {os.path.basename(d["file"]) for d in parsed["dags"].values()} == files


def test_parsing_the_examples_loads_no_sdk_and_no_aiohttp(parsed):
    assert parsed["heavy_before"] == []  # Airflow itself did not load them either, so the next check means something
    assert parsed["heavy_after"] == []


def test_every_example_is_scheduled_and_no_ingestion_pipeline_is_continuous(parsed):
    for dag_id, dag in parsed["dags"].items():
        assert dag["timetable"] != "NullTimetable", f"{dag_id} has no schedule"
        assert dag["catchup"] is False, f"{dag_id} catches up"
        for task_id, spec in dag["specs"].items():
            assert "libraries" not in spec, (dag_id, task_id)
            if "gateway_definition" in spec:
                continue  # a database gateway is the one pipeline that runs continuously
            assert spec.get("continuous") is not True, (dag_id, task_id)


@dataclass
class Example:
    dag_id: str
    pipelines: tuple[str, ...]  # ingestion pipelines the DAG runs
    gateway: str | None = None
    ui_connection: tuple[str, str] | None = None  # (name, type) made once in Catalog Explorer
    api_connection: tuple[str, str] | None = None  # (name, type) the DAG creates
    run_task: str = "run_pipeline"
    env: dict[str, str] = field(default_factory=dict)


def _db_conn(port: int) -> str:
    return json.dumps(
        {"conn_type": "generic", "host": "db.example.com", "port": port, "login": "lakeflow", "password": SECRET}
    )


NEW_EXAMPLES = [
    Example(
        "example_lakeflow_workday_reports",
        ("workday-hr-reports",),
        api_connection=("workday_hr", "WORKDAY_RAAS"),
        env={
            "AIRFLOW_CONN_WORKDAY_ISU": json.dumps(
                {"conn_type": "generic", "login": "ISU_Lakeflow", "password": SECRET}
            )
        },
    ),
    Example("example_lakeflow_servicenow", ("servicenow-itsm",), ui_connection=("servicenow_conn", "SERVICENOW")),
    Example("example_lakeflow_ga4", ("ga4-web-analytics",), ui_connection=("ga4_conn", "GA4_RAW_DATA")),
    Example("example_lakeflow_hubspot", ("hubspot-crm",), ui_connection=("hubspot_conn", "HUBSPOT")),
    Example("example_lakeflow_confluence", ("confluence-wiki",), ui_connection=("confluence_conn", "CONFLUENCE")),
    Example(
        "example_lakeflow_sqlserver_onprem",
        ("sqlserver-plant-ingestion",),
        gateway="sqlserver-plant-gateway",
        api_connection=("sqlserver_plant", "SQLSERVER"),
        run_task="run_ingestion",
        env={
            "AIRFLOW_CONN_SQLSERVER_PLANT": _db_conn(1433),
            "AIRFLOW_VAR_LAKEFLOW_GATEWAY_POLICY_ID": "E06216CAA0000360",
        },
    ),
    Example(
        "example_lakeflow_netsuite",
        ("netsuite-erp",),
        api_connection=("netsuite_conn", "NETSUITE"),
        env={
            "AIRFLOW_VAR_NETSUITE_TBA": json.dumps(
                {
                    "account_id": "1234567_SB1",
                    "role_id": "1042",
                    "consumer_key": "consumer-key-for-tests",
                    "consumer_secret": SECRET,
                    "token_id": "token-id-for-tests",
                    "token_secret": SECRET,
                }
            )
        },
    ),
    Example(
        "example_lakeflow_dynamics365",
        ("d365-sales",),
        api_connection=("d365_sales", "DYNAMICS365"),
        env={
            "AIRFLOW_CONN_D365_ENTRA_APP": json.dumps(
                {
                    "conn_type": "generic",
                    "login": "87654321-4321-4321-4321-cba987654321",
                    "password": SECRET,
                    "extra": {"tenant_id": "12345678-1234-1234-1234-123456789abc"},
                }
            )
        },
    ),
    Example(
        "example_lakeflow_mysql_cdc",
        ("mysql-orders-ingestion",),
        gateway="mysql-orders-gateway",
        api_connection=("mysql_orders", "MYSQL"),
        run_task="run_ingestion",
        env={"AIRFLOW_CONN_MYSQL_ORDERS": _db_conn(3306)},
    ),
    Example(
        "example_lakeflow_oracle_query_based",
        ("oracle-erp-query-based",),
        api_connection=("oracle_erp", "ORACLE"),
        env={"AIRFLOW_CONN_ORACLE_ERP": _db_conn(1521)},
    ),
    Example("example_lakeflow_sharepoint", ("sharepoint-documents",), ui_connection=("sharepoint_conn", "SHAREPOINT")),
    Example("example_lakeflow_google_drive", ("gdrive-sales-orders",), ui_connection=("gdrive_conn", "GOOGLE_DRIVE")),
    Example("example_lakeflow_onedrive", ("onedrive-forecasts",), ui_connection=("onedrive_conn", "ONEDRIVE")),
    Example(
        "example_lakeflow_foreign_catalog",  # authored in a bundle file; no connection: the foreign catalogs carry it
        tuple(f"federated-warehouses-{w}" for w in ("snowflake", "redshift", "synapse", "bigquery")),
        run_task="run_snowflake_sales",
    ),
    Example(
        "example_lakeflow_teradata_query_based",
        ("teradata-edw-query-based",),
        api_connection=("teradata_edw", "TERADATA"),
        env={"AIRFLOW_CONN_TERADATA_EDW": _db_conn(1025)},
    ),
]


@pytest.mark.parametrize("example", NEW_EXAMPLES, ids=lambda e: e.dag_id)
def test_example_runs_end_to_end(airflow_db, lakeflow_emulator, monkeypatch, capfd, example):
    for key, value in example.env.items():
        monkeypatch.setenv(key, value)
    if example.ui_connection:
        name, ctype = example.ui_connection
        lakeflow_emulator.create_connection_as_ui(name, ctype, {})
    lakeflow_emulator.set_default_script(phase_seconds=0.05)

    dag_run = run_dag(example.dag_id)
    out = capfd.readouterr().out

    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    assert states and set(states.values()) == {"success"}, (states, out[-4000:])
    assert SECRET not in out

    created_connections = lakeflow_emulator.requests(method="POST", path_regex=r"/unity-catalog/connections$")
    if example.api_connection:
        name, ctype = example.api_connection
        assert lakeflow_emulator.connection(name)["connection_type"] == ctype
        assert len(created_connections) == 1
    else:
        assert not created_connections  # a sign-in connection is never created from Airflow

    pipelines = {p["spec"]["name"]: p for p in lakeflow_emulator.pipelines()}
    assert set(pipelines) == {*example.pipelines, *([example.gateway] if example.gateway else [])}
    for name, pipeline in pipelines.items():
        spec = pipeline["spec"]
        assert "libraries" not in spec, name
        if name == example.gateway:
            assert "gateway_definition" in spec and spec["continuous"] is True
            assert "serverless" not in spec
            continue
        assert spec.get("continuous") is not True, name
        pipeline_id = pipeline["pipeline_id"]
        starts = lakeflow_emulator.requests(method="POST", path_regex=rf"/api/2\.0/pipelines/{pipeline_id}/updates$")
        assert len(starts) == 1, name
        (update,) = lakeflow_emulator.updates(pipeline_id)
        assert update["state"] == "COMPLETED"
        if example.gateway:
            gateway_id = pipelines[example.gateway]["pipeline_id"]
            assert spec["ingestion_definition"]["ingestion_gateway_id"] == gateway_id
    assert xcom(dag_run, example.run_task, "state") == "COMPLETED"

    # The objects and their table configuration (SCD type, keys, cursors, report parameters) reach the workspace as
    # written in the DAG file: templating the spec leaves them alone.
    written = {}
    for task in load_dag(example.dag_id).tasks:
        spec = getattr(task, "spec", None)
        if isinstance(spec, str) and spec.endswith(".yml"):  # a bundle file: the pipeline as the operator resolves it
            task.render_template_fields({"params": task.params.dump()})
            spec = task._checked_spec()
        if isinstance(spec, dict) and "ingestion_definition" in spec:
            written[spec["name"]] = spec["ingestion_definition"]["objects"]
    assert set(written) == set(example.pipelines)
    for name, objects in written.items():
        assert pipelines[name]["spec"]["ingestion_definition"]["objects"] == objects, name
