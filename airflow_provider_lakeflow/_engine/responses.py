"""A transport-neutral response, and what it means: its JSON, or databricks-sdk's own exception for it.

The SDK's parser reads a ``requests.Response`` (its own transport's type), so an error response from either
transport is presented to it as one; success responses never come here. The
operations never see a response, only its JSON or the exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    """A transport-neutral HTTP response."""

    status: int
    reason: str
    headers: Mapping[str, str]
    content: bytes
    url: str
    method: str


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


def decode_response(raw: RawResponse) -> Any:
    """Return the JSON body of a successful response, or raise the databricks-sdk exception for it."""
    if 200 <= raw.status < 300:
        if not raw.content:
            return {}
        try:
            return json.loads(raw.content)
        except ValueError:
            from databricks.sdk.errors import DatabricksError

            raise DatabricksError(
                f"{raw.method} {raw.url} returned HTTP {raw.status} with a body that is not JSON"
            ) from None
    raise api_error(raw)
