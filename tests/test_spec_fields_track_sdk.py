"""The field table that DAG parsing uses (so that it never imports databricks-sdk) must match the installed SDK."""

from __future__ import annotations

from airflow_provider_lakeflow import _generate_spec_fields, _spec_fields


def test_field_table_matches_the_installed_sdk():
    fresh = _generate_spec_fields.build()
    assert fresh["sdk_version"] == _spec_fields.SDK_VERSION
    assert fresh["fields"] == _spec_fields.FIELDS, "run: python -m airflow_provider_lakeflow._generate_spec_fields"
    assert fresh["required"] == _spec_fields.REQUIRED
    assert fresh["enums"] == _spec_fields.ENUMS


def test_the_table_covers_the_newer_ingestion_fields():
    """A positive control on the generator: what the issue names is in the table, nested where the SDK nests it."""
    fields = _spec_fields.FIELDS
    assert fields[_spec_fields.ROOT]["ingestion_definition"] == "IngestionPipelineDefinition"
    assert fields["IngestionPipelineDefinition"]["full_refresh_window"] == "OperationTimeWindow"
    assert fields["IngestionPipelineDefinition"]["source_configurations"] == "[SourceConfig]"
    assert fields["TableSpecificConfig"]["auto_full_refresh_policy"] == "AutoFullRefreshPolicy"
    assert fields["TableSpec"]["connector_options"] == "ConnectorOptions"
    assert fields["SharepointOptions"]["file_ingestion_options"] == "FileIngestionOptions"
    assert fields[_spec_fields.ROOT]["clusters"] == "[PipelineCluster]"  # and compute's classes below it
    assert "AwsAttributes" in fields
    assert _spec_fields.REQUIRED["AutoFullRefreshPolicy"] == ("enabled",)
