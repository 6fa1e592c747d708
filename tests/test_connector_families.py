"""The connector families databricks-sdk models, and its newer fields: every spec passes the operator's checks, is
created by the emulator, and comes back through databricks-sdk's dataclasses unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from databricks.sdk import WorkspaceClient

from airflow_provider_lakeflow.operators import LakeflowCreateIngestionPipelineOperator


def saas(name: str, source_table: str, connector_options: dict[str, Any], **table: Any) -> dict[str, Any]:
    return {
        "name": f"family-{name}",
        "serverless": True,
        "ingestion_definition": {
            "connection_name": f"{name}_conn",
            "objects": [
                {
                    "table": {
                        "source_table": source_table,
                        "destination_catalog": "main",
                        "destination_schema": name,
                        "connector_options": connector_options,
                        **table,
                    }
                }
            ],
        },
    }


# The SaaS sources whose options databricks-sdk models (ConnectorOptions); values are illustrative.
SAAS = [
    saas("jira", "issues", {"jira_options": {"include_jira_spaces": ["ENG", "OPS"]}}),
    saas("zendesk", "tickets", {"zendesk_support_options": {"start_date": "2026-01-01"}}),
    saas("smartsheet", "project_plan", {"smartsheet_options": {"enforce_schema": True}}),
    saas("confluence", "pages", {"confluence_options": {"include_confluence_spaces": ["DOCS"]}}),
    saas("marketo", "leads", {"marketo_options": {"sync_start_date": "2026-01-01"}}),
    saas(
        "meta_ads",
        "ads_insights",
        {"meta_ads_options": {"level": "ad", "breakdowns": ["age"], "time_increment": "1", "start_date": "2026-01-01"}},
    ),
    saas(
        "tiktok_ads",
        "reports",
        {"tiktok_ads_options": {"data_level": "AUCTION_AD", "report_type": "BASIC", "lookback_window_days": 7}},
    ),
    saas("google_ads", "campaign", {"google_ads_options": {"manager_account_id": "123-456-7890"}}),
    saas("linkedin_ads", "ad_analytics", {"linkedin_ads_options": {"lookback_window_days": 30}}),
    saas("reddit_ads", "campaigns", {"reddit_ads_options": {"sync_start_date": "2026-01-01"}}),
    saas(
        "outlook",
        "messages",
        {"outlook_options": {"include_mailboxes": ["ops@contoso.com"], "body_format": "TEXT_PLAIN"}},
    ),
    saas("rabbitmq", "orders", {"rabbitmq_options": {"queue": "orders"}}),
    saas("kafka", "events", {"kafka_options": {"topics": ["events"], "starting_offset": "earliest"}}),
    saas("api_source", "records", {"api_source_connector_options": {"options": {"page_size": "100"}}}),
]

CDC_WITH_NEWER_FIELDS = {
    "name": "family-postgres-cdc",
    "serverless": True,
    "ingestion_definition": {
        "ingestion_gateway_id": "gw-1",
        "full_refresh_window": {"start_hour": 2, "days_of_week": ["SATURDAY", "SUNDAY"], "time_zone_id": "UTC"},
        "source_configurations": [
            {
                "catalog": {
                    "source_catalog": "shop",
                    "postgres": {"slot_config": {"slot_name": "s", "publication_name": "p"}},
                }
            }
        ],
        "table_configuration": {"auto_full_refresh_policy": {"enabled": True, "min_interval_hours": 12}},
        "objects": [
            {
                "table": {
                    "source_catalog": "shop",
                    "source_schema": "public",
                    "source_table": "orders",
                    "destination_catalog": "main",
                    "destination_schema": "shop",
                    "table_configuration": {
                        "auto_full_refresh_policy": {"enabled": False},
                        "enable_auto_clustering": True,
                        "row_filter": "region = 'EU'",
                    },
                }
            }
        ],
    },
}

FILES = saas(
    "sharepoint",
    "Documents",
    {
        "sharepoint_options": {
            "entity_type": "FILE",
            "url": "https://contoso.sharepoint.com/sites/finance/Shared%20Documents",
            "file_ingestion_options": {
                "format": "CSV",
                "file_filters": [{"path_filter": "*.csv", "modified_after": "2026-01-01T00:00:00"}],
                "format_options": {"header": "true"},
                "schema_evolution_mode": "RESCUE",
                "rescued_data_column": "_rescued",
            },
        }
    },
    source_schema="finance",
)

CASES = [*SAAS, CDC_WITH_NEWER_FIELDS, FILES]


@pytest.mark.parametrize("spec", CASES, ids=[c["name"] for c in CASES])
def test_validated_created_and_round_tripped(lakeflow_emulator: Any, spec: dict[str, Any]) -> None:
    LakeflowCreateIngestionPipelineOperator(task_id="create", spec=spec)  # every field known, every rule kept
    w = WorkspaceClient(host=lakeflow_emulator.url, token="emulator-token")
    pipeline_id = w.api_client.do("POST", "/api/2.0/pipelines", body=spec)["pipeline_id"]
    got = w.pipelines.get(pipeline_id).spec.ingestion_definition.as_dict()  # parsed by the SDK's dataclasses
    got.pop("source_type", None)  # output only
    assert got == spec["ingestion_definition"]
