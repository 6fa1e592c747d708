"""Specs from Databricks Asset Bundle files: picking the pipeline, resolving ${var.*}, and every mistake reported
before any request, naming the field (or variable) and the fix."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator
from airflow_provider_lakeflow.spec.errors import PipelineSpecError

TWO_PIPELINES = """\
bundle:
  name: sales-ingestion

variables:
  catalog:
    description: Where the tables land
    default: dev
  salesforce_connection:
    description: The Unity Catalog connection (no default; passed in)
  history:
    default: SCD_TYPE_2
  tables:
    type: complex
    default: [Account, Contact]

targets:
  prod:
    variables:
      catalog: prod

resources:
  pipelines:
    salesforce:
      name: ${bundle.name}-salesforce-${var.catalog}
      serverless: true
      permissions:
        - level: CAN_VIEW
          group_name: analysts
      ingestion_definition:
        connection_name: ${var.salesforce_connection}
        table_configuration:
          scd_type: ${var.history}
        objects:
          - table:
              source_schema: objects
              source_table: Account
              destination_catalog: ${var.catalog}
              destination_schema: salesforce
          - table:
              source_schema: objects
              source_table: Contact
              destination_catalog: ${var.catalog}
              destination_schema: salesforce
    hubspot:
      name: hubspot-${var.catalog}
      serverless: true
      ingestion_definition:
        connection_name: hubspot_conn
        objects:
          - table:
              source_schema: crm
              source_table: contacts
              destination_catalog: ${var.catalog}
              destination_schema: hubspot
"""

ONE_PIPELINE = """\
variables:
  catalog:
    default: main
resources:
  pipelines:
    servicenow:
      name: servicenow-itsm
      serverless: true
      ingestion_definition:
        connection_name: servicenow_conn
        objects:
          - table:
              source_schema: default
              source_table: incident
              destination_catalog: ${var.catalog}
              destination_schema: itsm
