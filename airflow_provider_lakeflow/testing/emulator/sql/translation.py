"""Between Databricks SQL and DuckDB: statement text and parameters in, column types and values out.

See ``engine.py`` for the dialect rules (three-part names, reserved catalogs, JSON paths, parameter markers).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import re
from typing import Any

from airflow_provider_lakeflow.sql.lexer import CODE, COMMENT, IDENT, STRING, tokens, unquote_string

RESERVED = frozenset({"main", "system", "temp", "memory"})


def duckdb_catalog(catalog: str) -> str:
    name = catalog.lower()
    return f"__uc_{name}" if name in RESERVED else name


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- SQL translation -----------------------------------------------------------------------------------------------
_PART = r"(?:[A-Za-z_]\w*|\x00\d+\x00)"
_THREE_PART = re.compile(rf"(?<![\w.$\x00])({_PART})(\s*\.\s*{_PART}\s*\.\s*{_PART})")
_JSON_PATH = re.compile(r"(?<![\w.$:])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?!:)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*)")
_PARAM = re.compile(r"(?<![\w:$\x00]):([A-Za-z_]\w*)")


def translate(sql: str) -> tuple[str, list[str]]:
    """Databricks SQL -> DuckDB SQL, and the parameter names it uses (in order of first use)."""
    pieces: list[str] = []
    masked: list[str] = []
    for kind, text in tokens(sql):
        if kind == CODE:
            masked.append(text)
            continue
        if kind == COMMENT:
            piece = " "
        elif kind == IDENT:
            piece = _q(text[1:-1].replace("``", "`") if text.endswith("`") and len(text) > 1 else text[1:])
        elif kind == STRING and text[0] == "'":
            piece = "'" + unquote_string(text).replace("'", "''") + "'"
        else:  # "...": a name in DuckDB
            piece = text
        masked.append(f"\x00{len(pieces)}\x00")
        pieces.append(piece)
    code = "".join(masked)
    names: list[str] = []

    def catalog(m: re.Match[str]) -> str:
        first = m.group(1)
        if first.startswith("\x00"):
            piece = pieces[int(first.strip("\x00"))]
            bare = piece[1:-1].replace('""', '"') if piece.startswith('"') else None
            if bare is not None and bare.lower() in RESERVED:
                pieces[int(first.strip("\x00"))] = _q(duckdb_catalog(bare))
            return m.group(0)
        if first.lower() in RESERVED:
            return _q(duckdb_catalog(first)) + m.group(2)
        return m.group(0)

    def param(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${m.group(1)}"

    code = _THREE_PART.sub(catalog, code)
    code = _JSON_PATH.sub(lambda m: f"json_extract_string({m.group(1)}, '$.{m.group(2)}')", code)
    code = _PARAM.sub(param, code)
    out = re.sub(r"\x00(\d+)\x00", lambda m: pieces[int(m.group(1))], code)
    return out, names


def parameter_value(item: dict[str, Any]) -> Any:
    """A StatementParameterListItem's value, cast to its type as Databricks would (ValueError when it cannot)."""
    value = item.get("value")
    if value is None:
        return None
    kind = str(item.get("type") or "STRING").strip().upper()
    base = kind.split("(", 1)[0].strip()
    text = str(value)
    if base in ("STRING", "VARCHAR", "CHAR"):
        return text
    if base in ("INT", "INTEGER", "BIGINT", "LONG", "SMALLINT", "SHORT", "TINYINT", "BYTE"):
        return int(text.strip())
    if base in ("DOUBLE", "FLOAT", "REAL"):
        return float(text.strip())
    if base in ("DECIMAL", "DEC", "NUMERIC"):
        try:
            return decimal.Decimal(text.strip())
        except decimal.InvalidOperation:
            raise ValueError(f"{text!r} is not a DECIMAL") from None
    if base == "BOOLEAN":
        low = text.strip().lower()
        if low not in ("true", "false"):
            raise ValueError(f"{text!r} is not a BOOLEAN")
        return low == "true"
    if base == "DATE":
        return dt.date.fromisoformat(text.strip())
    if base in ("TIMESTAMP", "TIMESTAMP_LTZ", "TIMESTAMP_NTZ"):
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if base == "TIMESTAMP_NTZ":
            return moment.replace(tzinfo=None)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    if base == "VOID":
        return None
    raise ValueError(f"unsupported parameter type {kind!r}")


