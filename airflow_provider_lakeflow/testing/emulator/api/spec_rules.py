"""The pipeline spec rules the emulated server enforces on create and edit.

Each failure is a 400 INVALID_PARAMETER_VALUE whose message starts with the offending field path, so a user (and
the provider's own pre-flight validation tests) can see which part of the spec to fix. Where Databricks documents an
error condition for the rule (MANAGED_INGESTION_PIPELINE_SPEC_VALIDATION_ERROR.<sub> and
INGESTION_GATEWAY_PIPELINE_SPEC_VALIDATION_ERROR.<sub>, SQLSTATE 42000), the message is rendered as Databricks renders
one: ``[CONDITION] <field>: <text> SQLSTATE: 42000``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from airflow_provider_lakeflow.testing.emulator.errors import ApiError, invalid
from airflow_provider_lakeflow.testing.emulator.lifecycle.script import report_table_name

MAX_OBJECTS = 250
SCD_TYPES = ("APPEND_ONLY", "SCD_TYPE_1", "SCD_TYPE_2")
OBJECT_KINDS = ("table", "schema", "report")
MANAGED = "MANAGED_INGESTION_PIPELINE_SPEC_VALIDATION_ERROR"
GATEWAY = "INGESTION_GATEWAY_PIPELINE_SPEC_VALIDATION_ERROR"
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`")
_WHERE = re.compile(r"\bwhere\b", re.IGNORECASE)

#: The connection type of a connection name, or None when there is no such connection (the state layer's lookup).
ConnectionTypes = Callable[[str], "str | None"]


def spec_error(condition: str, message: str) -> ApiError:
    """A documented spec-validation condition, rendered as the workspace renders it."""
    return invalid(f"[{condition}] {message} SQLSTATE: 42000")


def _dict(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{field}: expected an object, got {type(value).__name__}.")
    return value


def _check_table_config(cfg: Any, field: str) -> None:
    if cfg is None:
        return
    cfg = _dict(cfg, field)
    if cfg.get("include_columns") and cfg.get("exclude_columns"):
        raise invalid(f"{field}: include_columns and exclude_columns cannot both be set; keep one of them.")
    scd = cfg.get("scd_type")
    if scd is not None and scd not in SCD_TYPES:
        raise invalid(f"{field}.scd_type: unknown value {scd!r}; expected one of {', '.join(SCD_TYPES)}.")
    if cfg.get("storage_mode") is not None and cfg.get("scd_type") is not None:
        raise invalid(f"{field}: storage_mode and scd_type cannot both be set.")
    if cfg.get("clustering_columns") and cfg.get("enable_auto_clustering"):
        raise invalid(f"{field}: clustering_columns and enable_auto_clustering cannot both be set.")


def object_destinations(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, lowercased destination table) for every table and report object; used for the duplicate rule."""
    out = []
    for i, obj in enumerate(definition.get("objects") or []):
        if not isinstance(obj, dict):
            continue
        for kind in ("table", "report"):
            spec = obj.get(kind)
            if isinstance(spec, dict):
                name = spec.get("destination_table") or (
                    spec.get("source_table") if kind == "table" else report_table_name(spec.get("source_url") or "")
                )
                full = f"{spec.get('destination_catalog')}.{spec.get('destination_schema')}.{name}".lower()
                out.append((f"ingestion_definition.objects[{i}].{kind}", full))
    return out


def _is_cdc(d: dict[str, Any]) -> bool:
    return bool(d.get("ingestion_gateway_id")) or d.get("connector_type") == "CDC"


