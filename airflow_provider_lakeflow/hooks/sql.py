"""LakeflowSqlHook: a common-sql ``DbApiHook`` over the Databricks SQL Statement Execution API.

Same Airflow connection, auth, retries and error mapping as ``LakeflowHook`` (it drives the same sans-IO request
engine); no databricks-sql-connector. See ``docs/hooks/sql-hook.md``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook

from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook
from airflow_provider_lakeflow.sql import dbapi

#: DbApiHook's own keyword arguments; anything else in ``**kwargs`` is ignored (see ``LakeflowSqlHook``).
_DBAPI_KWARGS = frozenset(
    {"log_sql", "insert_statement_format", "replace_statement_format", "escape_word_format", "escape_column_names"}
)


class LakeflowSqlHook(DbApiHook):
    """Run SQL on a Databricks SQL warehouse through the Statement Execution API, as a common-sql ``DbApiHook``.

    ``SQLExecuteQueryOperator``, ``SQLTableCheckOperator``, ``SQLColumnCheckOperator``, ``SQLValueCheckOperator`` and
    the other common-sql operators use it for connections of type ``lakeflow_sql``.

    :param databricks_conn_id: the Airflow connection (type ``lakeflow_sql``, ``lakeflow`` or ``databricks``; the
        same fields and extras as for ``LakeflowHook``).
    :param warehouse_id: SQL warehouse id; default: the connection extra ``warehouse_id``.
    :param catalog: default catalog of the statements (the API's ``catalog``).
    :param schema: default schema of the statements (the API's ``schema``; common-sql's ``database=`` sets it).
    :param wait_timeout: seconds the submit call waits for a result server-side: 0 or 5-50 (default 10).
    :param statement_timeout: longest time in seconds a statement may run before it is canceled and the call fails
        (default 3600; None: no limit).
    :param poll_interval: longest pause in seconds between polls of a running statement (default 2).
    :param row_limit: the API's ``row_limit`` (the result is truncated to this many rows).
    :param kwargs: DbApiHook's own options (``log_sql``, ...). Other keys are ignored: common-sql operators pass every
        connection extra as a hook parameter, and those are read from the connection itself.
    """

    conn_name_attr = "databricks_conn_id"
    default_conn_name = "databricks_default"
    conn_type = "lakeflow_sql"
    hook_name = "Databricks Lakeflow Connect SQL"
    supports_autocommit = True
    supports_executemany = False
    _placeholder = "?"
    _test_connection_sql = "SELECT 1"

    def __init__(
        self,
        databricks_conn_id: str = default_conn_name,
        warehouse_id: str | None = None,
        *,
        catalog: str | None = None,
        schema: str | None = None,
        wait_timeout: int = 10,
        statement_timeout: float | None = 3600.0,
        poll_interval: float = 2.0,
        row_limit: int | None = None,
        **kwargs: Any,
    ) -> None:
        own = {k: v for k, v in kwargs.items() if k in _DBAPI_KWARGS}
        if "connection" in kwargs:
            own["connection"] = kwargs["connection"]
        super().__init__(databricks_conn_id=databricks_conn_id, schema=schema, **own)
        self.databricks_conn_id = databricks_conn_id
        self.warehouse_id = warehouse_id or None
        self.catalog = catalog or None
        self.schema = schema or None
        self.wait_timeout = int(wait_timeout)
        self.statement_timeout = None if statement_timeout is None else float(statement_timeout)
        self.poll_interval = float(poll_interval)
        self.row_limit = row_limit
        self.statement_options()  # validate now rather than at the first statement

    # -- connection ---------------------------------------------------------------------------------------------------
    @cached_property
    def api(self) -> LakeflowHook:
        """The ``LakeflowHook`` that sends the requests (shares this hook's Airflow connection)."""
        hook = LakeflowHook(databricks_conn_id=self.databricks_conn_id)
        hook._settings = LakeflowHook._settings_from(self.connection)
        return hook

    def resolved_warehouse_id(self) -> str | None:
        if self.warehouse_id:
            return self.warehouse_id
        value = self.api.settings.provider_extras.get("warehouse_id")
        return str(value) if value else None

    def statement_options(self, *, resolve: bool = False) -> dbapi.StatementOptions:
        return dbapi.StatementOptions(
            warehouse_id=self.resolved_warehouse_id() if resolve else self.warehouse_id,
            catalog=self.catalog,
            schema=self.schema,
            wait_timeout=self.wait_timeout,
            statement_timeout=self.statement_timeout,
            poll_interval=self.poll_interval,
            row_limit=self.row_limit,
        )

    def get_conn(self) -> dbapi.Connection:
        """A PEP 249 connection (cheap: it holds no network resource of its own)."""
        return dbapi.Connection(self.api, self.statement_options(resolve=True))

    @property
    def escape_word_format(self) -> str:
        """Databricks SQL quotes names with backticks."""
        return self._escape_word_format or "`{}`"

    @cached_property
    def dialect_name(self) -> str:
        """common-sql's generic dialect (there is no SQLAlchemy URL to derive one from)."""
        return "default"

    def get_uri(self) -> str:
        raise NotImplementedError(
            "LakeflowSqlHook talks to the Statement Execution API over HTTPS and has no SQLAlchemy URI; use "
            "get_records()/get_first(), or the official Databricks provider for SQLAlchemy."
        )

    # -- UI ----------------------------------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:  # type: ignore[override]  # DbApiHook's stub says None
        ok, message = self.api.test_connection()
        if not ok:
            return ok, message
        warehouse = self.resolved_warehouse_id()
        if not warehouse:
            return True, f"{message}. No warehouse_id is set, so SQL was not tried."
        try:
            self.get_first(self._test_connection_sql)
        except Exception as exc:
            return False, f"{message}, but SQL warehouse {warehouse} failed: {type(exc).__name__}: {exc}"
        return True, f"{message}; SQL warehouse {warehouse} answered."

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return LakeflowHook.get_ui_field_behaviour()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return LakeflowHook.get_connection_form_widgets()
