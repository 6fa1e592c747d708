"""Unknown fields at every depth of a spec: an error naming the dotted path and the closest known field, before any
request; literal specs fail when the DAG file is parsed, and without databricks-sdk being imported."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator
from airflow_provider_lakeflow.spec import field_table
from airflow_provider_lakeflow.spec.errors import PipelineSpecError

ID = "ingestion_definition"
OBJ = f"{ID}.objects[0].table"


def base() -> dict[str, Any]:
    return {
        "name": "fields",
        "ingestion_definition": {
            "connection_name": "sp_conn",
            "objects": [
                {
                    "table": {
                        "source_schema": "docs",
                        "source_table": "invoices",
                        "destination_catalog": "main",
                        "destination_schema": "files",
                        "table_configuration": {"scd_type": "SCD_TYPE_1"},
                    }
                }
            ],
        },
    }


def at(path: str, key: str, value: Any = "x") -> dict[str, Any]:
    """``base()`` with ``key: value`` placed at the dotted ``path`` (``a.b[0].c``), creating objects on the way."""
    spec = base()
    node: Any = spec
    for part in filter(None, path.replace("[", ".[").split(".")):
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    node[key] = value
    return spec


TYPOS = [
    # (where, misspelt key, what the message must suggest)
    ("", "ingestoin_definition", "ingestion_definition"),
    ("", "serverles", "serverless"),
    (ID, "conection_name", "connection_name"),
    (ID, "full_refresh_windows", "full_refresh_window"),
    (f"{ID}.objects[0]", "tabel", "table"),
    (OBJ, "source_tabel", "source_table"),
    (OBJ, "Destination_Table", "destination_table"),
    (f"{OBJ}.table_configuration", "primary_key", "primary_keys"),
    (f"{OBJ}.table_configuration", "scd", "scd_type"),
    (f"{OBJ}.table_configuration.query_based_connector_config", "cursor_column", "cursor_columns"),
    (f"{OBJ}.table_configuration.auto_full_refresh_policy", "min_interval_hour", "min_interval_hours"),
    (f"{OBJ}.connector_options", "sharepoint_option", "sharepoint_options"),
    (f"{OBJ}.connector_options.sharepoint_options", "entity", "entity_type"),
    (f"{OBJ}.connector_options.sharepoint_options.file_ingestion_options", "formats", "format"),
    (f"{OBJ}.connector_options.jira_options", "include_jira_space", "include_jira_spaces"),
    ("restart_window", "start_hours", "start_hour"),
    ("event_log", "catalogue", "catalog"),
]


def _raised(spec: dict[str, Any]) -> PipelineSpecError:
    with pytest.raises(PipelineSpecError) as info:
        LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec)
    return info.value


@pytest.mark.parametrize(("path", "key", "suggestion"), TYPOS, ids=[f"{p or 'top'}.{k}" for p, k, _ in TYPOS])
def test_a_typo_at_each_depth_names_its_path_and_the_field_meant(
    lakeflow_emulator: Any, path: str, key: str, suggestion: str
) -> None:
    spec = at(path, key)
    if key == "min_interval_hour":
        spec = at(path, "enabled", True)
        node = spec[ID]["objects"][0]["table"]["table_configuration"]["auto_full_refresh_policy"]
        node[key] = 3
    err = _raised(spec)
    full = f"{path}.{key}" if path else key
    assert err.field == full
    assert f"'{full}'" in str(err)
    assert f"did you mean '{suggestion}'?" in str(err)
    assert lakeflow_emulator.requests() == []


def test_typos_in_lists_and_in_compute_settings() -> None:
    spec = base()
    spec["clusters"] = [{"label": "default", "autoscale": {"min_workers": 1, "maxworkers": 2}}]
    err = _raised(spec)
    assert err.field == "clusters[0].autoscale.maxworkers" and "did you mean 'max_workers'?" in str(err)

    spec = base()
    spec[ID]["source_configurations"] = [{"catalog": {"source_catalog": "pg", "postgres": {"slot_conifg": {}}}}]
    err = _raised(spec)
    assert err.field == f"{ID}.source_configurations[0].catalog.postgres.slot_conifg"
    assert "did you mean 'slot_config'?" in str(err)

    spec = base()
    spec["notifications"] = [{"alerts": ["on-update-failure"], "email_recipient": ["a@b.c"]}]
    assert _raised(spec).field == "notifications[0].email_recipient"


def test_unknown_enum_values_and_wrong_shapes() -> None:
    err = _raised(at(f"{OBJ}.table_configuration", "scd_type", "scd_type_2"))
    assert err.field == f"{OBJ}.table_configuration.scd_type" and "did you mean 'SCD_TYPE_2'?" in str(err)
    err = _raised(at(f"{OBJ}.connector_options.gdrive_options.file_ingestion_options", "format", "CSVV"))
    assert "did you mean 'CSV'?" in str(err)
    err = _raised(at(f"{OBJ}.table_configuration", "primary_keys", "id"))
    assert err.field == f"{OBJ}.table_configuration.primary_keys" and "must be a list" in str(err)
    err = _raised(at(ID, "full_refresh_window", [1, 2]))
    assert err.field == f"{ID}.full_refresh_window" and "must be an object" in str(err)


def test_a_key_with_no_close_match_lists_the_known_fields() -> None:
    err = _raised(at("", "zzz_qqq"))
    assert err.field == "zzz_qqq"
    assert "the known fields are allow_duplicate_names" in str(err)


def test_free_form_maps_are_not_checked() -> None:
    spec = base()
    spec["tags"] = {"anything": "goes"}
    spec["configuration"] = {"pipelines.some.setting": "1"}
    spec[ID]["objects"][0]["table"]["table_configuration"]["table_properties"] = {"delta.x": "y"}
    LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec)


def test_a_templated_spec_is_checked_when_the_task_runs(lakeflow_emulator: Any) -> None:
    spec = base()
    spec["name"] = "{{ params.name }}"
    spec[ID]["objects"][0]["table"]["table_configuration"]["primary_key"] = ["id"]
    op = LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec)  # templated: not checked at parse
    context: dict[str, Any] = {"params": {"name": "n"}}
    op.render_template_fields(context)
    with pytest.raises(PipelineSpecError, match="did you mean 'primary_keys'"):
        op.execute(context)
    assert lakeflow_emulator.requests() == []


def test_the_spec_is_not_changed_by_the_check() -> None:
    spec = base()
    before = copy.deepcopy(spec)
    LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec)
    assert spec == before


_PARSE_TIME = r"""
import json, sys
from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator
from airflow_provider_lakeflow.spec.errors import PipelineSpecError
spec = json.loads(sys.argv[1])
try:
    LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec)
    outcome = "accepted"
except PipelineSpecError as err:
    outcome = str(err)
print(json.dumps({"outcome": outcome, "sdk": sorted(m for m in sys.modules if m.startswith("databricks"))}))
"""


def test_parse_time_check_imports_no_databricks_sdk() -> None:
    """With the table's own SDK release installed; a newer one is read for unknown keys only
    (tests/test_spec_fields_newer_sdk.py)."""
    spec = at(f"{OBJ}.table_configuration", "primary_key", ["id"])
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE_TIME, json.dumps(spec)], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "did you mean 'primary_keys'?" in result["outcome"]
    assert (result["sdk"] == []) is (importlib.metadata.version("databricks-sdk") == field_table.SDK_VERSION)
