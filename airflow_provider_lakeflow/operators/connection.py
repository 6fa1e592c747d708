"""Create or update a Unity Catalog connection (database, API-key and basic-auth credentials).

Importing this module (DAG parsing) loads no databricks-sdk and no aiohttp: those load when a task runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_lakeflow import DEFAULT_CONN_ID
from airflow_provider_lakeflow.connection_options import is_literal, validate_connection
from airflow_provider_lakeflow.operators._common import _HookMixin

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook


def mask_option_values(options: Any) -> None:
    """Register every option value with Airflow's secrets masker (logs, rendered fields, XCom, exceptions).

    Template strings that are not rendered yet are skipped (they are not the secret). Airflow 3 itself skips values
    shorter than ``[logging] min_length_masked_secret`` (5 characters by default).
    """
    from airflow.providers.common.compat.sdk import mask_secret

    if isinstance(options, str) and options.strip().startswith("{") and is_literal(options):
        try:
            options = json.loads(options)
        except ValueError:
            return
    if not isinstance(options, Mapping):
        return
    for value in options.values():
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        text = str(value)
        if text.strip() and is_literal(text):
            mask_secret(text)


class LakeflowCreateConnectionOperator(_HookMixin, BaseOperator):
    """Create a Unity Catalog connection, or bring the one with the same name up to date.

    :param name: the connection's name (templated).
    :param connection_type: the Unity Catalog connection type, e.g. ``SQLSERVER``, ``POSTGRESQL``, ``MYSQL``,
        ``ORACLE``, ``TERADATA`` (case-insensitive). Types whose credential needs a browser sign-in (OAuth U2M, e.g.
        ``SALESFORCE``) are refused with the one-time Catalog Explorer walk-through; wait for such a connection with
        :class:`~airflow_provider_lakeflow.sensors.LakeflowConnectionReadySensor` instead.
    :param options: the connection's options (templated), e.g. ``{"host": ..., "port": "1433", "user": ...,
        "password": "{{ conn.erp_db.password }}"}``. Every value is masked in logs, rendered fields and errors.
        Database types need ``host``, ``port`` (a number), ``user`` and ``password``.
    :param comment: a comment shown in Catalog Explorer (templated; set at creation only).
    :param properties: extra string properties (templated; set at creation only).
    :param update_if_exists: when a connection with that name exists, PATCH its options (default). Secret options
        are never returned by the server, so when any is given the PATCH is always sent; without secrets, options
        that already match are left alone. When false, an existing connection is left as it is (a warning is logged).
    :param databricks_conn_id: the Airflow connection to the workspace.

    Returns the connection's name. The options are never returned or pushed to XCom.
    """

    template_fields: Sequence[str] = ("name", "options", "comment", "properties")
    template_fields_renderers = {"options": "json", "properties": "json"}
    ui_color = "#ff7b46"

    def __init__(
        self,
        *,
        name: str,
        connection_type: str,
        options: Mapping[str, Any] | str,
        comment: str | None = None,
        properties: Mapping[str, str] | None = None,
        update_if_exists: bool = True,
        databricks_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.connection_type = connection_type
        self.options = options
        self.comment = comment
        self.properties = properties
        self.update_if_exists = update_if_exists
        self.databricks_conn_id = databricks_conn_id
        mask_option_values(options)  # literal values are masked from DAG parse time on
        self._check_arguments(templated=False)

    def _check_arguments(self, *, templated: bool) -> dict[str, Any] | None:
        """At parse time check what is literal; after templating (``templated=True``) check everything.

        Returns the create request body once everything could be checked.
        """
        if not isinstance(self.update_if_exists, bool):
            raise ValueError(f"update_if_exists must be true or false, got {self.update_if_exists!r}.")
        arguments = (self.name, self.options, self.comment, self.properties)
        if templated or all(is_literal(v) for v in arguments):
            return validate_connection(
                self.name, self.connection_type, self.options, comment=self.comment, properties=self.properties
            )
        # Part of it is templated: check what is known now, with a stand-in for each templated value.
        name = self.name if is_literal(self.name) else "templated_name"
        options: Any = self.options
        if isinstance(options, Mapping):
            options = {k: v if is_literal(v) else ("1" if k == "port" else "templated") for k, v in options.items()}
        else:  # the whole mapping is a template or an XComArg: nothing to check in it yet
            options = None
        validate_connection(
            name,
            self.connection_type,
            options,
            comment=self.comment if is_literal(self.comment) else None,
            properties=self.properties if is_literal(self.properties) else None,
            check_options=options is not None,
        )
        return None

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render, then mask the rendered option values before Airflow stores the rendered fields."""
        super().render_template_fields(context, jinja_env)
        mask_option_values(self.options)

    def execute(self, context: Context) -> str:
        from databricks.sdk.errors import NotFound, ResourceConflict

        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace import operations

        mask_option_values(self.options)
        body = self._check_arguments(templated=True)
        assert body is not None
        name, ctype, options = body["name"], body["connection_type"], body["options"]
        hook = self.hook
        try:
            live = hook.run(operations.get_connection(name))
        except NotFound:
            self.log.info(
                "Creating Unity Catalog connection '%s' (%s) with options %s (values hidden)",
                name,
                ctype,
                ", ".join(sorted(options)),
            )
            try:
                info = hook.run(operations.create_connection(body))
            except ResourceConflict:  # created meanwhile by someone else: treat it as existing
                live = hook.run(operations.get_connection(name))
            else:
                state = (info.get("provisioning_info") or {}).get("state")
                self.log.info(
                    "Created connection '%s' (provisioning state: %s); LakeflowConnectionReadySensor waits until "
                    "it is ready",
                    name,
                    state,
                )
                return name
        self._reconcile(hook, live, name, ctype, options)
        return name

    def _reconcile(self, hook: LakeflowHook, live: dict, name: str, ctype: str, options: dict[str, str]) -> None:
        # not at DAG parse: loaded when the task runs (benchmarks/parse_cost.py)
        from airflow_provider_lakeflow.workspace import operations

        live_type = live.get("connection_type")
        if live_type and live_type != ctype:
            raise AirflowFailException(
                f"Connection '{name}' exists with type {live_type}, not {ctype}; a connection's type cannot change. "
                "Fix: use another name, or delete the existing connection first."
            )
        if not self.update_if_exists:
            self.log.warning(
                "Connection '%s' exists; left as it is because update_if_exists=False (its options were not compared)",
                name,
            )
            return
        echoed = live.get("options") or {}
        hidden = sorted(k for k in options if k not in echoed)
        changed = sorted(k for k in options if k in echoed and echoed[k] != options[k])
        if not hidden and not changed:
            self.log.info("Connection '%s' already has these options; nothing to do", name)
            return
        hook.run(operations.update_connection(name, {"options": options}))
        reasons = []
        if changed:
            reasons.append(f"changed: {', '.join(changed)}")
        if hidden:
            reasons.append(f"not returned by the server, so sent again: {', '.join(hidden)}")
        self.log.info("Updated the options of connection '%s' (%s)", name, "; ".join(reasons))
