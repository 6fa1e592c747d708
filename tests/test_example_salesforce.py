"""The Salesforce example DAGs, run through real Airflow (``dag.test()``) against the emulator."""

from __future__ import annotations

from conftest import load_dag


def test_example_salesforce_runs_end_to_end(airflow_db, lakeflow_emulator):
    dag = load_dag("example_lakeflow_salesforce")
    dag_run = dag.test()
    assert dag_run.state == "success"
    pipelines = lakeflow_emulator.pipelines()
    assert [p["name"] for p in pipelines] == ["salesforce-to-main-sales"]
    starts = lakeflow_emulator.requests(path_regex=r"/api/2.0/pipelines/[^/]+/updates$", method="POST")
    assert len(starts) == 1