"""


class TI:
    def xcom_push(self, key: str, value: Any) -> None:
        pass


@pytest.fixture
def emulator(lakeflow_emulator: Any) -> Any:
    return lakeflow_emulator


def write(tmp_path: Path, text: str, name: str = "databricks.yml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def run(spec: str, **kwargs: Any) -> str:
    return LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec, **kwargs).execute({"ti": TI()})


def fails(spec: str, **kwargs: Any) -> PipelineSpecError:
    with pytest.raises(PipelineSpecError) as info:
        run(spec, **kwargs)
    return info.value


def test_two_pipelines_one_picked_and_its_variables_resolved(
    emulator: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, TWO_PIPELINES)
    op = LakeflowCreateIngestionPipelineOperator(
        task_id="create",
        spec=path,
        resource_key="{{ params.key }}",
        bundle_variables={"catalog": "{{ params.catalog }}", "salesforce_connection": "sf_prod"},
    )
    context: dict[str, Any] = {"params": {"key": "salesforce", "catalog": "main"}, "ti": TI()}
    op.render_template_fields(context)
    with caplog.at_level(logging.WARNING):
        pipeline_id = op.execute(context)
    spec = emulator.pipeline(pipeline_id)["spec"]
    assert spec["name"] == "sales-ingestion-salesforce-main"  # ${bundle.name} and ${var.*} inside a string
    definition = spec["ingestion_definition"]
    assert definition["connection_name"] == "sf_prod"  # given, no default in the file
    assert definition["table_configuration"] == {"scd_type": "SCD_TYPE_2"}  # the file's default
    assert {o["table"]["destination_catalog"] for o in definition["objects"]} == {"main"}  # given beats default
    assert "permissions" not in spec
    assert "permissions" in caplog.text  # dropped, and said so
    assert [p["spec"]["name"] for p in emulator.pipelines()] == ["sales-ingestion-salesforce-main"]


def test_the_other_pipeline_with_defaults_and_an_environment_variable(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, TWO_PIPELINES)
    pipeline_id = run(path, resource_key="hubspot")
    assert emulator.pipeline(pipeline_id)["spec"]["name"] == "hubspot-dev"
    monkeypatch.setenv("BUNDLE_VAR_catalog", "staging")  # as `databricks bundle deploy` reads it
    pipeline_id = run(path, resource_key="hubspot")
    assert emulator.pipeline(pipeline_id)["spec"]["name"] == "hubspot-staging"


def test_a_bundle_with_one_pipeline_needs_no_key(emulator: Any, tmp_path: Path) -> None:
    pipeline_id = run(write(tmp_path, ONE_PIPELINE, "bundle.yaml"))
    objects = emulator.pipeline(pipeline_id)["spec"]["ingestion_definition"]["objects"]
    assert objects[0]["table"]["destination_catalog"] == "main"


def test_whole_value_references_keep_the_variables_type(tmp_path: Path) -> None:
    from airflow_provider_lakeflow.spec.bundles import load_pipeline_spec

    declared = "  catalog:\n    default: main"
    text = ONE_PIPELINE.replace(declared, declared + "\n  sl:\n    default: true")
    text = text.replace("serverless: true", "serverless: ${var.sl}")
    spec = load_pipeline_spec(write(tmp_path, text))
    assert spec["serverless"] is True


BAD: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (case, bundle text, operator arguments, field named, text the message must carry)
    ("several-pipelines-no-key", TWO_PIPELINES, {}, "resource_key", "has 2 pipelines: hubspot, salesforce"),
    ("key-not-in-bundle", TWO_PIPELINES, {"resource_key": "salesfroce"}, "resource_key", "did you mean 'salesforce'"),
    (
        "variable-without-default-not-given",
        TWO_PIPELINES,
        {"resource_key": "salesforce"},
        "ingestion_definition.connection_name",
        "bundle_variables={'salesforce_connection': ...}",
    ),
    (
        "variable-given-that-the-bundle-does-not-declare",
        TWO_PIPELINES,
        {"resource_key": "hubspot", "bundle_variables": {"catalgo": "x"}},
        "bundle_variables",
        "catalgo",
    ),
    (
        "undeclared-variable",
        ONE_PIPELINE.replace("${var.catalog}", "${var.catalogue}"),
        {},
        "ingestion_definition.objects[0].table.destination_catalog",
        "does not declare",
    ),
    (
        "other-reference",
        ONE_PIPELINE.replace("name: servicenow-itsm", "name: itsm-${workspace.current_user.short_name}"),
        {},
        "name",
        "${workspace.current_user.short_name}",
    ),
    (
        "lookup-variable",
        ONE_PIPELINE.replace("    default: main", "    lookup:\n      metastore: main"),
        {},
        "ingestion_definition.objects[0].table.destination_catalog",
        "a lookup",
    ),
    (
        "typo-inside-the-bundle",
        ONE_PIPELINE.replace("source_table: incident", "source_tabel: incident"),
        {},
        "ingestion_definition.objects[0].table.source_tabel",
        "resources.pipelines.servicenow of",
    ),
    (
        "rule-broken-inside-the-bundle",
        ONE_PIPELINE.replace("serverless: true", "serverless: true\n      continuous: true"),
        {},
        "continuous",
        "is true on an ingestion pipeline",
    ),
    ("no-pipelines", "bundle:\n  name: x\ninclude:\n  - resources/*.yml\n", {}, "resources.pipelines", "included"),
    (
        "bundle-variables-not-a-dict",
        ONE_PIPELINE,
        {"bundle_variables": "catalog=main"},
        "bundle_variables",
        "must be a dict",
    ),
]


@pytest.mark.parametrize(("text", "kwargs", "field", "detail"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bundle_mistakes_fail_before_any_request(
    emulator: Any, tmp_path: Path, text: str, kwargs: dict[str, Any], field: str, detail: str
) -> None:
    err = fails(write(tmp_path, text), **kwargs)
    assert err.field == field
    assert detail in str(err)
    assert "Fix:" in str(err)
    assert emulator.requests() == []


def test_bundle_arguments_with_a_plain_spec_are_an_error(emulator: Any, tmp_path: Path) -> None:
    plain = write(tmp_path, "name: x\ningestion_definition: {connection_name: c, objects: []}\n", "plain.yml")
    assert fails(plain, resource_key="x").field == "resource_key"
    assert fails(plain, bundle_variables={"a": 1}).field == "bundle_variables"
    assert emulator.requests() == []


def test_a_literal_bundle_dict_is_checked_at_parse_time(emulator: Any) -> None:
    import yaml

    bundle = yaml.safe_load(ONE_PIPELINE.replace("source_table: incident", "source_tabel: incident"))
    with pytest.raises(PipelineSpecError, match="did you mean 'source_table'"):
        LakeflowCreateIngestionPipelineOperator(task_id="create", spec=bundle)
    LakeflowCreateIngestionPipelineOperator(task_id="ok", spec=yaml.safe_load(ONE_PIPELINE))
    assert emulator.requests() == []
