"""LakeflowCreateConnectionOperator through real Airflow (dag.test) against the emulator: create, update, the secret
masked everywhere (captured logs, log files, the XCom table, a dump of the metadata DB), sign-in types refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import run_dag, task_state, xcom

SECRET = "Templated-S3cret-from-a-variable"
LITERAL_SECRET = "literal-Pa55phrase-in-dag-file"  # as in tests/dags/connection_dags.py
CONN_REQUESTS = r"/api/2\.1/unity-catalog/connections"


@pytest.fixture
def emulator(lakeflow_emulator, monkeypatch):
    # A variable name Airflow does not treat as sensitive: only the operator's masking can hide its value.
    monkeypatch.setenv("AIRFLOW_VAR_LAKEFLOW_TEST_DB_VALUE", SECRET)
    return lakeflow_emulator


def _leaks(home: Path, secret: str, captured: str) -> list[str]:
    """Every place the secret shows up: captured output, task log files, the XCom table, the metadata DB dump."""
    found = []
    if secret in captured:
        found.append("captured output")
    for path in (home / "logs").rglob("*"):
        if path.is_file() and secret in path.read_text(errors="replace"):
            found.append(str(path))
    db = sqlite3.connect(home / "airflow.db")
    try:
        for row in db.execute("SELECT * FROM xcom"):
            if secret in repr(row):
                found.append(f"xcom row {row[:6]}")
        if any(secret in line for line in db.iterdump()):
            found.append("metadata DB dump")
    finally:
        db.close()
    return found


def _rendered_fields_mention(home: Path, text: str) -> bool:
    db = sqlite3.connect(home / "airflow.db")
    try:
        return any(text in line and "rendered_task_instance_fields" in line for line in db.iterdump())
    finally:
        db.close()


def test_create_with_templated_secret_masks_it_everywhere(airflow_db, emulator, capfd):
    dag_run = run_dag("lf_conn_create", name="erp_sqlserver")
    assert task_state(dag_run, "create") == "success"
    assert xcom(dag_run, "create") == "erp_sqlserver"
    # The secret did reach the workspace (positive control) ...
    conn = emulator.connection("erp_sqlserver")
    assert conn["connection_type"] == "SQLSERVER"
    assert conn["secret_options"] == {"password": SECRET}
    assert conn["options"] == {"host": "db.example.com", "port": "1433", "user": "cdc_reader"}
    assert conn["comment"] == "made by a test"
    (create,) = emulator.requests(path_regex=CONN_REQUESTS + "$", method="POST")
    assert create.body["options"]["password"] == SECRET
    # ... and nowhere else.
    captured = capfd.readouterr()
    assert "Creating Unity Catalog connection 'erp_sqlserver' (SQLSERVER)" in captured.out
    assert _leaks(airflow_db, SECRET, captured.out + captured.err) == []
    assert _rendered_fields_mention(airflow_db, '"password": "***"')  # rendered options stored, masked


def test_literal_secret_in_dag_file_is_masked_too(airflow_db, emulator, capfd):
    dag_run = run_dag("lf_conn_create_literal", name="pg_literal")
    assert task_state(dag_run, "create") == "success"
    assert emulator.connection("pg_literal")["secret_options"] == {"password": LITERAL_SECRET}
    captured = capfd.readouterr()
    leaks = _leaks(airflow_db, LITERAL_SECRET, captured.out + captured.err)
    # The serialized DAG holds the DAG file's own literal (as does the file itself); nothing else may.
    assert [leak for leak in leaks if leak != "metadata DB dump"] == []
    db = sqlite3.connect(airflow_db / "airflow.db")
    try:
        dump = [line for line in db.iterdump() if LITERAL_SECRET in line]
    finally:
        db.close()
    assert all("serialized_dag" in line or "dag_code" in line for line in dump), dump


def test_second_run_patches_options_because_secrets_are_not_echoed(airflow_db, emulator):
    run_dag("lf_conn_create", name="erp_sqlserver")
    emulator.clear_requests()
    dag_run = run_dag("lf_conn_create", name="erp_sqlserver", host="db2.example.com")
    assert task_state(dag_run, "create") == "success"
    assert not emulator.requests(path_regex=CONN_REQUESTS + "$", method="POST")
    (patch,) = emulator.requests(path_regex=CONN_REQUESTS + "/erp_sqlserver$", method="PATCH")
    assert patch.body == {
        "options": {"host": "db2.example.com", "port": "1433", "user": "cdc_reader", "password": SECRET}
    }
    assert emulator.connection("erp_sqlserver")["options"]["host"] == "db2.example.com"


def test_update_if_exists_false_leaves_the_connection_alone(airflow_db, emulator, capfd):
    run_dag("lf_conn_create", name="erp_sqlserver")
    emulator.clear_requests()
    dag_run = run_dag("lf_conn_create_no_update", name="erp_sqlserver", host="other.example.com")
    assert task_state(dag_run, "create") == "success"
    assert not emulator.requests(method="PATCH")
    assert not emulator.requests(method="POST", path_regex=CONN_REQUESTS)
    assert emulator.connection("erp_sqlserver")["options"]["host"] == "db.example.com"
    assert "left as it is because update_if_exists=False" in capfd.readouterr().out


def test_connection_without_secrets_that_matches_is_not_patched(airflow_db, emulator):
    emulator.create_connection_as_ui(
        "public_api", "HTTP", {"host": "https://api.example.com", "port": "443", "bearer_token": "x" * 12}
    )
    dag_run = run_dag("lf_conn_create_api_key", name="public_api")
    assert task_state(dag_run, "create") == "success"
    # bearer_token is never returned, so the PATCH goes out although host and port match.
    (patch,) = emulator.requests(method="PATCH")
    assert patch.body["options"]["bearer_token"] == SECRET


def test_matching_public_options_are_a_no_op():
    """The comparison itself: echoed options equal and nothing hidden -> no PATCH (checked without Airflow)."""
    from airflow_provider_lakeflow.operators import LakeflowCreateConnectionOperator

    class FakeHook:
        def __init__(self) -> None:
            self.calls: list = []

        def run(self, operation):
            self.calls.append(operation)

    op = LakeflowCreateConnectionOperator(
        task_id="t", name="c", connection_type="HTTP", options={"host": "https://api.example.com", "port": "443"}
    )
    hook = FakeHook()
    live = {"connection_type": "HTTP", "options": {"host": "https://api.example.com", "port": "443", "extra": "x"}}
    op._reconcile(hook, live, "c", "HTTP", {"host": "https://api.example.com", "port": "443"})  # type: ignore[arg-type]
    assert hook.calls == []
    op._reconcile(hook, live, "c", "HTTP", {"host": "https://api.example.com", "port": "8443"})  # type: ignore[arg-type]
    assert len(hook.calls) == 1


def test_existing_connection_of_another_type_fails_clearly(airflow_db, emulator, capfd):
    emulator.create_connection_as_ui("erp_sqlserver", "SALESFORCE", {})
    dag_run = run_dag("lf_conn_create", name="erp_sqlserver")
    assert task_state(dag_run, "create") == "failed"
    out = capfd.readouterr().out
    assert "exists with type SALESFORCE, not SQLSERVER" in out
    assert not emulator.requests(method="PATCH")


def test_lost_create_response_is_reconciled_not_repeated(airflow_db, emulator):
    emulator.inject_fault(CONN_REQUESTS + "$", method="POST", kind="drop", when="after")
    dag_run = run_dag("lf_conn_create", name="erp_sqlserver")
    assert task_state(dag_run, "create") == "success"
    assert len(emulator.requests(path_regex=CONN_REQUESTS + "$", method="POST")) == 1
    assert emulator.connection("erp_sqlserver")["secret_options"] == {"password": SECRET}


def test_return_value_and_xcom_never_hold_options(airflow_db, emulator):
    dag_run = run_dag("lf_conn_create", name="erp_sqlserver")
    assert xcom(dag_run, "create") == "erp_sqlserver"
    db = sqlite3.connect(airflow_db / "airflow.db")
    try:
        rows = [r for r in db.execute("SELECT * FROM xcom WHERE run_id = ?", (dag_run.run_id,))]
    finally:
        db.close()
    assert rows and all("cdc_reader" not in repr(r) and "1433" not in repr(r) for r in rows)


def test_sign_in_types_fail_at_parse_time_with_the_walkthrough():
    from airflow_provider_lakeflow.connection_options import SignInRequiredError
    from airflow_provider_lakeflow.operators import LakeflowCreateConnectionOperator

    with pytest.raises(SignInRequiredError) as info:
        LakeflowCreateConnectionOperator(
            task_id="t", name="salesforce_conn", connection_type="SALESFORCE", options={"{{ x }}": "y"}
        )
    text = str(info.value)
    assert "Catalog > External Data > Connections > Create connection" in text
    assert "sign in to Salesforce" in text
    assert "LakeflowConnectionReadySensor(task_id=..., connection_name='salesforce_conn')" in text


def test_importing_operators_and_sensors_loads_no_heavy_module():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import airflow_provider_lakeflow.operators, airflow_provider_lakeflow.sensors\n"
        "heavy = [m for m in ('databricks.sdk', 'aiohttp') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
