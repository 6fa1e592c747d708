"""The failure categories a user acts on, and which of Databricks' documented error conditions falls in which.

Pure data and two small parsers; no databricks-sdk. The source: Databricks' error-condition reference and Lakeflow
Connect troubleshooting pages (``docs/troubleshooting.md`` is built around :data:`CATEGORIES`). A new documented
condition is one entry in :data:`RULES` (and one in the emulator's ``testing/emulator/lifecycle/condition_catalog.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    """One thing a user does about a failure. ``retry``: an Airflow retry (a new update) can fix it by itself."""

    name: str
    title: str
    fix: str
    retry: bool


def _c(name: str, title: str, fix: str, *, retry: bool) -> Category:
    return Category(name, title, fix, retry)


#: The categories, most in need of a person first: a failure with several takes the first one listed here.
CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        _c(
            "invalid_spec",
            "the pipeline's spec is invalid",
            "Correct the pipeline spec as the message says (LakeflowCreateIngestionPipelineOperator checks most rules "
            "before any request), then run again.",
            retry=False,
        ),
        _c(
            "connection_unavailable",
            "the Unity Catalog connection is missing or not usable",
            "Check the connection name in the spec (Catalog > External Data > Connections) and grant the pipeline's "
            "owner USE CONNECTION on it, then run again.",
            retry=False,
        ),
        _c(
            "source_credentials",
            "the source rejected the connection's credentials",
            "Update the connection's credentials (LakeflowCreateConnectionOperator, or sign in again in Catalog "
            "Explorer for OAuth sources), then run again.",
            retry=False,
        ),
        _c(
            "source_permissions",
            "the source account lacks a permission",
            "Grant the source account the permission the message names, then run again.",
            retry=False,
        ),
        _c(
            "gateway_setup",
            "the ingestion gateway or the source's change capture is not set up as Lakeflow Connect needs",
            "Fix the source database or gateway setting the message names (see the connector's set-up page), then "
            "run again.",
            retry=False,
        ),
        _c(
            "unsupported",
            "an object, field or operation the connector does not support",
            "Exclude the object or column the message names from the pipeline spec, then run again.",
            retry=False,
        ),
        _c(
            "source_table_removed",
            "a source table was deleted",
            "If the source table was re-created, fully refresh {tables}; otherwise drop the destination table and "
            "remove it from the pipeline spec.",
            retry=False,
        ),
        _c(
            "schema_change_full_refresh",
            "a source schema change that needs a full refresh",
            "Fully refresh exactly {tables}: LakeflowRunPipelineOperator(..., full_refresh_selection={selection}), "
            "or set on_schema_change='full_refresh_tables' to do it automatically. A full refresh re-reads the "
            "whole table from the source.",
            retry=False,
        ),
        _c(
            "duplicate_keys",
            "the source has duplicate keys",
            "Remove the duplicate rows at the source (or declare the key the source really has in the table's "
            "table_configuration.primary_keys), then run again.",
            retry=False,
        ),
        _c(
            "schema_change_rerun",
            "a source schema change that the next run picks up",
            "Run the pipeline again: the next update applies the new schema (a task retry does it).",
            retry=True,
        ),
        _c(
            "source_quota",
            "the source's API quota or rate limit was hit",
            "Wait for the quota to reset (a retry with a long retry_delay does), run this and other pipelines on the "
            "same source less often, or raise the quota at the source.",
            retry=True,
        ),
        _c(
            "source_unavailable",
            "the source or the gateway was not reachable for a while",
            "Usually transient: a retry runs it again. If it persists, check that the source database is up and "
            "reachable from the gateway, and that the gateway pipeline is running.",
            retry=True,
        ),
        _c(
            "source_error",
            "the connector failed reading the source (no user fix documented)",
            "Run again (a retry does); if it keeps failing, file a Databricks support ticket with the update URL.",
            retry=True,
        ),
        _c(
            "cancelled",
            "the update was cancelled",
            "Someone or something stopped the update (the UI, the API, another task's on_active_update='cancel'). "
            "Run the task again once that is settled.",
            retry=False,
        ),
        _c(
            "no_data",
            "the update completed but landed no rows",
            "Likely causes: the source has no new or changed rows since the last run (incremental ingestion); a "
            "row_filter or include_columns/exclude_columns leaves nothing; the source account cannot see the rows; "
            "for query-based sources, cursor columns that are NULL (those rows are skipped); for database CDC, a "
            "gateway that is not running or has not captured changes yet. Check {tables} in the workspace.",
            retry=True,
        ),
        _c(
            "unknown",
            "an error this provider does not recognise",
            "Read the messages below and the update's event log; the Databricks error-condition reference explains "
            "the condition in brackets.",
            retry=True,
        ),
    )
}


@dataclass(frozen=True)
class Rule:
    """How one condition is handled. ``full_refresh``: the documented fix is a full refresh of the named table."""

    category: str
    fix: str | None = None
    full_refresh: bool = False


_FR = "Fully refresh exactly {tables}: full_refresh_selection={selection}."
_FR_PIPELINE = "Fully refresh the whole pipeline (full_refresh=True)."

_SCHEMA_CHANGE = {
    "COLUMN_RENAME": Rule("schema_change_full_refresh", full_refresh=True),
    "COLUMN_TYPE_CHANGE": Rule("schema_change_rerun"),
    "CURSOR_KEY_CHANGE": Rule("schema_change_full_refresh", full_refresh=True),
    "DROP_COLUMNS": Rule("schema_change_rerun"),
    "DROP_TABLE": Rule(
        "schema_change_rerun",
        "The table was deleted at the source: the next run removes it from the pipeline and keeps {tables}; drop "
        "the destination table by hand if it is no longer needed.",
    ),
    "INCOMPATIBLE_COLUMN_TYPE_CHANGE": Rule("schema_change_full_refresh", full_refresh=True),
    "NEW_COLUMNS": Rule("schema_change_rerun"),
    "PRIMARY_KEY_CHANGE": Rule("schema_change_full_refresh", full_refresh=True),
}
_UNSUPPORTED = {
    "UNSUPPORTED_SCHEMA_CHANGE": Rule("schema_change_full_refresh", full_refresh=True),
    "UNSUPPORTED_FIELD_TYPE": Rule(
        "unsupported", "Exclude {tables} (or the column the message names) from the pipeline spec."
    ),
}

#: Condition -> rule; ``CLASS.SUB`` first, then ``CLASS`` (the whole class). Databricks' error-condition reference.
RULES: dict[str, Rule] = {
    **{
        f"{c}.{s}": r
        for c in ("SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR", "DC_SCHEMA_CHANGE_ERROR")
        for s, r in _SCHEMA_CHANGE.items()
    },
    "SAAS_CONNECTOR_SCHEMA_CHANGE_ERROR": Rule("schema_change_full_refresh"),
    "DC_SCHEMA_CHANGE_ERROR": Rule("schema_change_full_refresh"),
    # Every documented sub-condition: "Please request a full refresh of the table".
    "CDC_INCOMPATIBLE_SCHEMA_CHANGES": Rule("schema_change_full_refresh", full_refresh=True),
    **{
        f"{c}.{s}": r
        for c in ("SAAS_CONNECTOR_UNSUPPORTED_ERROR", "DC_UNSUPPORTED_ERROR")
        for s, r in _UNSUPPORTED.items()
    },
    "SAAS_CONNECTOR_UNSUPPORTED_ERROR": Rule("unsupported"),
    "DC_UNSUPPORTED_ERROR": Rule("unsupported"),
    "SAAS_CONNECTOR_DUPLICATE_DATA": Rule("duplicate_keys"),
    "SAAS_CONNECTOR_DUPLICATE_DATA.ROWS_WITH_SAME_PRIMARY_KEY": Rule(
        "duplicate_keys",
        "Remove the duplicate rows at the source; or, when the source has no unique key, set "
        '"primary_keys": ["__databricks_id"] with scd_type SCD_TYPE_1 in the table_configuration of {tables} and '
        "fully refresh it (full_refresh_selection={selection}).",
    ),
    "QUERY_BASED_CONNECTOR_DUPLICATE_RECORDS": Rule("duplicate_keys"),
    "QUERY_BASED_CONNECTOR_DUPLICATE_RECORDS.FULL_REFRESH_MAY_RESOLVE": Rule(
        "duplicate_keys", "The table has no primary key and a full refresh may resolve it: " + _FR_PIPELINE
    ),
    "QUERY_BASED_INGESTION_CONNECTOR_ERROR": Rule("invalid_spec"),
    "QUERY_BASED_INGESTION_CONNECTOR_ERROR.INVALID_CURSOR_COLUMNS": Rule(
        "invalid_spec",
        "Give {tables} exactly one cursor column (table_configuration.query_based_connector_config.cursor_columns).",
    ),
    "DC_CONNECTION_ERROR": Rule("source_credentials"),
    "DC_CONNECTION_ERROR.SERVER_UNAVAILABLE": Rule("source_unavailable"),
    "DC_CONNECTION_ERROR.UNCLASSIFIED_ERROR": Rule("source_error"),
    "SAAS_UC_CONNECTION_INACCESSIBLE": Rule("connection_unavailable"),
    "SAAS_UC_CONNECTION_INACCESSIBLE.NO_CONNECTION_EXISTS": Rule(
        "connection_unavailable",
        "No Unity Catalog connection has the name in the spec's ingestion_definition.connection_name: create it "
        "(LakeflowCreateConnectionOperator) or correct the name.",
    ),
    "SAAS_UC_CONNECTION_INACCESSIBLE.USE_CONNECTION_PERMISSION_DENIED": Rule(
        "connection_unavailable",
        "Grant USE CONNECTION on the connection to the pipeline's owner (or run_as identity): "
        "GRANT USE CONNECTION ON CONNECTION <name> TO <principal>.",
    ),
    "DC_API_QUOTA_EXCEEDED": Rule("source_quota"),
    "SFDC_CONNECTOR_BULK_QUERY_JOB_INCOMPLETE": Rule("source_error"),
    "SFDC_CONNECTOR_BULK_QUERY_JOB_INCOMPLETE.MISSING_VIEW_ALL_DATA_PERMISSION": Rule(
        "source_permissions", 'Give the Salesforce user of the connection the "View All Data" permission.'
    ),
    "DC_SFDC_API_ERROR": Rule("source_error"),
    "SERVICENOW_CONNECTOR_UNAUTHORIZED_ACCESS_ERROR": Rule(
        "source_permissions",
        "Grant the ServiceNow account read access to {tables} (the admin role, or snc_read_only plus the table's "
        "ACLs).",
    ),
    "SERVICENOW_CONNECTOR_UNAUTHORIZED_ACCESS_ERROR.MISSING_USERACCOUNT_AUTH_SCOPE": Rule(
        "source_permissions",
        "Add the useraccount scope to the ServiceNow OAuth application, then sign in to the connection again.",
    ),
    "DC_SQLSERVER_ERROR.CDC_NOT_ENABLED": Rule(
        "gateway_setup", "Enable change data capture on the SQL Server table the message names, then run again."
    ),
    "DC_SQLSERVER_ERROR.INVALID_INITIALIZED_OFFSET": Rule(
        "gateway_setup", "Streaming failed during the initial snapshot: " + _FR_PIPELINE
    ),
    "DC_SQLSERVER_ERROR": Rule("gateway_setup"),
    "DC_GA4_RAW_DATA_ERROR": Rule("source_error"),
    "DC_WORKDAY_RAAS_API_ERROR": Rule("source_error"),
    "DC_CONNECTOR_ERROR": Rule("source_error"),
    "DC_CONNECTOR_ERROR.INVALID_TABLE_NAME": Rule("invalid_spec", "Correct the source table name of {tables}."),
    "SAAS_CONNECTOR_API_SOURCE_REQUESTER_ERROR": Rule("source_error"),
    "SAAS_CONNECTOR_API_SOURCE_REQUESTER_ERROR.INVALID_CREDENTIALS": Rule("source_credentials"),
    "SAAS_CONNECTOR_API_SOURCE_AUTH_ERROR": Rule("source_credentials"),
    "INGESTION_GATEWAY_OPERATION_TIMEOUT": Rule("source_unavailable"),
    "INGESTION_GATEWAY_OPERATION_TIMEOUT.TEST_CONNECTION": Rule(
        "source_unavailable",
        "The gateway could not reach the source in time: check the source's reachability, network rules and "
        "authentication; a retry runs it again.",
    ),
    "INGESTION_GATEWAY_DATABASE_UNAVAILABLE": Rule("source_unavailable"),
    "INGESTION_GATEWAY_STATEMENTS_ERROR": Rule("source_error"),
    "INGESTION_GATEWAY_STATEMENTS_ERROR.MYSQL_BINLOG_EVENT_TOO_LARGE": Rule(
        "gateway_setup",
        "A MySQL transaction exceeded the 1 GiB binlog event cap: make source transactions smaller, then "
        + _FR_PIPELINE,
    ),
    "INGESTION_GATEWAY_MYSQL_BINLOG_CORRUPTION": Rule("gateway_setup"),
    "INGESTION_GATEWAY_MYSQL_BINLOG_CORRUPTION.FILE_DELETED": Rule(
        "gateway_setup",
        "Binlog files were purged before the gateway read them: fully refresh every table (full_refresh=True) and "
        "raise the binlog retention (7 days recommended).",
    ),
    "INGESTION_GATEWAY_MYSQL_BINLOG_CORRUPTION.MISSING_FILES_DETECTED": Rule("gateway_setup", _FR),
    **{
        f"{c}.INSUFFICIENT_PRIVILEGE": Rule(
            "source_permissions",
            "Grant the PostgreSQL user REPLICATION (slots), or CREATE on the database and ownership of the tables "
            "(publications).",
        )
        for c in (
            "INGESTION_GATEWAY_PG_SLOT_CREATION_FAILED",
            "INGESTION_GATEWAY_PG_SLOT_DROP_FAILED",
            "INGESTION_GATEWAY_PG_PUBLICATION_CREATION_FAILED",
        )
    },
    "INGESTION_GATEWAY_PG_SLOT_CREATION_FAILED.MAX_SLOT_EXCEEDED": Rule(
        "gateway_setup", "Drop unused replication slots or raise max_replication_slots on the PostgreSQL server."
    ),
    "INGESTION_GATEWAY_PG_SLOT_CREATION_FAILED": Rule("gateway_setup"),
    "INGESTION_GATEWAY_PG_SLOT_DROP_FAILED": Rule("gateway_setup"),
    "INGESTION_GATEWAY_PG_PUBLICATION_CREATION_FAILED": Rule("gateway_setup"),
    "INGESTION_GATEWAY_SQL_SERVER_UNSUPPORTED_NON_TRIGGER_BASED_DDL_SETUP": Rule("gateway_setup"),
    "MIGRATION_TO_INTEGRATED_CDC_FAILURE": Rule("gateway_setup"),
    "ROLLBACK_MIGRATION_FROM_INTEGRATED_CDC_FAILURE": Rule("gateway_setup"),
    "CANNOT_WRITE_TO_INACTIVE_TABLES": Rule("source_table_removed"),
    "MANAGED_INGESTION_PIPELINE_SPEC_VALIDATION_ERROR": Rule("invalid_spec"),
    "INGESTION_GATEWAY_PIPELINE_SPEC_VALIDATION_ERROR": Rule("invalid_spec"),
}

#: Families of connector-definition conditions, matched by prefix when no exact rule exists.
PREFIX_RULES: tuple[tuple[str, Rule], ...] = (
    ("SAAS_CONNECTOR_API_SOURCE_", Rule("source_error")),
    ("SAAS_CONNECTOR_YAML_CONFIG_SOURCE_", Rule("source_error")),
    ("INGESTION_GATEWAY_PG_", Rule("gateway_setup")),
)

#: When the condition is unknown: SQLSTATEs (or their two-character class) that say enough on their own.
SQLSTATE_RULES: dict[str, Rule] = {
    "42KD4": Rule("schema_change_full_refresh"),  # schema change; no named fix, so never remedied automatically
    "0A000": Rule("unsupported"),
    "42501": Rule("source_permissions"),
    "08": Rule("connection_unavailable"),
    "28": Rule("source_credentials"),
}

_CONDITION = re.compile(r"\[([A-Z][A-Z0-9_]*)(?:\.([A-Z][A-Z0-9_]*))?\]")
_SQLSTATE = re.compile(r"SQLSTATE:\s*([0-9A-Z]{5})\b")


def parse_condition(message: str) -> tuple[str | None, str | None]:
    """``("CLASS.SUB" or "CLASS", SQLSTATE)`` from a rendered message, either part None when absent."""
    condition = None
    match = _CONDITION.match(message.lstrip()) or next(
        (m for m in _CONDITION.finditer(message) if "_" in m.group(1)), None
    )
    if match:
        condition = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
    state = _SQLSTATE.findall(message)
    return condition, (state[-1] if state else None)


def rule_for(condition: str | None, sqlstate: str | None) -> Rule:
    if condition:
        if condition in RULES:
            return RULES[condition]
        base = condition.split(".", 1)[0]
        if base in RULES:
            return RULES[base]
        for prefix, rule in PREFIX_RULES:
            if base.startswith(prefix):
                return rule
    if sqlstate:
        for key in (sqlstate, sqlstate[:2]):
            if key in SQLSTATE_RULES:
                return SQLSTATE_RULES[key]
    return Rule("unknown")
