"""The pipeline spec rules the emulated server enforces on create and edit.

Each failure is a 400 INVALID_PARAMETER_VALUE whose message starts with the offending field path, so a user (and
the provider's own pre-flight validation tests) can see which part of the spec to fix.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_lakeflow.testing.emulator.errors import invalid

MAX_OBJECTS = 250
SCD_TYPES = ("APPEND_ONLY", "SCD_TYPE_1", "SCD_TYPE_2")
OBJECT_KINDS = ("table", "schema", "report")


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


def report_table_name(source_url: str) -> str:
    """A report's default destination: the last path segment of its URL, lowercased, non-alphanumerics as ``_``."""
    path = source_url.split("?", 1)[0].rstrip("/")
    last = path.rsplit("/", 1)[-1] if path else ""
    name = "".join(c if c.isalnum() else "_" for c in last.lower()).strip("_")
    return name or "report"


def _check_ingestion(body: dict[str, Any]) -> None:
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
    if not d.get("connection_name") and not d.get("ingestion_gateway_id"):
        raise invalid("ingestion_definition: one of connection_name or ingestion_gateway_id is required.")
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
        if kind == "table" and not spec.get("source_table"):
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


def _check_gateway(body: dict[str, Any]) -> None:
    g = _dict(body["gateway_definition"], "gateway_definition")
    for key in ("connection_name", "gateway_storage_catalog", "gateway_storage_schema"):
        if not g.get(key):
            raise invalid(f"gateway_definition.{key}: is required for an ingestion gateway pipeline.")
    if body.get("serverless") is True:
        raise invalid("serverless: ingestion gateways run on classic compute; remove serverless and set clusters.")


def validate_pipeline_spec(body: Any) -> None:
    body = _dict(body, "request body")
    if body.get("name") is not None and not isinstance(body["name"], str):
        raise invalid("name: expected a string.")
    if body.get("ingestion_definition") is not None and body.get("gateway_definition") is not None:
        raise invalid("ingestion_definition: cannot be set together with gateway_definition.")
    if body.get("ingestion_definition") is not None:
        _check_ingestion(body)
    if body.get("gateway_definition") is not None:
        _check_gateway(body)
    tags = body.get("tags")
    if tags is not None and len(_dict(tags, "tags")) > 25:
        raise invalid(f"tags: at most 25 tags are allowed, got {len(tags)}.")
