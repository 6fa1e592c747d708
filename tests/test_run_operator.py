"""LakeflowRunPipelineOperator through real Airflow (dag.test) against the emulator."""

from __future__ import annotations

import pytest
from conftest import make_pipeline, run_dag, task_state, xcom

MODES = ["worker", "deferred"]


def _starts(emulator, pipeline_id: str) -> int:
    return len(emulator.updates(pipeline_id))


@pytest.mark.parametrize("mode", MODES)
def test_run_succeeds_and_pushes_xcoms(airflow_db, lakeflow_emulator, mode):
    lakeflow_emulator.set_default_script(phase_seconds=0.05)
    pipeline_id = make_pipeline("sales")
    dag_run = run_dag(f"lf_run_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "run") == "success"
    updates = lakeflow_emulator.updates(pipeline_id)
    assert len(updates) == 1
    update_id = updates[0]["update_id"]
    assert xcom(dag_run, "run") == update_id
    assert xcom(dag_run, "run", "pipeline_id") == pipeline_id
    assert xcom(dag_run, "run", "update_url") == (
        f"{lakeflow_emulator.url}/#joblist/pipelines/{pipeline_id}/updates/{update_id}"
    )
    assert xcom(dag_run, "run", "state") == "COMPLETED"
    metrics = xcom(dag_run, "run", "table_metrics")
    assert set(metrics) == {"main.sales.account", "main.sales.contact"}
    assert all(m["num_output_rows"] >= 0 for m in metrics.values())


@pytest.mark.parametrize("mode", MODES)
def test_failed_update_fails_task_with_event_log_errors(airflow_db, lakeflow_emulator, mode, capfd):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(
        pipeline_id, phase_seconds=0.05, outcome="FAILED", error_message="Duplicate primary key Id=42 in Account"
    )
    dag_run = run_dag(f"lf_run_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "run") == "failed"
    update_id = lakeflow_emulator.updates(pipeline_id)[0]["update_id"]
    # XComs were pushed before the wait, so they exist although the task failed.
    assert xcom(dag_run, "run", "update_id") == update_id
    assert xcom(dag_run, "run", "state") == "FAILED"
    out = capfd.readouterr().out
    assert "Duplicate primary key Id=42 in Account" in out
    assert f"/#joblist/pipelines/{pipeline_id}/updates/{update_id}" in out
    assert "ended in state FAILED" in out


@pytest.mark.parametrize("mode", MODES)
def test_selection_is_sent_exactly(airflow_db, lakeflow_emulator, mode):
    lakeflow_emulator.set_default_script(phase_seconds=0.05)
    pipeline_id = make_pipeline("sales")
    dag_run = run_dag(
        f"lf_selection_{mode}",
        pipeline_name="sales",
        refresh_selection=["main.sales.account"],
        full_refresh_selection=["main.sales.contact"],
    )
    assert task_state(dag_run, "run") == "success"
    (start,) = lakeflow_emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/updates$", method="POST")
    assert start.body == {
        "cause": "API_CALL",
        "full_refresh": False,
        "refresh_selection": ["main.sales.account"],
        "full_refresh_selection": ["main.sales.contact"],
    }


@pytest.mark.parametrize("mode", MODES)
def test_active_update_policy_fail(airflow_db, lakeflow_emulator, mode, capfd):
    pipeline_id = make_pipeline("sales")
    # The task fails at once, so the other update's length costs nothing: long enough for any machine.
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=60)
    started: list[str] = []
    dag_run = run_dag(
        f"lf_policy_fail_{mode}",
        parsed=lambda: started.append(lakeflow_emulator.start_update_externally(pipeline_id)),
        pipeline_name="sales",
    )
    assert task_state(dag_run, "run") == "failed"
    assert f"already has an active update {started[0]}" in capfd.readouterr().out
    assert _starts(lakeflow_emulator, pipeline_id) == 1


@pytest.mark.parametrize("mode", MODES)
def test_active_update_policy_reuse(airflow_db, lakeflow_emulator, mode):
    pipeline_id = make_pipeline("sales")
    # Long enough that the external update, started once the DAG is parsed, is still running when the task looks.
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=3.0)
    started: list[str] = []
    dag_run = run_dag(
        f"lf_policy_reuse_{mode}",
        parsed=lambda: started.append(lakeflow_emulator.start_update_externally(pipeline_id)),
        pipeline_name="sales",
    )
    assert task_state(dag_run, "run") == "success"
    assert xcom(dag_run, "run", "update_id") == started[0]
    assert _starts(lakeflow_emulator, pipeline_id) == 1


