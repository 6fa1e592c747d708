"""The one exception type the workspace model raises; the server turns it into Databricks' error JSON."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error response as Databricks sends it: HTTP status plus ``{"error_code", "message"}``.

    Raised by the state layer (no HTTP there) so the in-process control API and the HTTP routes report the same thing.
    """

    def __init__(self, status: int, error_code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message}


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "RESOURCE_CONFLICT", message)


def already_exists(message: str) -> ApiError:
    return ApiError(409, "RESOURCE_ALREADY_EXISTS", message)