# --- result rendering ----------------------------------------------------------------------------------------------
_SIMPLE_TYPES = {
    "BOOLEAN": "BOOLEAN",
    "TINYINT": "BYTE",
    "SMALLINT": "SHORT",
    "INTEGER": "INT",
    "BIGINT": "LONG",
    "UTINYINT": "SHORT",
    "USMALLINT": "INT",
    "UINTEGER": "LONG",
    "FLOAT": "FLOAT",
    "DOUBLE": "DOUBLE",
    "VARCHAR": "STRING",
    "JSON": "STRING",
    "UUID": "STRING",
    "TIME": "STRING",
    "BLOB": "BINARY",
    "DATE": "DATE",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
    "TIMESTAMP": "TIMESTAMP_NTZ",
    "INTERVAL": "INTERVAL",
    '"NULL"': "NULL",
    "NULL": "NULL",
}
_TEXT = {"LONG": "BIGINT", "BYTE": "TINYINT", "SHORT": "SMALLINT", "TIMESTAMP_NTZ": "TIMESTAMP_NTZ", "NULL": "VOID"}


def column_info(name: str, duck_type: str, position: int) -> dict[str, Any]:
    """A ColumnInfo for a DuckDB column type, named as Databricks names types."""
    t = duck_type.upper()
    info: dict[str, Any] = {"name": name, "position": position}
    if m := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", t):
        p, s = int(m.group(1)), int(m.group(2))
        info.update(type_name="DECIMAL", type_text=f"DECIMAL({p},{s})", type_precision=p, type_scale=s)
    elif t in ("HUGEINT", "UHUGEINT", "UBIGINT"):
        info.update(type_name="DECIMAL", type_text="DECIMAL(38,0)", type_precision=38, type_scale=0)
    elif t.endswith("]"):
        info.update(type_name="ARRAY", type_text=f"ARRAY<{t.rsplit('[', 1)[0]}>")
    elif t.startswith("STRUCT"):
        info.update(type_name="STRUCT", type_text=t)
    elif t.startswith("MAP"):
        info.update(type_name="MAP", type_text=t)
    else:
        kind = _SIMPLE_TYPES.get(t, "STRING")
        info.update(type_name=kind, type_text=_TEXT.get(kind, kind))
    return info


def _plain(value: Any) -> Any:
    """A nested value (in a STRUCT, MAP or ARRAY) as JSON-friendly data."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else render(value)
    return render(value)


def render(value: Any) -> str | None:
    """A value as the JSON_ARRAY format writes it: a string, or None for NULL."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
            return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict | list | tuple):
        return json.dumps(_plain(value), separators=(",", ":"))
    return str(value)


def jsonable(value: Any) -> Any:
    """Rows for the control API: numbers, booleans and None as they are; everything else as its rendering."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return render(value)


# DuckDB exception -> the error_code and SQLSTATE Databricks answers for the same mistake.
_SQL_STATES = {
    "CatalogException": ("TABLE_OR_VIEW_NOT_FOUND", "42P01"),
    "ParserException": ("PARSE_SYNTAX_ERROR", "42601"),
    "BinderException": ("UNRESOLVED_COLUMN", "42703"),
    "ConversionException": ("CAST_INVALID_INPUT", "22018"),
    "InvalidInputException": ("INVALID_PARAMETER_VALUE", "22023"),
    "ConstraintException": ("CONSTRAINT_VIOLATION", "23000"),
    "OutOfRangeException": ("ARITHMETIC_OVERFLOW", "22003"),
}