@pytest.mark.parametrize("mode", MODES)
def test_active_update_policy_wait(airflow_db, lakeflow_emulator, mode):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.2)
    other = lakeflow_emulator.start_update_externally(pipeline_id)
    dag_run = run_dag(f"lf_policy_wait_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "run") == "success"
    updates = lakeflow_emulator.updates(pipeline_id)
    assert len(updates) == 2
    by_id = {u["update_id"]: u for u in updates}
    assert by_id[other]["state"] == "COMPLETED"  # waited for, not stopped
    assert xcom(dag_run, "run", "update_id") != other


@pytest.mark.parametrize("mode", MODES)
def test_active_update_policy_cancel(airflow_db, lakeflow_emulator, mode):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=5)
    other = lakeflow_emulator.start_update_externally(pipeline_id)
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.05)
    dag_run = run_dag(f"lf_policy_cancel_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "run") == "success"
    by_id = {u["update_id"]: u for u in lakeflow_emulator.updates(pipeline_id)}
    assert by_id[other]["state"] == "CANCELED"
    assert len(by_id) == 2


@pytest.mark.parametrize("mode", MODES)
def test_timeout_stops_the_update_and_fails(airflow_db, lakeflow_emulator, mode, capfd):
    pipeline_id = make_pipeline("sales")
    # The stop ends the update, so its length costs nothing; it must outlast resuming the deferred task, which took
    # over 50 s on Airflow 3.2 on a loaded two-core machine (dag.test() starts tasks seconds slower there).
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=60)
    dag_run = run_dag(f"lf_timeout_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "run") == "failed"
    assert lakeflow_emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/stop$", method="POST")
    (update,) = lakeflow_emulator.updates(pipeline_id)
    assert update["state"] in ("STOPPING", "CANCELED")
    assert "timed out" in capfd.readouterr().out


@pytest.mark.parametrize("mode", MODES)
def test_execution_timeout_stops_the_update(airflow_db, lakeflow_emulator, mode):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=30)
    dag_run = run_dag(f"lf_execution_timeout_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "run") == "failed"
    assert lakeflow_emulator.requests(path_regex=rf"/pipelines/{pipeline_id}/stop$", method="POST")


@pytest.mark.parametrize("mode", MODES)
def test_retry_reconnects_to_the_update_it_started(airflow_db, lakeflow_emulator, mode):
    """The first try dies while waiting (a non-transient error); the retry must adopt the same update."""
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=0.3)
    lakeflow_emulator.inject_fault(rf"/pipelines/{pipeline_id}/updates/[^/]+$", method="GET", kind="status", status=400)
    dag_run = run_dag(f"lf_retry_{mode}", pipeline_name="sales")
    assert task_state(dag_run, "run") == "success"
    assert dag_run.get_task_instance("run").try_number == 2  # the first try did fail
    assert _starts(lakeflow_emulator, pipeline_id) == 1


def test_no_wait_returns_after_start(airflow_db, lakeflow_emulator):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=5)
    dag_run = run_dag("lf_no_wait", pipeline_name="sales")
    assert task_state(dag_run, "run") == "success"
    (update,) = lakeflow_emulator.updates(pipeline_id)
    assert xcom(dag_run, "run") == update["update_id"]
    assert update["state"] not in ("COMPLETED", "FAILED", "CANCELED")


def test_stop_operator_waits_for_canceled(airflow_db, lakeflow_emulator):
    pipeline_id = make_pipeline("sales")
    lakeflow_emulator.script_pipeline(pipeline_id, phase_seconds=5)
    other = lakeflow_emulator.start_update_externally(pipeline_id)
    dag_run = run_dag("lf_stop", pipeline_name="sales")
    assert task_state(dag_run, "stop") == "success"
    assert lakeflow_emulator.update(pipeline_id, other)["state"] == "CANCELED"
