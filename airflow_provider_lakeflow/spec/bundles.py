"""Pipeline specs taken from Databricks Asset Bundle files (``databricks.yml`` and the files it includes).

A bundle keeps pipelines under ``resources: pipelines: <key>: {...}``, with ``${var.<name>}`` references to the
``variables:`` it declares. This module picks one pipeline out of such a file and resolves its variables the way
``databricks bundle deploy`` does for the default target: a value passed in (``bundle_variables``, like ``--var``), then
a ``BUNDLE_VAR_<name>`` environment variable, then the variable's ``default``. Targets (``targets:``) and their
overrides are not applied; see docs/bundles.md.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_lakeflow.spec.errors import PipelineSpecError
from airflow_provider_lakeflow.spec.shape import load_spec, validate_spec

log = logging.getLogger(__name__)

#: Keys of a bundle's pipeline resource that configure the deployment, not the pipeline: the pipelines API has no
#: place for them (permissions go through the permissions API; lifecycle is the CLI's own).
BUNDLE_ONLY_KEYS = ("permissions", "lifecycle")

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_VAR = re.compile(r"var\.([A-Za-z0-9_-]+)((?:\.[A-Za-z0-9_-]+)*)$")
_MAX_DEPTH = 10  # variables that refer to variables; deeper is almost surely a cycle


def is_bundle(document: Mapping[str, Any]) -> bool:
    """A bundle file rather than a pipeline body: pipeline bodies have no ``resources``."""
    return "resources" in document or ("bundle" in document and "name" not in document)


def load_pipeline_spec(
    spec: Any,
    *,
    base_dir: str | None = None,
    resource_key: str | None = None,
    bundle_variables: Any = None,
) -> dict[str, Any]:
    """Load ``spec`` (a pipeline body or a bundle file), pick and resolve the bundle's pipeline, validate it."""
    document = load_spec(spec, base_dir=base_dir)
    if not is_bundle(document):
        for name, value in (("resource_key", resource_key), ("bundle_variables", bundle_variables)):
            if value:
                raise PipelineSpecError(
                    name,
                    "is set, but spec is a pipeline body, not a bundle file (no 'resources:').",
                    f"remove {name}, or point spec at the bundle file that defines the pipeline.",
                )
        validate_spec(document)
        return document
    source_file = spec if isinstance(spec, str) and not spec.strip().startswith("{") else "the bundle"
    key, pipeline = pick_pipeline(document, resource_key, source_file)
    where = f"resources.pipelines.{key} of {source_file}"
    resolved = resolve_variables(pipeline, document, _variables_argument(bundle_variables), where)
    dropped = [k for k in BUNDLE_ONLY_KEYS if k in resolved]
    if dropped:
        log.warning(
            "%s: %s left out: bundle deployment settings, not pipeline fields (bundle deploy applies them)",
            where,
            " and ".join(dropped),
        )
        resolved = {k: v for k, v in resolved.items() if k not in BUNDLE_ONLY_KEYS}
    try:
        validate_spec(resolved)
    except PipelineSpecError as err:
        raise err.located(where) from None
    return resolved


def _variables_argument(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    given = value
    if isinstance(value, str):  # a template that rendered to text: accepted when the text is a JSON object
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, Mapping):
        got = "text that is not a JSON object" if isinstance(given, str) else type(given).__name__
        raise PipelineSpecError(
            "bundle_variables",
            f"must be a dict of variable names to values, got {got}.",
            'pass e.g. {"catalog": "main"} (values may be templates).',
        )
    return dict(value)


def pick_pipeline(document: Mapping[str, Any], resource_key: str | None, source: str) -> tuple[str, dict[str, Any]]:
    """(key, pipeline) of the bundle's pipeline that ``resource_key`` names, or of its only pipeline."""
    resources = document.get("resources")
    pipelines = resources.get("pipelines") if isinstance(resources, Mapping) else None
    if not isinstance(pipelines, Mapping) or not pipelines:
        included = document.get("include")
        hint = (
            f"this file includes {included}; point spec at the included file that has the pipeline."
            if included
            else "add the pipeline under resources: pipelines: <key>:, or pass the pipeline body itself."
        )
        raise PipelineSpecError("resources.pipelines", f"{source} is a bundle file with no pipelines.", hint)
    keys = sorted(str(k) for k in pipelines)
    if resource_key is None or resource_key == "":
        if len(keys) > 1:
            raise PipelineSpecError(
                "resource_key",
                f"is missing, and {source} has {len(keys)} pipelines: {', '.join(keys)}.",
                "pass resource_key= with one of them.",
            )
        resource_key = keys[0]
    if resource_key not in pipelines:
        guess = difflib.get_close_matches(str(resource_key), keys, n=1)
        raise PipelineSpecError(
            "resource_key",
            f"{resource_key!r} is not a pipeline of {source}; it has {', '.join(keys)}.",
            f"did you mean {guess[0]!r}?" if guess else "pass one of those keys.",
        )
    pipeline = pipelines[resource_key]
    if not isinstance(pipeline, Mapping):
        raise PipelineSpecError(
            f"resources.pipelines.{resource_key}",
            f"must be an object, got {type(pipeline).__name__}.",
            "write the pipeline's fields under its key.",
        )
    return str(resource_key), json.loads(json.dumps(pipeline))


