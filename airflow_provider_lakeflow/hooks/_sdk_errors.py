"""databricks-sdk's own error parser applied to a transport-neutral response.

The SDK's parser reads a ``requests.Response`` (its own transport's type), so an error response from either
transport is presented to it as one; success responses never come here. Kept apart from ``_protocol`` so that the
protocol module depends on neither HTTP library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_lakeflow.hooks._protocol import RawResponse

_PARSER: Any = None


def _as_requests_response(raw: RawResponse) -> Any:
    import requests
    from requests.structures import CaseInsensitiveDict

    response = requests.Response()
    response.status_code = raw.status
    response.reason = raw.reason
    response.headers = CaseInsensitiveDict(raw.headers)
    response._content = raw.content
    response.url = raw.url
    response.request = requests.Request(raw.method, raw.url).prepare()
    return response


def api_error(raw: RawResponse) -> Exception:
    """The ``DatabricksError`` subclass databricks-sdk raises for this non-2xx response (Retry-After included)."""
    global _PARSER
    if _PARSER is None:
        from databricks.sdk.errors import _Parser

        _PARSER = _Parser()
    error = _PARSER.get_api_error(_as_requests_response(raw))
    if error is None:  # pragma: no cover - the parser always maps a non-2xx response
        from databricks.sdk.errors import DatabricksError

        error = DatabricksError(f"HTTP {raw.status} {raw.reason}")
    return error
