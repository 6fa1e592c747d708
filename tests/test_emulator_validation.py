# ruff: noqa: F811  (fixtures imported from the plugin module, so the tests run without the pytest11 entry point)
"""Every pipeline spec rule, through the SDK: the right exception class and a message naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, ResourceAlreadyExists

from airflow_provider_lakeflow.testing.emulator import ApiError
from airflow_provider_lakeflow.testing.pytest_plugin import (  # noqa: F401  (fixtures)
    lakeflow_emulator,
    lakeflow_emulator_server,
)


def tbl(src: str = "t", **extra: Any) -> dict[str, Any]:
    return {"table": {"source_table": src, "destination_catalog": "main", "destination_schema": "b", **extra}}


VALID: dict[str, Any] = {"name": "v", "ingestion_definition": {"connection_name": "c", "objects": [tbl()]}}
GATEWAY: dict[str, Any] = {
    "name": "g",
    "continuous": True,
    "gateway_definition": {"connection_name": "c", "gateway_storage_catalog": "main", "gateway_storage_schema": "s"},
}


def spec(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for path, value in changes.items():
        node = out
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        if value is None:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return out


CASES = [
    ("libraries", spec(VALID, libraries=[{"notebook": {"path": "/x"}}]), "libraries"),
    ("continuous", spec(VALID, continuous=True), "continuous"),
    ("no objects", spec(VALID, ingestion_definition__objects=[]), "ingestion_definition.objects"),
    (
        "251 objects",
        spec(VALID, ingestion_definition__objects=[tbl(f"t{i}") for i in range(251)]),
        "ingestion_definition.objects",
    ),
    ("empty object", spec(VALID, ingestion_definition__objects=[{}]), "ingestion_definition.objects[0]"),
    (
        "two kinds",
        spec(
            VALID,
            ingestion_definition__objects=[
                {**tbl(), "schema": {"destination_catalog": "m", "destination_schema": "s"}}
            ],
        ),
        "ingestion_definition.objects[0]",
    ),
    ("both sources", spec(VALID, ingestion_definition__ingestion_gateway_id="gw"), "ingestion_gateway_id"),
    ("no source", spec(VALID, ingestion_definition__connection_name=None), "connection_name"),
    (
        "no catalog",
        spec(VALID, ingestion_definition__objects__0__table__destination_catalog=None),
        "ingestion_definition.objects[0].table.destination_catalog",
    ),
    (
        "no schema",
        spec(VALID, ingestion_definition__objects=[tbl(), {"schema": {"destination_catalog": "m"}}]),
        "ingestion_definition.objects[1].schema.destination_schema",
    ),
    (
        "report no schema",
        spec(
            VALID, ingestion_definition__objects=[{"report": {"source_url": "https://x", "destination_catalog": "m"}}]
        ),
        "ingestion_definition.objects[0].report.destination_schema",
    ),
    (
        "same destination",
        spec(VALID, ingestion_definition__objects=[tbl("a", destination_table="x"), tbl("x")]),
        "destination_table",
    ),
    (
        "include and exclude",
        spec(
            VALID,
            ingestion_definition__objects=[
                tbl(table_configuration={"include_columns": ["a"], "exclude_columns": ["b"]})
            ],
        ),
        "ingestion_definition.objects[0].table.table_config",
    ),
    (
        "definition include and exclude",
        spec(VALID, ingestion_definition__table_configuration={"include_columns": ["a"], "exclude_columns": ["b"]}),
        "ingestion_definition.table_configuration",
    ),
    (
        "unknown scd",
        spec(VALID, ingestion_definition__objects=[tbl(table_configuration={"scd_type": "SCD_TYPE_3"})]),
        "scd_type",
    ),
    (
        "gateway no connection",
        spec(GATEWAY, gateway_definition__connection_name=None),
        "gateway_definition.connection_name",
    ),
    (
        "gateway no catalog",
        spec(GATEWAY, gateway_definition__gateway_storage_catalog=None),
        "gateway_definition.gateway_storage_catalog",
    ),
    (
        "gateway no schema",
        spec(GATEWAY, gateway_definition__gateway_storage_schema=None),
        "gateway_definition.gateway_storage_schema",
    ),
    ("gateway serverless", spec(GATEWAY, serverless=True), "serverless"),
]


@pytest.fixture
def w(lakeflow_emulator: Any) -> WorkspaceClient:
    return WorkspaceClient(host=lakeflow_emulator.url, token="emulator-token")


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(w: WorkspaceClient, body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        w.api_client.do("POST", "/api/2.0/pipelines", body=body)
    assert field in str(err.value)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    # the same rules apply on edit
    pid = w.api_client.do("POST", "/api/2.0/pipelines", body=VALID)["pipeline_id"]
    with pytest.raises(InvalidParameterValue, match=field.replace("[", r"\[").replace("]", r"\]")):
        w.api_client.do("PUT", f"/api/2.0/pipelines/{pid}", body=body)


def test_valid_specs_pass(w: WorkspaceClient) -> None:
    w.api_client.do(
        "POST", "/api/2.0/pipelines", body=spec(VALID, ingestion_definition__objects=[tbl(f"t{i}") for i in range(250)])
    )
    w.api_client.do("POST", "/api/2.0/pipelines", body=GATEWAY)


def test_duplicate_names(w: WorkspaceClient, lakeflow_emulator: Any) -> None:
    first = w.api_client.do("POST", "/api/2.0/pipelines", body=VALID)["pipeline_id"]
    w.api_client.do("PUT", f"/api/2.0/pipelines/{first}", body=VALID)  # keeping its own name is fine
    with pytest.raises(ResourceAlreadyExists, match=first):
        w.api_client.do("POST", "/api/2.0/pipelines", body=VALID)
    second = w.api_client.do("POST", "/api/2.0/pipelines", body={**VALID, "allow_duplicate_names": True})
    assert second["pipeline_id"] != first
    other = w.api_client.do("POST", "/api/2.0/pipelines", body={**VALID, "name": "other"})["pipeline_id"]
    with pytest.raises(ResourceAlreadyExists):
        w.api_client.do("PUT", f"/api/2.0/pipelines/{other}", body=VALID)
    with pytest.raises(ApiError, match="Several pipelines"):
        lakeflow_emulator.pipeline("v")