def resolve_variables(
    pipeline: dict[str, Any], document: Mapping[str, Any], given: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """The pipeline with every ``${var.<name>}`` (and ``${bundle.name}``) replaced; any other ``${...}`` fails."""
    declared = document.get("variables") or {}
    if not isinstance(declared, Mapping):
        raise PipelineSpecError("variables", "must be a mapping of variable names.", "see the bundle documentation.")
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise PipelineSpecError(
            "bundle_variables",
            f"names {', '.join(unknown)}, which the bundle does not declare under variables:.",
            "declare them in the bundle, or fix the names"
            + (f" (declared: {', '.join(sorted(declared))})." if declared else "."),
        )
    bundle: Mapping[str, Any] = document.get("bundle") or {}
    if not isinstance(bundle, Mapping):
        bundle = {}

    def value_of(reference: str, path: str, depth: int) -> Any:
        if reference == "bundle.name" and bundle.get("name"):
            return bundle["name"]
        match = _VAR.match(reference)
        if match is None:
            raise PipelineSpecError(
                path,
                f"refers to ${{{reference}}}, which only `databricks bundle deploy` can resolve"
                " (targets, workspace, resources and other bundle references are not resolved here).",
                "replace it with its value, or with a ${var.<name>} given in bundle_variables.",
                source=where,
            )
        name, attributes = match.group(1), match.group(2)
        if name in given:
            value = given[name]
        elif f"BUNDLE_VAR_{name}" in os.environ:
            value = os.environ[f"BUNDLE_VAR_{name}"]
        else:
            value = _declared_default(declared, name, path, where)
            if depth >= _MAX_DEPTH:
                raise PipelineSpecError(
                    path, f"variable {name} refers to itself through other variables.", "break the cycle.", source=where
                )
            value = substitute(value, path, depth + 1)
        for attribute in filter(None, attributes.split(".")):  # ${var.complex.field}
            if not isinstance(value, Mapping) or attribute not in value:
                raise PipelineSpecError(
                    path, f"${{{reference}}}: variable {name} has no field {attribute!r}.", "fix the reference."
                )
            value = value[attribute]
        return value

    def substitute(node: Any, path: str, depth: int) -> Any:
        if isinstance(node, dict):
            return {k: substitute(v, f"{path}.{k}" if path else str(k), depth) for k, v in node.items()}
        if isinstance(node, list):
            return [substitute(v, f"{path}[{i}]", depth) for i, v in enumerate(node)]
        if not isinstance(node, str) or "${" not in node:
            return node
        whole = _REFERENCE.fullmatch(node.strip())
        if whole:  # the whole value: keep the variable's own type (a number, a list, a complex variable)
            return value_of(whole.group(1).strip(), path, depth)
        return _REFERENCE.sub(lambda m: _text(value_of(m.group(1).strip(), path, depth)), node)

    return substitute(pipeline, "", 0)  # type: ignore[no-any-return]


def _declared_default(declared: Mapping[str, Any], name: str, path: str, where: str) -> Any:
    """A variable's value from its declaration in the bundle (a bare value or its ``default``)."""
    if name not in declared:
        raise PipelineSpecError(
            path,
            f"refers to ${{var.{name}}}, which the bundle does not declare.",
            f"declare {name} under variables:, or fix the name"
            + (f" (declared: {', '.join(sorted(declared))})." if declared else "."),
            source=where,
        )
    spec = declared[name]
    if not isinstance(spec, Mapping):
        return spec  # a bare value: taken as the default
    if "default" in spec:
        return spec["default"]
    kind = "a lookup, which needs a workspace" if "lookup" in spec else "declared without a default"
    raise PipelineSpecError(
        path,
        f"refers to ${{var.{name}}}, which is {kind}.",
        f"pass bundle_variables={{'{name}': ...}} (or set BUNDLE_VAR_{name}).",
        source=where,
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)
