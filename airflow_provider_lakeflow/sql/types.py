"""Type conversion for the Statement Execution API: Python values to its named parameters, and its JSON_ARRAY strings
back to Python values (by each column's ``type_name``)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_provider_lakeflow.sql.errors import NotSupportedError, ProgrammingError
from airflow_provider_lakeflow.sql.lexer import CODE, tokens

# --- parameters: Python values -> the API's named parameters -------------------------------------------------------
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PYFORMAT = re.compile(r"%\((?P<name>[^)]*)\)s|%%")
_FORMAT = re.compile(r"%s|%%")
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1


def _decimal_type(value: decimal.Decimal) -> str:
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise NotSupportedError(f"Decimal {value} (NaN or infinity) has no DECIMAL representation; pass a float.")
    scale = max(0, -exponent)
    precision = max(len(digits) + max(0, exponent), scale, 1)
    if precision > 38:
        raise NotSupportedError(f"Decimal {value} needs {precision} digits; DECIMAL holds at most 38.")
    return f"DECIMAL({precision},{scale})"


def api_parameter(name: str, value: Any) -> dict[str, Any]:
    """One ``StatementParameterListItem``: the value as a string plus the SQL type it is cast to."""
    if not _NAME.match(name):
        raise ProgrammingError(f"Parameter name {name!r} is not a valid SQL identifier (letters, digits, _).")
    if value is None:
        return {"name": name}  # value omitted: NULL
    if isinstance(value, bool):
        return {"name": name, "value": "true" if value else "false", "type": "BOOLEAN"}
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            kind = "INT"
        elif _BIGINT_MIN <= value <= _BIGINT_MAX:
            kind = "BIGINT"
        else:
            kind = _decimal_type(decimal.Decimal(value))
        return {"name": name, "value": str(value), "type": kind}
    if isinstance(value, float):
        text = (
            "NaN"
            if math.isnan(value)
            else ("Infinity" if value > 0 else "-Infinity")
            if math.isinf(value)
            else repr(value)
        )
        return {"name": name, "value": text, "type": "DOUBLE"}
    if isinstance(value, decimal.Decimal):
        return {"name": name, "value": format(value, "f"), "type": _decimal_type(value)}
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMP_NTZ" if value.tzinfo is None else "TIMESTAMP"
        return {"name": name, "value": value.isoformat(), "type": kind}
    if isinstance(value, dt.date):
        return {"name": name, "value": value.isoformat(), "type": "DATE"}
    if isinstance(value, str):
        return {"name": name, "value": value, "type": "STRING"}
    raise NotSupportedError(
        f"Parameter {name!r}: values of type {type(value).__name__} cannot be bound (supported: str, int, float, bool, "
        "None, decimal.Decimal, datetime.date, datetime.datetime)."
    )


def _rewrite_code(sql: str, rewrite: Callable[[str], str]) -> str:
    return "".join(rewrite(text) if kind == CODE else text for kind, text in tokens(sql))


def _code_contains(sql: str, needle: str) -> bool:
    return any(kind == CODE and needle in text for kind, text in tokens(sql))


def bind(sql: str, parameters: Any) -> tuple[str, list[dict[str, Any]]]:
    """The statement with ``:name`` markers, and its ``parameters`` list for the API.

    - a mapping binds ``:name`` markers, or ``%(name)s`` markers (pyformat; ``%%`` is then a literal ``%``);
    - a sequence binds ``?`` markers (qmark) or ``%s`` markers (format), rewritten to ``:p1``, ``:p2``, ...
    Markers inside string literals, quoted names and comments are left alone. Without parameters the SQL is sent as is.
    """
    if parameters is None:
        return sql, []
    if isinstance(parameters, Mapping):
        if _code_contains(sql, "%("):
            missing: list[str] = []

            def named(text: str) -> str:
                def repl(m: re.Match[str]) -> str:
                    if m.group() == "%%":
                        return "%"
                    if m.group("name") not in parameters:
                        missing.append(m.group("name"))
                    return f":{m.group('name')}"

                return _PYFORMAT.sub(repl, text)

            sql = _rewrite_code(sql, named)
            if missing:
                raise ProgrammingError(f"No value for parameter(s) {sorted(set(missing))}.")
        return sql, [api_parameter(str(k), v) for k, v in parameters.items()]
    if isinstance(parameters, str | bytes) or not isinstance(parameters, Sequence):
        raise ProgrammingError(
            f"parameters must be a mapping (for :name or %(name)s markers) or a sequence (for ? or %s markers), "
            f"not {type(parameters).__name__}."
        )
    values = list(parameters)
    if not values:
        return sql, []
    marker = _FORMAT if _code_contains(sql, "%s") and not _code_contains(sql, "?") else re.compile(r"\?")
    count = 0

    def positional(text: str) -> str:
        def repl(m: re.Match[str]) -> str:
            nonlocal count
            if m.group() == "%%":
                return "%"
            count += 1
            return f":p{count}"

        return marker.sub(repl, text)

    sql = _rewrite_code(sql, positional)
    if count != len(values):
        raise ProgrammingError(
            f"The statement has {count} positional marker(s) but {len(values)} parameter(s) were given."
        )
    return sql, [api_parameter(f"p{i}", v) for i, v in enumerate(values, start=1)]


def is_read_only(sql: str) -> bool:
    """A statement that can be submitted again safely if its first submission's fate is unknown."""
    code = "".join(text for kind, text in tokens(sql) if kind == CODE).lstrip(" \t\r\n(;")
    first = code.split(None, 1)[0].upper() if code else ""
    return first in {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "VALUES", "TABLE", "FROM", "LIST"}


