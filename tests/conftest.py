"""Test session setup: a private AIRFLOW_HOME with a migrated SQLite DB, and a DAGs folder holding the example DAGs
and the test DAGs, so that ``dag.test()`` runs them through real Airflow."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
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


#: Modules that measure time or CPU, or run a whole Airflow stack (scheduler, triggerer, api-server). `make test`
#: runs them alone, after the rest has run in parallel (pytest-xdist): a measurement shares the machine with nothing
#: of ours, and a stack's timelines are not stretched by a dozen other tests' processes. test_auth_modes checks what
#: the process-wide secrets masker hides before and after the hook registers a secret, so it needs a process where no
#: other test has registered any (Airflow 2.11's masker then hides every "0" or "p" inside a probe): it is first.
SERIAL_MODULES = frozenset(
    {
        "test_auth_modes",
        "test_emulator_scale",
        "test_event_driven",
        "test_real_triggerer",
        "test_trigger_event_loop",
        "test_triggerer_failover",
        "test_workspace_gate",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)


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


def run_dag(dag_id: str, *, parsed: Callable[[], object] | None = None, **conf):
    """Run a DAG from the DAGs folder with ``dag.test()`` and return the finished DagRun.

    ``parsed`` is called once the DAG has been parsed, just before the run: a test whose remote timeline must still be
    going when the task looks starts it there, not before parsing (a loaded machine can take many seconds to parse).
    """
    dag = load_dag(dag_id)
    if hasattr(dag, "sync_to_db"):
        # Airflow 2's dag.test does not register the DAG's datasets and aliases; the scheduler would.
        dag.sync_to_db()
    if parsed is not None:
        parsed()
    return dag.test(run_conf=conf or None)


def task_state(dag_run, task_id: str) -> str | None:
    ti = dag_run.get_task_instance(task_id)
    return None if ti is None or ti.state is None else str(ti.state)


def xcom(dag_run, task_id: str, key: str = "return_value"):
    """An XCom value as stored in the metadata DB by the run."""
    from airflow.utils.session import create_session

    try:
        from airflow.models.xcom import XComModel  # Airflow 3
    except ImportError:  # Airflow 2
        from airflow.models.xcom import XCom

        return XCom.get_one(run_id=dag_run.run_id, dag_id=dag_run.dag_id, task_id=task_id, key=key)

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


def make_pipeline(name: str, tables: tuple[str, ...] = ("account", "contact")) -> str:
    """Create an ingestion pipeline through the hook (the connection points at the emulator)."""
    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.workspace import operations

    spec = {
        "name": name,
        "ingestion_definition": {
            "connection_name": "salesforce_conn",
            "objects": [
                {
                    "table": {
                        "source_schema": "objects",
                        "source_table": table,
                        "destination_catalog": "main",
                        "destination_schema": "sales",
                    }
                }
                for table in tables
            ],
        },
    }
    return LakeflowHook().run(operations.create_pipeline(spec))


@pytest.fixture(autouse=True)
def _fresh_shared_connection_settings():
    """Triggers share loaded connection settings for a minute; tests change connections far more often."""
    from airflow_provider_lakeflow.hooks import lakeflow

    lakeflow._SHARED_SETTINGS.clear()
    yield
    lakeflow._SHARED_SETTINGS.clear()
