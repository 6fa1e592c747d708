"""UI test session: a private AIRFLOW_HOME whose api-server uses Airflow's simple auth manager with real users.

Users (passwords in a file, as the simple auth manager reads them): ``admin`` (admin), ``viewer`` (viewer),
``alice`` (viewer in team ``team_a``) and ``bob`` (viewer in team ``team_b``). Multi-team mode is on, so a DAG whose
bundle belongs to ``team_b`` is readable by ``bob`` and refused to ``alice``: Airflow's own per-DAG check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOME = Path(tempfile.mkdtemp(prefix="lakeflow-ui-home-"))
DAGS_FOLDER = HOME / "dags"
DAGS_FOLDER.mkdir()
for source in sorted((ROOT / "tests_ui" / "dags").glob("*.py")):
    (DAGS_FOLDER / source.name).symlink_to(source)
PASSWORDS = {"admin": "admin-pw", "viewer": "viewer-pw", "alice": "alice-pw", "bob": "bob-pw"}
(HOME / "passwords.json").write_text(json.dumps(PASSWORDS))

os.environ.update(
    {
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer,alice:viewer:team_a,bob:viewer:team_b",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(HOME / "passwords.json"),
        "AIRFLOW__CORE__MULTI_TEAM": "True",
        "AIRFLOW__API_AUTH__JWT_SECRET": "lakeflow-ui-tests-jwt-secret-" + "x" * 64,
    }
)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    for team in ("team_a", "team_b"):
        subprocess.run([sys.executable, "-m", "airflow", "teams", "create", team], check=True, capture_output=True)
    return HOME


def run_dag(dag_id: str, **conf):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id).test(run_conf=conf or None)


def make_pipeline(name: str, tables: tuple[str, ...] = ("account", "contact")) -> str:
    from airflow_provider_lakeflow.hooks import LakeflowHook
    from airflow_provider_lakeflow.workspace import operations

    objects = [
        {
            "table": {
                "source_schema": "objects",
                "source_table": table,
                "destination_catalog": "main",
                "destination_schema": "sales",
            }
        }
        for table in tables
    ]
    spec = {"name": name, "ingestion_definition": {"connection_name": "salesforce_conn", "objects": objects}}
    return LakeflowHook().run(operations.create_pipeline(spec))
