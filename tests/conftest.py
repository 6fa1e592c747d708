"""Test session setup: a private AIRFLOW_HOME with a migrated SQLite DB, and a DAGs folder holding the example DAGs
and the test DAGs, so that ``dag.test()`` runs them through real Airflow."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="lakeflow-airflow-home-"))
DAGS_FOLDER = _HOME / "dags"
DAGS_FOLDER.mkdir()
for source in [*sorted((ROOT / "example_dags").glob("*.py")), *sorted((ROOT / "tests" / "dags").glob("*.py"))]:
    (DAGS_FOLDER / source.name).symlink_to(source)

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
os.environ["LAKEFLOW_EXAMPLE_POLL_SECONDS"] = "0.2"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata DB (SQLite in the private AIRFLOW_HOME), made once per session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _HOME


def load_dag(dag_id: str):
    """A DAG from the DAGs folder, parsed as the scheduler would."""
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]  # Airflow 2

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)