def _objects(d: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for i, obj in enumerate(d.get("objects") or []):
        for kind in OBJECT_KINDS:
            spec = obj.get(kind) if isinstance(obj, dict) else None
            if isinstance(spec, dict):
                out.append((f"ingestion_definition.objects[{i}].{kind}", kind, spec))
    return out


#: ``IngestionSourceType`` values (and connection types) of database ingestion.
DATABASE_SOURCE_TYPES = frozenset({"MANAGED_POSTGRESQL", "MYSQL", "ORACLE", "POSTGRESQL", "SQLSERVER", "TERADATA"})


def _stated_source_type(d: dict[str, Any]) -> str | None:
    """The request's own ``source_type`` (output only on a real workspace, which infers it from the connection):
    what the emulator goes by when it has no such connection."""
    source_type = d.get("source_type")
    return str(source_type).upper() if isinstance(source_type, str) and source_type else None


def _is_database(d: dict[str, Any], connection_type: ConnectionTypes) -> bool:
    if d.get("ingestion_gateway_id") or d.get("connector_type") or d.get("ingest_from_uc_foreign_catalog"):
        return True
    name = d.get("connection_name")
    source = (connection_type(str(name)) if name else None) or _stated_source_type(d)
    return source in DATABASE_SOURCE_TYPES


def _check_table_names(d: dict[str, Any], connection_type: ConnectionTypes) -> None:
    """Database connectors cannot ingest two tables of one name into one pipeline, even from different source
    schemas (and so into different destination schemas); SaaS multi-destination pipelines may."""
    if not _is_database(d, connection_type):
        return
    seen: dict[str, str] = {}
    for path, kind, spec in _objects(d):
        name = spec.get("destination_table") or spec.get("source_table")
        if kind != "table" or not isinstance(name, str) or not name:
            continue
        if name.lower() in seen:
            raise invalid(
                f"{path}.destination_table: {seen[name.lower()]} and {path} both ingest a table named {name!r}; "
                "a database pipeline cannot ingest two tables with the same name, even from different source "
                "schemas. Give one of them a different destination_table."
            )
        seen[name.lower()] = path


def _check_documented_rules(body: dict[str, Any], d: dict[str, Any], connection_type: ConnectionTypes) -> None:
    """The MANAGED_INGESTION_PIPELINE_SPEC_VALIDATION_ERROR sub-conditions, and the SDK-documented rules beside them."""
    top = d.get("table_configuration") or {}
    levels = [("ingestion_definition.table_configuration", top)]
    levels += [(f"{p}.table_configuration", s.get("table_configuration") or {}) for p, _k, s in _objects(d)]
    for field, cfg in levels:
        row_filter = cfg.get("row_filter")
        if isinstance(row_filter, str) and _WHERE.search(_QUOTED.sub("''", row_filter)):
            raise invalid(f"{field}.row_filter: must not contain WHERE; give the condition only.")
        if cfg.get("salesforce_include_formula_fields") is not None:
            name = d.get("connection_name")
            ctype = connection_type(str(name)) if name else "not a connection"
            ctype = ctype or _stated_source_type(d)
            if ctype is not None and ctype != "SALESFORCE":  # an unknown connection: not modelled, let it pass
                raise invalid(
                    f"{field}.salesforce_include_formula_fields: is only supported for Salesforce sources "
                    f"(this pipeline's source is {ctype})."
                )
    for path, _kind, spec in _objects(d):
        own = {k: v for k, v in (spec.get("table_configuration") or {}).items() if v is not None}
        cfg = {**top, **own}
        if cfg.get("scd_type") is not None and (spec.get("connector_options") or {}).get("gdrive_options"):
            raise invalid(f"{path}.table_configuration.scd_type: is not supported for Google Drive; use storage_mode.")
        cursors = (cfg.get("query_based_connector_config") or {}).get("cursor_columns")
        if cfg.get("scd_type") == "APPEND_ONLY" and (_is_cdc(d) or not cursors):
            raise spec_error(
                f"{MANAGED}.APPEND_ONLY_REQUIRES_CURSOR_COLUMNS",
                f"{path}.table_configuration.scd_type: APPEND_ONLY is only supported for incremental query-based "
                "ingestion with cursor_columns set.",
            )
        policy = cfg.get("auto_full_refresh_policy")
        if isinstance(policy, dict):
            field = f"{path}.table_configuration.auto_full_refresh_policy"
            if policy.get("enabled") is None:
                raise spec_error(
                    f"{MANAGED}.AUTO_FULL_REFRESH_POLICY_EMPTY_ENABLED_FIELD", f"{field}.enabled: must be set."
                )
            if not _is_cdc(d):
                raise spec_error(
                    f"{MANAGED}.AUTO_FULL_REFRESH_POLICY_CDC_ONLY",
                    f"{field}: auto full refresh is only supported for CDC ingestion pipelines.",
                )
            if policy.get("enabled") is True and cfg.get("scd_type") == "SCD_TYPE_2":
                raise spec_error(
                    f"{MANAGED}.AUTO_FULL_REFRESH_NOT_SUPPORTED_FOR_SCD_TYPE_2",
                    f"{field}: auto full refresh is not supported for SCD_TYPE_2 tables.",
                )
    catalog = body.get("catalog")
    if isinstance(catalog, str) and catalog:
        for path, _kind, spec in _objects(d):
            dest = spec.get("destination_catalog")
            if isinstance(dest, str) and dest.lower() != catalog.lower():
                raise spec_error(
                    f"{MANAGED}.CATALOG_MISMATCH",
                    f"{path}.destination_catalog: {dest!r} does not match the pipeline catalog {catalog!r}.",
                )
    if d.get("ingest_from_uc_foreign_catalog"):
        for path, kind, spec in _objects(d):
            if kind == "report":
                raise invalid(f"{path}: ingestion from a foreign catalog supports table and schema specs only.")
            needed = ("source_catalog", "source_schema") + (("source_table",) if kind == "table" else ())
            for key in needed:
                if not spec.get(key):
                    raise spec_error(
                        f"{MANAGED}.FOREIGN_CATALOG_{kind.upper()}_SPEC_INCOMPLETE",
                        f"{path}.{key}: is required when ingesting from a foreign catalog.",
                    )
    seen: set[str] = set()
    for i, source in enumerate(d.get("source_configurations") or []):
        catalog_name = ((source or {}).get("catalog") or {}).get("source_catalog")
        if catalog_name is not None:
            if str(catalog_name).lower() in seen:
                raise invalid(
                    f"ingestion_definition.source_configurations[{i}].catalog.source_catalog: duplicate source "
                    f"catalog {catalog_name!r}."
                )
            seen.add(str(catalog_name).lower())


def _check_ingestion(body: dict[str, Any], connection_type: ConnectionTypes) -> None:
    d = _dict(body["ingestion_definition"], "ingestion_definition")
    if body.get("libraries"):
        raise invalid(
            "libraries: cannot be set together with ingestion_definition; a managed ingestion pipeline has no "
            "source code. Remove libraries."
        )
    if body.get("continuous") is True:
        raise invalid(
            "continuous: ingestion pipelines are triggered; remove continuous (or set it to false) and schedule "
            "updates instead."
        )
    if d.get("connection_name") and d.get("ingestion_gateway_id"):
        raise invalid(
            "ingestion_definition: connection_name and ingestion_gateway_id cannot both be set; use connection_name "
            "for SaaS/query-based sources and ingestion_gateway_id for database CDC through a gateway."
        )
    if (
        not d.get("connection_name")
        and not d.get("ingestion_gateway_id")
        and not d.get("ingest_from_uc_foreign_catalog")
    ):
        raise invalid(
            "ingestion_definition: one of connection_name, ingestion_gateway_id or ingest_from_uc_foreign_catalog is "
            "required."
        )
    objects = d.get("objects")
    if not objects:
        raise invalid("ingestion_definition.objects: at least one object (table, schema or report) is required.")
    if not isinstance(objects, list):
        raise invalid("ingestion_definition.objects: expected a list.")
    if len(objects) > MAX_OBJECTS:
        raise invalid(
            f"ingestion_definition.objects: at most {MAX_OBJECTS} objects are allowed per pipeline, got "
            f"{len(objects)}; split them across several pipelines."
        )
    _check_table_config(d.get("table_configuration"), "ingestion_definition.table_configuration")
    schemas_seen: dict[str, str] = {}
    for i, raw in enumerate(objects):
        field = f"ingestion_definition.objects[{i}]"
        obj = _dict(raw, field)
        kinds = [k for k in OBJECT_KINDS if obj.get(k) is not None]
        if len(kinds) != 1:
            raise invalid(
                f"{field}: exactly one of table, schema or report must be set, got "
                f"{', '.join(kinds) if kinds else 'none'}."
            )
        kind = kinds[0]
        spec = _dict(obj[kind], f"{field}.{kind}")
        for key in ("destination_catalog", "destination_schema"):
            if not spec.get(key):
                raise invalid(f"{field}.{kind}.{key}: is required.")
        file_url = any(
            isinstance(o, dict) and o.get("url") for o in (spec.get("connector_options") or {}).values()
        )  # a file source (SharePoint, Google Drive, OneDrive) names its folder by URL
        if kind == "table" and not spec.get("source_table") and not (file_url and spec.get("destination_table")):
            raise invalid(f"{field}.table.source_table: is required.")
        if kind == "report" and not spec.get("source_url"):
            raise invalid(f"{field}.report.source_url: is required.")
        if kind == "schema":
            key = f"{spec.get('source_catalog')}.{spec.get('source_schema')}->{spec['destination_catalog']}." + str(
                spec["destination_schema"]
            )
            if key.lower() in schemas_seen:
                raise invalid(f"{field}.schema: duplicates {schemas_seen[key.lower()]} (same source and destination).")
            schemas_seen[key.lower()] = f"{field}.schema"
        _check_table_config(spec.get("table_configuration"), f"{field}.{kind}.table_configuration")
    seen: dict[str, str] = {}
    for field, dest in object_destinations(d):
        if dest in seen:
            raise invalid(
                f"{field}.destination_table: {seen[dest]} and {field} both land in {dest}; give one of them a "
                "different destination_table."
            )
        seen[dest] = field
    _check_table_names(d, connection_type)
    _check_documented_rules(body, d, connection_type)


def _check_gateway(body: dict[str, Any]) -> None:
    g = _dict(body["gateway_definition"], "gateway_definition")
    for key in ("connection_name", "gateway_storage_catalog", "gateway_storage_schema"):
        if not g.get(key):
            raise invalid(f"gateway_definition.{key}: is required for an ingestion gateway pipeline.")
    if body.get("serverless") is True:
        raise invalid("serverless: ingestion gateways run on classic compute; remove serverless and set clusters.")
    if body.get("libraries"):
        raise invalid("libraries: cannot be set on an ingestion gateway pipeline.")
    if body.get("continuous") is not True:
        raise spec_error(
            f"{GATEWAY}.CONTINUOUS_MODE_MUST_BE_ENABLED", "continuous: must be true for an ingestion gateway pipeline."
        )
    if body.get("photon") is True:
        raise spec_error(f"{GATEWAY}.PHOTON_NOT_SUPPORTED", "photon: must be false for an ingestion gateway pipeline.")
    if body.get("edition") is not None and str(body["edition"]).upper() != "ADVANCED":
        raise spec_error(f"{GATEWAY}.EDITION_MUST_BE_ADVANCED", "edition: must be ADVANCED for an ingestion gateway.")
    if body.get("channel") is not None and str(body["channel"]).upper() not in ("CURRENT", "PREVIEW"):
        raise spec_error(
            f"{GATEWAY}.CHANNEL_MUST_BE_CURRENT_OR_PREVIEW", "channel: must be CURRENT or PREVIEW for a gateway."
        )


def _no_connections(name: str) -> str | None:
    return None


def validate_pipeline_spec(body: Any, connection_type: ConnectionTypes = _no_connections) -> None:
    body = _dict(body, "request body")
    run_as = body.get("run_as")
    if isinstance(run_as, dict) and len([v for v in run_as.values() if v]) > 1:
        raise invalid("run_as: only one of user_name, service_principal_name or group_name can be set.")
    if body.get("name") is not None and not isinstance(body["name"], str):
        raise invalid("name: expected a string.")
    if body.get("ingestion_definition") is not None and body.get("gateway_definition") is not None:
        raise invalid("ingestion_definition: cannot be set together with gateway_definition.")
    if body.get("ingestion_definition") is not None:
        _check_ingestion(body, connection_type)
    if body.get("gateway_definition") is not None:
        _check_gateway(body)
    tags = body.get("tags")
    if tags is not None and len(_dict(tags, "tags")) > 25:
        raise invalid(f"tags: at most 25 tags are allowed, got {len(tags)}.")


#: What cannot change once a pipeline exists: (path, documented condition or None).
_IMMUTABLE: tuple[tuple[tuple[str, ...], str | None], ...] = (
    (("catalog",), f"{MANAGED}.DESTINATION_CATALOG_CANNOT_CHANGE"),
    (("schema",), f"{MANAGED}.DESTINATION_SCHEMA_CANNOT_CHANGE"),
    (("ingestion_definition", "ingest_from_uc_foreign_catalog"), None),
    (("ingestion_definition", "connection_name"), f"{MANAGED}.CANNOT_SET_CONNECTION_NAME"),
    (("ingestion_definition", "ingestion_gateway_id"), f"{MANAGED}.CANNOT_SET_INGESTION_GATEWAY_ID"),
    (("ingestion_definition", "data_staging_options", "catalog_name"), None),
    (("ingestion_definition", "data_staging_options", "schema_name"), None),
    (("gateway_definition", "connection_name"), None),
    (("gateway_definition", "gateway_storage_catalog"), None),
    (("gateway_definition", "gateway_storage_schema"), None),
)


_ADD_ONLY = ("connection_name", "ingestion_gateway_id")


def _at(spec: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        spec = spec.get(key) if isinstance(spec, dict) else None
    return spec


def validate_pipeline_edit(current: dict[str, Any], body: dict[str, Any]) -> None:
    """An edit that would change a field fixed at creation (the pipeline's ``current`` spec against the request)."""
    for path, condition in _IMMUTABLE:
        new, old = _at(body, path), _at(current, path)
        if new is None or new == old:
            continue
        if old is None and (path[0] in ("catalog", "schema") or new is False):
            continue
        if old and path[0] == "ingestion_definition" and path[-1] in _ADD_ONLY:
            continue  # CANNOT_SET_*: adding is what fails; a recreated gateway's new id is accepted
        field = ".".join(path)
        text = f"{field}: cannot be changed on an existing pipeline (from {old!r} to {new!r})."
        raise spec_error(condition, text) if condition else invalid(text + " Create a new pipeline instead.")
    old_filters = {
        (
            kind,
            *(
                str(spec.get(k) or "").lower()
                for k in ("source_url", "source_catalog", "source_schema", "source_table", "destination_table")
            ),
        ): (spec.get("table_configuration") or {}).get("row_filter")
        for _p, kind, spec in _objects(current.get("ingestion_definition") or {})
    }
    for field, kind, spec in _objects(body.get("ingestion_definition") or {}):
        key = (
            kind,
            *(
                str(spec.get(k) or "").lower()
                for k in ("source_url", "source_catalog", "source_schema", "source_table", "destination_table")
            ),
        )
        if key in old_filters and (spec.get("table_configuration") or {}).get("row_filter") != old_filters[key]:
            raise invalid(f"{field}.table_configuration.row_filter: is immutable once the table is ingested.")
