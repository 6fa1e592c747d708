"""Every key of a pipeline spec, at every depth, checked against databricks-sdk's own pipeline dataclasses.

A misspelt key (``primary_key`` for ``primary_keys``) is not an error on the wire: the SDK's serializers and, it
seems, the workspace drop what they do not know, so the pipeline is created without the setting. The table of known
fields is generated from the SDK (``_spec_fields.py``) so that this runs at DAG parse time without importing it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from airflow_provider_lakeflow import _spec_fields as table
from airflow_provider_lakeflow.spec import PipelineSpecError

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
    return "the create request" if kind == table.ROOT else kind


def check_fields(spec: Mapping[str, Any]) -> None:
    """Raise :class:`PipelineSpecError` for the first key that the pipeline dataclasses do not have, or the first
    value whose shape (object, list, enum value) does not match them."""
    _check(spec, table.ROOT, "")


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
    fields = table.FIELDS.get(kind)
    if fields is not None:
        fields = {**fields, **DOCUMENTED_NOT_IN_SDK.get(kind, {})}
        if not isinstance(value, Mapping):
            raise PipelineSpecError(
                where,
                f"must be an object ({_type_name(kind)}), got {type(value).__name__}.",
                "write it as a JSON/YAML object with the fields databricks-sdk documents for it.",
            )
        known = sorted(fields)
        for key in value:
            if key not in fields:
                guess = _closest(str(key), known)
                fix = f"did you mean '{guess}'?" if guess else f"remove it; the known fields are {', '.join(known)}."
                raise PipelineSpecError(
                    _join(path, str(key)),
                    f"is not a field of {_type_name(kind)} in databricks-sdk {table.SDK_VERSION}.",
                    fix,
                )
        for key in table.REQUIRED.get(kind, ()):
            if value.get(key) is None:
                raise PipelineSpecError(
                    _join(path, key),
                    f"is missing; databricks-sdk marks it required in {kind}.",
                    f"set {key}.",
                    condition=_REQUIRED_CONDITIONS.get((kind, key)),
                )
        for key, item in value.items():
            _check(item, fields[key], _join(path, str(key)))
        return
    values = table.ENUMS.get(kind)
    if values is not None:
        if value not in values:
            guess = _closest(str(value), list(values))
            hint = f"did you mean {guess!r}? Otherwise " if guess else ""
            raise PipelineSpecError(where, f"unknown value {value!r}.", f"{hint}use one of {', '.join(values)}.")
        return
    if isinstance(value, (Mapping, list)) and kind != "any":
        raise PipelineSpecError(
            where, f"must be a single value ({kind}), got {type(value).__name__}.", f"give one {kind} value."
        )
