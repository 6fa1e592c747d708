"""The workspace's documented spec rules (lakeflow-errors.md section 3): each rejected by the operator before any
request, naming the field, the fix and the documented condition; and by the emulator with that condition."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator
from airflow_provider_lakeflow.spec.errors import PipelineSpecError

ID = "ingestion_definition"
OBJ0 = f"{ID}.objects[0]"
MANAGED = "MANAGED_INGESTION_PIPELINE_SPEC_VALIDATION_ERROR"
GATEWAY = "INGESTION_GATEWAY_PIPELINE_SPEC_VALIDATION_ERROR"


class TI:
    def xcom_push(self, key: str, value: Any) -> None:
        pass


def table(src: str = "orders", **extra: Any) -> dict[str, Any]:
    return {
        "table": {
            "source_catalog": "shop",
            "source_schema": "public",
            "source_table": src,
            "destination_catalog": "main",
            "destination_schema": "bronze",
            **extra,
        }
    }


def query_based() -> dict[str, Any]:
    cursor = {"query_based_connector_config": {"cursor_columns": ["updated_at"]}}
    return {
        "name": "rules-qb",
        "ingestion_definition": {
            "connection_name": "pg",
            "connector_type": "QUERY_BASED",
            "objects": [table(table_configuration=cursor)],
        },
    }


def cdc() -> dict[str, Any]:
    return {"name": "rules-cdc", "ingestion_definition": {"ingestion_gateway_id": "gw-1", "objects": [table()]}}


def saas() -> dict[str, Any]:
    return {"name": "rules-saas", "ingestion_definition": {"connection_name": "sf", "objects": [table("Account")]}}


def foreign() -> dict[str, Any]:
    return {
        "name": "rules-fc",
        "ingestion_definition": {"ingest_from_uc_foreign_catalog": True, "objects": [table()]},
    }


def gdrive() -> dict[str, Any]:
    options = {"entity_type": "FILE", "url": "https://drive.google.com/drive/folders/x", "file_ingestion_options": {}}
    options["file_ingestion_options"] = {"format": "CSV"}
    obj = {
        "table": {
            "destination_catalog": "main",
            "destination_schema": "drive",
            "destination_table": "orders",
            "connector_options": {"gdrive_options": options},
        }
    }
    return {"name": "rules-gdrive", "ingestion_definition": {"connection_name": "gd", "objects": [obj]}}


def gateway() -> dict[str, Any]:
    return {
        "name": "rules-gw",
        "continuous": True,
        "gateway_definition": {
            "connection_name": "sqlserver",
            "gateway_storage_catalog": "main",
            "gateway_storage_schema": "gw",
        },
    }


def change(base: Callable[[], dict[str, Any]], **edits: Any) -> Callable[[], dict[str, Any]]:
    """``base()`` with ``a__b__0__c=value`` set (``None`` deletes)."""

    def make() -> dict[str, Any]:
        spec = base()
        for path, value in edits.items():
            node: Any = spec
            keys = path.split("__")
            for key in keys[:-1]:
                node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
            if value is None:
                del node[keys[-1]]
            else:
                node[keys[-1]] = value
        return spec

    return make


TC0 = "ingestion_definition__objects__0__table__table_configuration"
CURSOR = {"query_based_connector_config": {"cursor_columns": ["updated_at"]}}
POLICY = {"auto_full_refresh_policy": {"enabled": True}}

# (id, spec, field the operator names, documented condition or None, what the emulator's message names)
RULES: list[tuple[str, Callable[[], dict[str, Any]], str, str | None, str]] = [
    (
        "append-only-without-cursor",
        change(query_based, **{TC0: None}, ingestion_definition__table_configuration={"scd_type": "APPEND_ONLY"}),
        f"{ID}.table_configuration.scd_type",
        f"{MANAGED}.APPEND_ONLY_REQUIRES_CURSOR_COLUMNS",
        "scd_type",
    ),
    (
        "append-only-on-cdc",
        change(cdc, **{TC0: {"scd_type": "APPEND_ONLY"}}),
        f"{OBJ0}.table.table_configuration.scd_type",
        f"{MANAGED}.APPEND_ONLY_REQUIRES_CURSOR_COLUMNS",
        "scd_type",
    ),
    (
        "auto-full-refresh-not-cdc",
        change(saas, **{TC0: POLICY}),
        f"{OBJ0}.table.table_configuration.auto_full_refresh_policy",
        f"{MANAGED}.AUTO_FULL_REFRESH_POLICY_CDC_ONLY",
        "auto_full_refresh_policy",
    ),
    (
        "auto-full-refresh-query-based",
        change(query_based, ingestion_definition__table_configuration=POLICY),
        f"{ID}.table_configuration.auto_full_refresh_policy",
        f"{MANAGED}.AUTO_FULL_REFRESH_POLICY_CDC_ONLY",
        "auto_full_refresh_policy",
    ),
    (
        "auto-full-refresh-without-enabled",
        change(cdc, **{TC0: {"auto_full_refresh_policy": {"min_interval_hours": 6}}}),
        f"{OBJ0}.table.table_configuration.auto_full_refresh_policy.enabled",
        f"{MANAGED}.AUTO_FULL_REFRESH_POLICY_EMPTY_ENABLED_FIELD",
        "enabled",
    ),
    (
        "auto-full-refresh-with-scd2",
        change(cdc, ingestion_definition__table_configuration=POLICY, **{TC0: {"scd_type": "SCD_TYPE_2"}}),
        f"{ID}.table_configuration.auto_full_refresh_policy",
        f"{MANAGED}.AUTO_FULL_REFRESH_NOT_SUPPORTED_FOR_SCD_TYPE_2",
        "auto_full_refresh_policy",
    ),
    (
        "catalog-mismatch",
        change(saas, catalog="finance"),
        f"{OBJ0}.table.destination_catalog",
        f"{MANAGED}.CATALOG_MISMATCH",
        "destination_catalog",
    ),
    (
        "foreign-catalog-table-incomplete",
        change(foreign, ingestion_definition__objects__0__table__source_catalog=None),
        f"{OBJ0}.table.source_catalog",
        f"{MANAGED}.FOREIGN_CATALOG_TABLE_SPEC_INCOMPLETE",
        "source_catalog",
    ),
    (
        "foreign-catalog-schema-incomplete",
        change(
            foreign,
            ingestion_definition__objects=[
                {"schema": {"source_schema": "sales", "destination_catalog": "main", "destination_schema": "b"}}
            ],
        ),
        f"{OBJ0}.schema.source_catalog",
        f"{MANAGED}.FOREIGN_CATALOG_SCHEMA_SPEC_INCOMPLETE",
        "source_catalog",
    ),
    (
        "foreign-catalog-report",
        change(
            foreign,
            ingestion_definition__objects=[
                {"report": {"source_url": "https://r", "destination_catalog": "main", "destination_schema": "b"}}
            ],
        ),
        f"{OBJ0}.report",
        None,
        "table and schema",
    ),
    (
        "duplicate-source-catalog",
        change(
            cdc,
            ingestion_definition__source_configurations=[
                {"catalog": {"source_catalog": "Shop"}},
                {"catalog": {"source_catalog": "shop"}},
            ],
        ),
        f"{ID}.source_configurations[1].catalog.source_catalog",
        None,
        "source_configurations[1]",
    ),
    (
        "include-and-exclude",
        change(saas, **{TC0: {"include_columns": ["a"], "exclude_columns": ["b"]}}),
        f"{OBJ0}.table.table_configuration.include_columns",
        None,
        "include_columns",
    ),
    (
        "clustering-and-auto-clustering",
        change(saas, **{TC0: {"clustering_columns": ["a"], "enable_auto_clustering": True}}),
        f"{OBJ0}.table.table_configuration.clustering_columns",
        None,
        "clustering_columns",
    ),
    (
        "connection-and-gateway",
        change(saas, ingestion_definition__ingestion_gateway_id="gw-1"),
        f"{ID}.ingestion_gateway_id",
        None,
        "ingestion_gateway_id",
    ),
    (
        "run-as-two-identities",
        change(saas, run_as={"user_name": "a@b.c", "service_principal_name": "sp"}),
        "run_as",
        None,
        "run_as",
    ),
    (
        "row-filter-with-where",
        change(saas, **{TC0: {"row_filter": "WHERE region = 'EU'"}}),
        f"{OBJ0}.table.table_configuration.row_filter",
        None,
        "WHERE",
    ),
    (
        "salesforce-formula-fields-on-a-database",
        change(cdc, **{TC0: {"salesforce_include_formula_fields": True}}),
        f"{OBJ0}.table.table_configuration.salesforce_include_formula_fields",
        None,
        "Salesforce",
    ),
    (
        "salesforce-formula-fields-with-another-source-type",
        change(
            saas, ingestion_definition__source_type="SERVICENOW", **{TC0: {"salesforce_include_formula_fields": True}}
        ),
        f"{OBJ0}.table.table_configuration.salesforce_include_formula_fields",
        None,
        "Salesforce",
    ),
    (
        "same-table-name-from-two-source-schemas-cdc",
        change(cdc, ingestion_definition__objects=[table(), table(source_schema="archive", destination_schema="old")]),
        f"{ID}.objects[1].table.destination_table",
        None,
        "same name",
    ),
    (
        "same-table-name-renamed-into-another-schema-query-based",
        change(
            query_based,
            ingestion_definition__objects=[
                table("orders", table_configuration=CURSOR),
                table("orders_v2", source_schema="v2", destination_schema="v2", destination_table="ORDERS"),
            ],
        ),
        f"{ID}.objects[1].table.destination_table",
        None,
        "same name",
    ),
    (
        "same-table-name-on-a-database-source-type",
        change(
            saas,
            ingestion_definition__source_type="MYSQL",
            ingestion_definition__objects=[table(), table(source_schema="eu", destination_schema="eu")],
        ),
        f"{ID}.objects[1].table.destination_table",
        None,
        "same name",
    ),
    (
        "duplicate-destination-table",
        change(saas, ingestion_definition__objects=[table("Account"), table("Other", destination_table="account")]),
        f"{ID}.objects[1].table.destination_table",
        None,
        "destination_table",
    ),
    (
        "storage-mode-with-scd-type",
        change(saas, **{TC0: {"storage_mode": "APPEND_ONLY", "scd_type": "SCD_TYPE_1"}}),
        f"{OBJ0}.table.table_configuration.storage_mode",
        None,
        "storage_mode",
    ),
    (
        "scd-type-on-google-drive",
        change(gdrive, ingestion_definition__table_configuration={"scd_type": "SCD_TYPE_1"}),
        f"{ID}.table_configuration.scd_type",
        None,
        "Google Drive",
    ),
    (
        "file-source-without-a-table-name",
        change(gdrive, ingestion_definition__objects__0__table__destination_table=None),
        f"{OBJ0}.table.destination_table",
        None,
        "source_table",
    ),
    (
        "gateway-not-continuous",
        change(gateway, continuous=None),
        "continuous",
        f"{GATEWAY}.CONTINUOUS_MODE_MUST_BE_ENABLED",
        "continuous",
    ),
    (
        "gateway-continuous-false",
        change(gateway, continuous=False),
        "continuous",
        f"{GATEWAY}.CONTINUOUS_MODE_MUST_BE_ENABLED",
        "continuous",
    ),
    ("gateway-photon", change(gateway, photon=True), "photon", f"{GATEWAY}.PHOTON_NOT_SUPPORTED", "photon"),
    ("gateway-edition", change(gateway, edition="CORE"), "edition", f"{GATEWAY}.EDITION_MUST_BE_ADVANCED", "edition"),
    (
        "gateway-channel",
        change(gateway, channel="BETA"),
        "channel",
        f"{GATEWAY}.CHANNEL_MUST_BE_CURRENT_OR_PREVIEW",
        "channel",
    ),
    ("gateway-serverless", change(gateway, serverless=True), "serverless", None, "serverless"),
]


@pytest.fixture
def w(lakeflow_emulator: Any) -> WorkspaceClient:
    return WorkspaceClient(host=lakeflow_emulator.url, token="emulator-token")


@pytest.mark.parametrize(("make", "field", "condition", "_server"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_the_operator_rejects_the_rule_before_any_request(
    lakeflow_emulator: Any, make: Callable[[], dict], field: str, condition: str | None, _server: str
) -> None:
    with pytest.raises(PipelineSpecError) as info:
        LakeflowCreateIngestionPipelineOperator(task_id="create", spec=make())
    assert info.value.field == field
    assert info.value.condition == condition
    assert f"'{field}'" in str(info.value) and "Fix:" in str(info.value)
    if condition:
        assert condition in str(info.value)
    assert lakeflow_emulator.requests() == []


@pytest.mark.parametrize(("make", "_field", "condition", "server"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_the_emulator_rejects_the_rule_with_its_condition(
    w: WorkspaceClient, make: Callable[[], dict], _field: str, condition: str | None, server: str
) -> None:
    with pytest.raises(InvalidParameterValue) as info:
        w.api_client.do("POST", "/api/2.0/pipelines", body=make())
    message = str(info.value)
    assert server in message
    if condition:
        assert message.startswith(f"[{condition}]") and message.endswith("SQLSTATE: 42000")


@pytest.mark.parametrize(
    "make",
    [
        query_based,
        cdc,
        saas,
        foreign,
        gateway,
        change(query_based, ingestion_definition__table_configuration={"scd_type": "APPEND_ONLY"}),
        change(cdc, **{TC0: {"scd_type": "SCD_TYPE_1", **POLICY}}),
        change(cdc, ingestion_definition__connector_type="CDC", ingestion_definition__table_configuration=POLICY),
        change(saas, catalog="MAIN"),
        change(saas, **{TC0: {"row_filter": "region = 'where the sun is'"}}),
        change(gateway, edition="advanced", channel="PREVIEW", photon=False),
        gdrive,
        change(gdrive, **{TC0: {"storage_mode": "APPEND_ONLY"}}),
        change(saas, ingestion_definition__objects=[table("Account"), table("Account", destination_schema="eu")]),
        change(
            cdc,
            ingestion_definition__objects=[
                table(),
                table(source_schema="archive", destination_schema="old", destination_table="archived_orders"),
            ],
        ),
        change(
            saas,
            ingestion_definition__source_type="SALESFORCE",
            **{TC0: {"salesforce_include_formula_fields": True}},
        ),
    ],
    ids=[
        "query-based",
        "cdc",
        "saas",
        "foreign-catalog",
        "gateway",
        "append-only-with-cursor",
        "auto-full-refresh-on-cdc",
        "auto-full-refresh-definition-level",
        "catalog-matches-any-case",
        "where-inside-a-literal",
        "gateway-allowed-settings",
        "file-source-named-by-url",
        "file-source-storage-mode",
        "saas-multi-destination-same-table-name",
        "database-same-source-name-renamed",
        "formula-fields-with-salesforce-source-type",
    ],
)
def test_specs_that_keep_the_rules_pass_both(w: WorkspaceClient, lakeflow_emulator: Any, make: Callable) -> None:
    """Positive controls: a check that rejected everything would fail here."""
    LakeflowCreateIngestionPipelineOperator(task_id="create", spec=make())
    w.api_client.do("POST", "/api/2.0/pipelines", body=make())


# --- what cannot change on an existing pipeline


def _with_catalog(spec: dict[str, Any], catalog: str) -> dict[str, Any]:
    spec["catalog"] = catalog
    for obj in spec[ID]["objects"]:
        obj["table"]["destination_catalog"] = catalog
    return spec


EDITS: list[tuple[str, Callable[[], dict], Callable[[dict], dict], str, str | None]] = [
    (
        "destination-catalog",
        lambda: _with_catalog(saas(), "main"),
        lambda s: _with_catalog(s, "finance"),
        "catalog",
        f"{MANAGED}.DESTINATION_CATALOG_CANNOT_CHANGE",
    ),
    (
        "destination-schema",
        change(saas, schema="bronze"),
        lambda s: {**s, "schema": "silver"},
        "schema",
        f"{MANAGED}.DESTINATION_SCHEMA_CANNOT_CHANGE",
    ),
    (
        "add-connection-name",
        foreign,
        lambda s: {**s, ID: {**s[ID], "connection_name": "snowflake"}},
        f"{ID}.connection_name",
        f"{MANAGED}.CANNOT_SET_CONNECTION_NAME",
    ),
    (
        "add-gateway-id",
        foreign,
        lambda s: {**s, ID: {**s[ID], "ingestion_gateway_id": "gw-2"}},
        f"{ID}.ingestion_gateway_id",
        f"{MANAGED}.CANNOT_SET_INGESTION_GATEWAY_ID",
    ),
    (
        "foreign-catalog-flag",
        foreign,
        lambda s: {**s, ID: {**s[ID], "ingest_from_uc_foreign_catalog": False, "connection_name": "c"}},
        f"{ID}.ingest_from_uc_foreign_catalog",
        None,
    ),
    (
        "row-filter",
        change(saas, **{TC0: {"row_filter": "region = 'EU'"}}),
        lambda s: change(lambda: s, **{TC0: {"row_filter": "region = 'US'"}})(),
        f"{OBJ0}.table.table_configuration.row_filter",
        None,
    ),
    (
        "gateway-connection",
        gateway,
        lambda s: {**s, "gateway_definition": {**s["gateway_definition"], "connection_name": "other"}},
        "gateway_definition.connection_name",
        None,
    ),
    (
        "gateway-storage",
        gateway,
        lambda s: {**s, "gateway_definition": {**s["gateway_definition"], "gateway_storage_schema": "gw2"}},
        "gateway_definition.gateway_storage_schema",
        None,
    ),
]


@pytest.mark.parametrize(("first", "edit", "field", "condition"), [e[1:] for e in EDITS], ids=[e[0] for e in EDITS])
def test_fields_fixed_at_creation_fail_before_the_edit_and_on_the_emulator(
    w: WorkspaceClient, lakeflow_emulator: Any, first: Callable, edit: Callable, field: str, condition: str | None
) -> None:
    original = first()
    pipeline_id = LakeflowCreateIngestionPipelineOperator(task_id="create", spec=original).execute({"ti": TI()})
    changed = edit(copy.deepcopy(original))
    lakeflow_emulator.clear_requests()
    with pytest.raises(PipelineSpecError) as info:
        LakeflowCreateIngestionPipelineOperator(task_id="edit", spec=changed).execute({"ti": TI()})
    assert info.value.field == field and info.value.condition == condition
    assert "Fix:" in str(info.value)
    assert lakeflow_emulator.requests(method="PUT") == []  # compared with the live pipeline, then stopped
    with pytest.raises(InvalidParameterValue) as server:
        w.api_client.do("PUT", f"/api/2.0/pipelines/{pipeline_id}", body=changed)
    assert field in str(server.value)
    if condition:
        assert str(server.value).startswith(f"[{condition}]")


def test_a_recreated_gateway_id_and_other_edits_go_through(w: WorkspaceClient, lakeflow_emulator: Any) -> None:
    spec = change(cdc, **{TC0: {"row_filter": "region = 'EU'"}})()
    pipeline_id = LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec).execute({"ti": TI()})
    spec[ID]["ingestion_gateway_id"] = "gw-recreated"
    spec[ID]["objects"].append(table("customers", table_configuration={"row_filter": "active"}))
    LakeflowCreateIngestionPipelineOperator(task_id="edit", spec=spec).execute({"ti": TI()})
    live = lakeflow_emulator.pipeline(pipeline_id)["spec"][ID]
    assert live["ingestion_gateway_id"] == "gw-recreated" and len(live["objects"]) == 2


# --- salesforce_include_formula_fields needs the connection's type: one GET, then nothing


def test_formula_fields_on_a_connection_that_is_not_salesforce(lakeflow_emulator: Any) -> None:
    lakeflow_emulator.create_connection_as_ui("hubspot_conn", "HUBSPOT", {})
    spec = change(saas, ingestion_definition__connection_name="hubspot_conn")()
    spec[ID]["objects"][0]["table"]["table_configuration"] = {"salesforce_include_formula_fields": True}
    op = LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec)  # might be Salesforce: passes parse
    lakeflow_emulator.clear_requests()
    with pytest.raises(PipelineSpecError, match="connection 'hubspot_conn' is HUBSPOT") as info:
        op.execute({"ti": TI()})
    assert info.value.field == f"{OBJ0}.table.table_configuration.salesforce_include_formula_fields"
    seen = [(r.method, r.path) for r in lakeflow_emulator.requests() if "/api/" in r.path]
    assert seen == [("GET", "/api/2.1/unity-catalog/connections/hubspot_conn")]

    lakeflow_emulator.create_connection_as_ui("sf_conn", "SALESFORCE", {})
    spec[ID]["connection_name"] = "sf_conn"
    pipeline_id = LakeflowCreateIngestionPipelineOperator(task_id="ok", spec=spec).execute({"ti": TI()})
    assert lakeflow_emulator.pipeline(pipeline_id)["spec"][ID]["source_type"] == "SALESFORCE"