# --- results: strings -> Python values, by the manifest's type_name ------------------------------------------------
_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?\Z"
)


def parse_timestamp(text: str, *, naive: bool = False) -> dt.datetime:
    m = _TIMESTAMP.match(text.strip())
    if m is None:
        return dt.datetime.fromisoformat(text)
    y, mo, d = (int(x) for x in m.group("date").split("-"))
    micro = int((m.group("f") or "0")[:6].ljust(6, "0"))
    tzinfo: dt.tzinfo | None = None
    if not naive:
        tzinfo = dt.timezone.utc
        offset = m.group("tz")
        if offset and offset != "Z":
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
            tzinfo = dt.timezone(sign * dt.timedelta(minutes=minutes))
    return dt.datetime(y, mo, d, int(m.group("h")), int(m.group("m")), int(m.group("s") or 0), micro, tzinfo=tzinfo)


def _boolean(text: str) -> bool:
    return text.strip().lower() in ("true", "1")


def _binary(text: str) -> bytes | str:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return text


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    **dict.fromkeys(("BYTE", "SHORT", "INT", "LONG", "TINYINT", "SMALLINT", "INTEGER", "BIGINT"), int),
    **dict.fromkeys(("FLOAT", "DOUBLE", "REAL"), float),
    "DECIMAL": decimal.Decimal,
    "BOOLEAN": _boolean,
    "DATE": dt.date.fromisoformat,
    "TIMESTAMP": parse_timestamp,
    "TIMESTAMP_NTZ": lambda text: parse_timestamp(text, naive=True),
    "BINARY": _binary,
    **dict.fromkeys(("ARRAY", "MAP", "STRUCT", "VARIANT"), _json),
}


def converter(type_name: str | None) -> Callable[[str], Any] | None:
    """How to turn a JSON_ARRAY string of this column type back into a Python value (None: keep the string)."""
    return _CONVERTERS.get((type_name or "STRING").upper())


def _safe(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def run(text: str) -> Any:
        try:
            return convert(text)
        except (ValueError, ArithmeticError):
            return text  # an unexpected rendering: hand over the server's text rather than fail the fetch

    return run
