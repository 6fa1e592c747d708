"""The field table that DAG parsing uses (so that it never imports databricks-sdk) must match the SDK it was
generated from; with a newer SDK installed it is the floor (``tests/test_spec_fields_newer_sdk.py``)."""

from __future__ import annotations

from pathlib import Path

from packaging.version import Version

from airflow_provider_lakeflow.spec import field_table, generate_field_table


def test_field_table_matches_the_installed_sdk():
    fresh = generate_field_table.build()
    if fresh["sdk_version"] != field_table.SDK_VERSION:
        # the floor: the declared minimum; what a newer release adds is read from it at check time
        assert Version(fresh["sdk_version"]) > Version(field_table.SDK_VERSION)
        return
    assert fresh["fields"] == field_table.FIELDS, "run: python -m airflow_provider_lakeflow.spec.generate_field_table"
    assert fresh["required"] == field_table.REQUIRED
    assert fresh["enums"] == field_table.ENUMS


def test_the_table_is_generated_from_the_declared_minimum_sdk():
    """The floor is the oldest release users may install, so that nothing the table accepts is unknown to theirs."""
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"databricks-sdk>={field_table.SDK_VERSION}"' in pyproject
