"""Every key of a pipeline spec, at every depth, checked against databricks-sdk's own pipeline dataclasses.

A misspelt key (``primary_key`` for ``primary_keys``) is not an error on the wire: the SDK's serializers and, it
seems, the workspace drop what they do not know, so the pipeline is created without the setting. The table of known
fields is generated from the SDK (``_spec_fields.py``) so that this runs at DAG parse time without importing it.

That table is a floor, not a ceiling: a key or enum value it does not know is looked up in the installed
databricks-sdk's dataclasses before it is refused, when the installed SDK is another release than the table's (a
newer one brings the fields and connectors Databricks shipped since). Only then is the SDK imported; a spec whose
keys the table knows, or an installed SDK of the table's own release, never imports it.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from typing import Any

from airflow_provider_lakeflow.spec import field_table
from airflow_provider_lakeflow.spec.errors import PipelineSpecError

#: Required fields whose absence the workspace reports with a documented error condition of its own.
_REQUIRED_CONDITIONS = {
    ("AutoFullRefreshPolicy", "enabled"): "MANAGED_INGESTION_PIPELINE_SPEC_VALIDATION_ERROR."
    "AUTO_FULL_REFRESH_POLICY_EMPTY_ENABLED_FIELD",
}

#: Fields Databricks documents that databricks-sdk does not model yet (kept here by hand, with the page saying so).
#: ``storage_mode``: the Google Drive connector's table configuration (docs: google-drive-reference, -limits).
DOCUMENTED_NOT_IN_SDK: dict[str, dict[str, str]] = {"TableSpecificConfig": {"storage_mode": "str"}}

_SHAPES = {"[": "a list", "{": "an object (a map of names to values)"}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _closest(word: str, known: list[str]) -> str | None:
    for name in known:
        if name.lower() == word.lower():
            return name
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return close[0]
    starting = [name for name in known if len(word) >= 3 and name.lower().startswith(word.lower())]
    return starting[0] if len(starting) == 1 else None  # an abbreviation: "scd" for "scd_type"


def _type_name(kind: str) -> str:
    return "the create request" if kind == field_table.ROOT else kind


_SCALARS = frozenset({"str", "int", "bool", "float", "any"})


@functools.cache
def installed_sdk_version() -> str:
    """The installed databricks-sdk's version, read from its package metadata (no import), or the table's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("databricks-sdk")
    except PackageNotFoundError:
        return field_table.SDK_VERSION


@functools.cache
def _installed_table() -> dict[str, Any] | None:
    """The installed SDK's own table, or None when it is the table's release (or cannot be read)."""
    if installed_sdk_version() == field_table.SDK_VERSION:
        return None
    # only with another SDK release installed: build() imports databricks-sdk, which a DAG file must not load
    from airflow_provider_lakeflow.spec.generate_field_table import build

    try:
        return build()
    except TypeError:  # a type the generator does not know yet: the floor alone decides
        return None


def _fields(kind: str) -> dict[str, str] | None:
    """A class's fields: the table's (with the documented extras), and where it lacks the class, the installed SDK's."""
    fields = field_table.FIELDS.get(kind)
    if fields is not None:
        return {**fields, **DOCUMENTED_NOT_IN_SDK.get(kind, {})}
    if kind in _SCALARS or kind in field_table.ENUMS:
        return None
    newer = _installed_table()
    return newer["fields"].get(kind) if newer else None


def _field_kind(kind: str, fields: dict[str, str], key: str) -> str | None:
    """The kind of ``key`` in class ``kind``: from the table, else from the installed SDK; None if neither has it."""
    if key in fields:
        return fields[key]
    newer = _installed_table()
    return newer["fields"].get(kind, {}).get(key) if newer else None


def _enum_values(kind: str, value: Any) -> tuple[str, ...] | None:
    """The values of enum ``kind`` that the error lists; the installed SDK's too when ``value`` is not the table's."""
    values = field_table.ENUMS.get(kind)
    if values is None and (kind in _SCALARS or kind in field_table.FIELDS):
        return None
    if values is not None and value in values:
        return values
    newer = _installed_table()
    more = newer["enums"].get(kind) if newer else None
    if values is None and more is None:
        return None
    return tuple(sorted({*(values or ()), *(more or ())}))


def check_fields(spec: Mapping[str, Any]) -> None:
    """Raise :class:`PipelineSpecError` for the first key that the pipeline dataclasses do not have, or the first
    value whose shape (object, list, enum value) does not match them."""
    _check(spec, field_table.ROOT, "")


def _check(value: Any, kind: str, path: str) -> None:
    if value is None:
        return  # null: "not set", as the SDK's serializer treats it
    where = path or "spec"
    if kind[0] in _SHAPES:
        is_list = kind[0] == "["
        if not isinstance(value, list if is_list else Mapping):
            example = '["..."]' if is_list else '{"key": "value"}'
            raise PipelineSpecError(
                where, f"must be {_SHAPES[kind[0]]}, got {type(value).__name__}.", f"write it as {example}."
            )
        inner = kind[1:-1]
        items: Any = enumerate(value) if isinstance(value, list) else value.items()
        for key, item in items:
            _check(item, inner, f"{path}[{key}]" if is_list else _join(path, str(key)))
        return
    fields = _fields(kind)
    if fields is not None:
        if not isinstance(value, Mapping):
            raise PipelineSpecError(
                where,
                f"must be an object ({_type_name(kind)}), got {type(value).__name__}.",
                "write it as a JSON/YAML object with the fields databricks-sdk documents for it.",
            )
        kinds: dict[str, str] = {}
        for key in value:
            found = _field_kind(kind, fields, str(key))
            if found is None:
                newer = _installed_table()
                known = sorted({*fields, *(newer["fields"].get(kind, {}) if newer else ())})
                guess = _closest(str(key), known)
                fix = f"did you mean '{guess}'?" if guess else f"remove it; the known fields are {', '.join(known)}."
                raise PipelineSpecError(
                    _join(path, str(key)),
                    f"is not a field of {_type_name(kind)} in databricks-sdk {installed_sdk_version()}.",
                    fix,
                )
            kinds[key] = found
        if kind in field_table.FIELDS:
            required = field_table.REQUIRED.get(kind, ())
        else:
            newer = _installed_table()
            required = newer["required"].get(kind, ()) if newer else ()
        for key in required:
            if value.get(key) is None:
                raise PipelineSpecError(
                    _join(path, key),
                    f"is missing; databricks-sdk marks it required in {kind}.",
                    f"set {key}.",
                    condition=_REQUIRED_CONDITIONS.get((kind, key)),
                )
        for key, item in value.items():
            _check(item, kinds[key], _join(path, str(key)))
        return
    values = _enum_values(kind, value)
    if values is not None:
        if value not in values:
            guess = _closest(str(value), list(values))
            hint = f"did you mean {guess!r}? Otherwise " if guess else ""
            raise PipelineSpecError(
                where,
                f"unknown value {value!r} ({kind} in databricks-sdk {installed_sdk_version()}).",
                f"{hint}use one of {', '.join(values)}.",
            )
        return
    if isinstance(value, (Mapping, list)) and kind != "any":
        raise PipelineSpecError(
            where, f"must be a single value ({kind}), got {type(value).__name__}.", f"give one {kind} value."
        )
