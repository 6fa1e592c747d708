"""A databricks-sdk newer than the field table: its fields pass, typos are still refused and the error names the
installed release; the emulator takes and answers what that SDK sends.

Each test asserts what is right under the SDK it runs with: the pinned one (the table's release, 0.162.0), where
``testing`` is refused naming that release, and the newest (``make test-sdk-latest``), where it is accepted.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import subprocess
import sys
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import pipelines as P

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator
from airflow_provider_lakeflow.spec import field_table
from airflow_provider_lakeflow.spec.errors import PipelineSpecError

INSTALLED = importlib.metadata.version("databricks-sdk")
NEWER = INSTALLED != field_table.SDK_VERSION
#: Pipeline tests (databricks-sdk 0.167.0): the create request's ``testing``, StartUpdate's ``test_only``.
SDK_HAS_TESTING = "testing" in inspect.signature(P.PipelinesAPI.create).parameters
SDK_HAS_TEST_ONLY = "test_only" in inspect.signature(P.PipelinesAPI.start_update).parameters
TESTING = {"sources": [{"glob": {"include": "/Workspace/pipelines/tests/**"}}], "environment": {"dependencies": []}}


class TI:
    def xcom_push(self, key: str, value: Any) -> None:
        pass


def spec(**top: Any) -> dict[str, Any]:
    table = {
        "source_schema": "dbo",
        "source_table": "Account",
        "destination_catalog": "main",
        "destination_schema": "sf",
        "table_configuration": {"scd_type": "SCD_TYPE_1"},
    }
    return {
        "name": "newer-sdk",
        "ingestion_definition": {"connection_name": "sf", "objects": [{"table": table}]},
        **top,
    }


def refused(value: dict[str, Any]) -> PipelineSpecError:
    with pytest.raises(PipelineSpecError) as info:
        LakeflowCreateIngestionPipelineOperator(task_id="create", spec=value)
    return info.value


def test_a_field_of_the_installed_sdk_is_accepted_and_otherwise_refused_naming_it(lakeflow_emulator: Any) -> None:
    wanted = spec(testing=TESTING)
    if not SDK_HAS_TESTING:
        err = refused(wanted)
        assert err.field == "testing"
        assert f"is not a field of the create request in databricks-sdk {INSTALLED}." in str(err)
        assert lakeflow_emulator.requests() == []
        return
    op = LakeflowCreateIngestionPipelineOperator(task_id="create", spec=wanted)  # parse time: accepted
    pipeline_id = op.execute({"ti": TI()})
    created = lakeflow_emulator.requests(method="POST")[-1].body
    assert created["testing"] == TESTING  # sent as written
    w = WorkspaceClient(host=lakeflow_emulator.url, token="emulator-token")
    testing = w.pipelines.get(pipeline_id).spec.testing  # and read back through the SDK's own dataclasses
    assert testing.sources[0].glob.include == "/Workspace/pipelines/tests/**"


def test_a_typo_inside_a_class_only_the_installed_sdk_has_is_refused_with_a_suggestion() -> None:
    err = refused(spec(testing={"sourcez": []}))
    if SDK_HAS_TESTING:
        assert err.field == "testing.sourcez"
        assert f"is not a field of PipelineTesting in databricks-sdk {INSTALLED}." in str(err)
        assert "did you mean 'sources'?" in str(err)
    else:
        assert err.field == "testing"


def test_typos_are_still_refused_naming_the_installed_release() -> None:
    bad = spec()
    bad["ingestion_definition"]["objects"][0]["table"]["table_configuration"] = {"primary_key": ["Id"]}
    err = refused(bad)
    assert err.field == "ingestion_definition.objects[0].table.table_configuration.primary_key"
    assert f"in databricks-sdk {INSTALLED}." in str(err) and "did you mean 'primary_keys'?" in str(err)

    bad = spec()
    bad["ingestion_definition"]["objects"][0]["table"]["table_configuration"] = {"scd_type": "scd_type_2"}
    err = refused(bad)
    assert f"TableSpecificConfigScdType in databricks-sdk {INSTALLED}" in str(err)
    assert "did you mean 'SCD_TYPE_2'?" in str(err)


def test_every_field_and_enum_value_of_the_installed_sdk_passes_the_check() -> None:
    """Whatever the installed release adds to the table's (nothing under the pinned SDK) is known to the check."""
    from airflow_provider_lakeflow.spec import fields as spec_fields
    from airflow_provider_lakeflow.spec.generate_field_table import build

    installed = build()
    for kind, fields in installed["fields"].items():
        known = spec_fields._fields(kind)
        assert known is not None, kind
        for key, key_kind in fields.items():
            assert spec_fields._field_kind(kind, known, key) in (key_kind, known.get(key)), (kind, key)
    for kind, values in installed["enums"].items():
        for value in values:
            assert value in (spec_fields._enum_values(kind, value) or ()), (kind, value)


_PARSE_TIME = r"""
import json, sys
from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator
from airflow_provider_lakeflow.spec.errors import PipelineSpecError
try:
    LakeflowCreateIngestionPipelineOperator(task_id="create", spec=json.loads(sys.argv[1]))
    outcome = "accepted"
except PipelineSpecError as err:
    outcome = str(err)
print(json.dumps({"outcome": outcome, "sdk": "databricks.sdk" in sys.modules}))
"""


def _parse(value: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _PARSE_TIME, json.dumps(value)], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_installed_sdk_is_imported_at_parse_time_only_for_what_the_table_does_not_know() -> None:
    assert _parse(spec()) == {"outcome": "accepted", "sdk": False}
    typo = _parse(spec(serverles=True))
    assert "did you mean 'serverless'?" in typo["outcome"]
    assert typo["sdk"] is NEWER  # the table's own release answers from the table alone


def test_a_test_only_update_is_taken_and_echoed(lakeflow_emulator: Any) -> None:
    w = WorkspaceClient(host=lakeflow_emulator.url, token="emulator-token")
    pipeline_id = w.api_client.do("POST", "/api/2.0/pipelines", body=spec())["pipeline_id"]
    if SDK_HAS_TEST_ONLY:
        update_id = w.pipelines.start_update(pipeline_id, test_only=True).update_id
        assert w.pipelines.get_update(pipeline_id, update_id).update.test_only is True
    else:  # the wire format, as 0.167.0 sends it
        update_id = w.api_client.do("POST", f"/api/2.0/pipelines/{pipeline_id}/updates", body={"test_only": True})[
            "update_id"
        ]
    raw = w.api_client.do("GET", f"/api/2.0/pipelines/{pipeline_id}/updates/{update_id}")["update"]
    assert raw["test_only"] is True
    if SDK_HAS_TEST_ONLY:  # every field the emulator sends survives the SDK's dataclass
        assert P.GetUpdateResponse.from_dict({"update": raw}).as_dict()["update"] == raw
