"""The provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

CONNECTION_TYPE = "lakeflow"
#: The same connection fields, served by LakeflowSqlHook: common-sql operators pick their hook by connection type.
SQL_CONNECTION_TYPE = "lakeflow_sql"

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port"],
    "relabeling": {
        "host": "Workspace URL",
        "login": "Client ID (OAuth M2M / Azure service principal)",
        "password": "Token or client secret",
    },
    "placeholders": {
        "host": "https://adb-1234567890123456.7.azuredatabricks.net",
        "login": "leave empty for a personal access token",
        "password": "personal access token, or the service principal's secret",
        "extra": '{"auth_type": "oauth-m2m", "http_timeout_seconds": 30, "retry_timeout_seconds": 60}',
    },
}


def _declarative_behaviour() -> dict[str, Any]:
    return {
        "hidden-fields": UI_FIELD_BEHAVIOUR["hidden_fields"],
        "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }


def _conn_fields() -> dict[str, Any]:
    return {
        "warehouse_id": {
            "label": "SQL warehouse id",
            "schema": {"type": ["string", "null"]},
            "description": "Used by LakeflowSqlHook for SQL through the Statement Execution API.",
        },
    }


def provider_info(version: str) -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-lakeflow",
        "name": "Databricks Lakeflow Connect",
        "description": "Run Databricks Lakeflow Connect managed ingestion pipelines and Unity Catalog connections "
        "as Airflow tasks, with deferrable waits.",
        "versions": [version],
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": "airflow_provider_lakeflow.hooks.lakeflow.LakeflowHook",
                "hook-name": "Databricks Lakeflow Connect",
                "ui-field-behaviour": _declarative_behaviour(),
                "conn-fields": _conn_fields(),
            },
            {
                "connection-type": SQL_CONNECTION_TYPE,
                "hook-class-name": "airflow_provider_lakeflow.hooks.sql.LakeflowSqlHook",
                "hook-name": "Databricks Lakeflow Connect SQL",
                "ui-field-behaviour": _declarative_behaviour(),
                "conn-fields": _conn_fields(),
            },
        ],
        "extra-links": ["airflow_provider_lakeflow.links.LakeflowUpdateLink"],
        "plugins": [{"name": "lakeflow", "plugin-class": "airflow_provider_lakeflow.ui.plugin.LakeflowUIPlugin"}],
        "triggers": [
            {
                "integration-name": "Databricks Lakeflow Connect",
                "python-modules": [
                    "airflow_provider_lakeflow.triggers.pipeline",
                    "airflow_provider_lakeflow.triggers.connection",
                    "airflow_provider_lakeflow.triggers.events",
                    "airflow_provider_lakeflow.triggers.freshness",
                ],
            }
        ],
    }
