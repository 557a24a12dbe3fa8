"""SpiceDB's caveat parameter types and the conversion of JSON context values into them.

A parameter type is written in the schema as ``int``, ``uint``, ``bool``, ``string``,
``double``, ``bytes``, ``duration``, ``timestamp``, ``list<T>``, ``map<T>`` (string keys),
``ipaddress`` or ``any``. `parse_type` turns that text into a `CelType`; `convert_value`
turns a JSON-like context value (from a relationship's stored context or a request's) into
the value the evaluator binds, the way SpiceDB does:

- ``int``/``uint``/``double`` accept JSON numbers and numeric strings (64-bit integers travel
  as strings in JSON); an int must be integral and within 64 bits, a uint non-negative.
  Like SpiceDB, ``uint`` is an ``int`` inside expressions.
- ``bytes`` is base64 text; ``duration`` is Go duration text (``"1h30m"``, ``"300ms"``);
  ``timestamp`` is RFC 3339 text; ``ipaddress`` is an IPv4/IPv6 address text.
- ``any`` takes the value as it is.

A wrong value raises `CaveatEvaluationError` naming the parameter and what was expected.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rebac.errors import CaveatEvaluationError

__all__ = [
    "ANY",
    "BOOL",
    "BYTES",
    "DOUBLE",
    "DURATION",
    "INT",
    "IPADDRESS",
    "NULL",
    "STRING",
    "TIMESTAMP",
    "TYPE",
    "CelType",
    "convert_value",
    "list_of",
    "map_of",
    "parse_type",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class CelType:
    """A type as the caveat checker sees it: a kind plus element types for list and map.

    `kind` is one of ``int uint double bool string bytes duration timestamp list map
    ipaddress dyn null type``; `element` is set for ``list`` and ``map`` (map keys are strings
    for parameters, `key` records other key types of map literals).
    """

    kind: str
    element: CelType | None = None
    key: CelType | None = None

    @property
    def is_dyn(self) -> bool:
        """True for ``dyn`` (SpiceDB's ``any``), which matches every type."""
        return self.kind == "dyn"

    def __str__(self) -> str:
        if self.kind == "list":
            return f"list<{self.element}>"
        if self.kind == "map":
            return f"map<{self.key}, {self.element}>"
        return self.kind


ANY = CelType("dyn")
BOOL = CelType("bool")
BYTES = CelType("bytes")
DOUBLE = CelType("double")
DURATION = CelType("duration")
INT = CelType("int")
IPADDRESS = CelType("ipaddress")
NULL = CelType("null")
STRING = CelType("string")
TIMESTAMP = CelType("timestamp")
TYPE = CelType("type")


def list_of(element: CelType) -> CelType:
    """``list<element>``."""
    return CelType("list", element)


def map_of(element: CelType, key: CelType = STRING) -> CelType:
    """``map<key, element>`` (parameters always have string keys)."""
    return CelType("map", element, key)


# uint is an int inside expressions, as in SpiceDB; the conversion still checks the sign.
_SCALARS: Mapping[str, CelType] = {
    "any": ANY,
    "bool": BOOL,
    "bytes": BYTES,
    "double": DOUBLE,
    "duration": DURATION,
    "int": INT,
    "ipaddress": IPADDRESS,
    "string": STRING,
    "timestamp": TIMESTAMP,
    "uint": INT,
}


@dataclass(frozen=True, slots=True)
class ParamType:
    """A declared parameter type: the expression-level `cel` type plus the schema spelling."""

    text: str
    cel: CelType


def parse_type(text: str) -> ParamType:
    """Parse a schema type (``int``, ``list<string>``, ``map<list<int>>``...).

    Raises ValueError with a message naming the unknown type; the compiler turns it into a
    SchemaCompileError at the parameter's position.
    """
    compact = "".join(text.split())
    return ParamType(compact, _parse_compact(compact, text))


def _parse_compact(compact: str, original: str) -> CelType:
    if compact in _SCALARS:
        return _SCALARS[compact]
    for generic, build in (("list", list_of), ("map", map_of)):
        if compact.startswith(f"{generic}<") and compact.endswith(">"):
            return build(_parse_compact(compact[len(generic) + 1 : -1], original))
    raise ValueError(
        f"unknown caveat parameter type `{original}` (expected int, uint, bool, string, double, "
        "bytes, duration, timestamp, list<T>, map<T>, ipaddress or any)"
    )


def convert_value(param: str, declared: ParamType, value: Any) -> Any:
    """Convert one JSON-like context value to the evaluator's value for `declared`.

    Raises CaveatEvaluationError naming `param` when the value does not fit the type.
    """
    try:
        return _convert(declared.text, value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CaveatEvaluationError(
            f"context parameter `{param}` of type {declared.text}: {exc}"
        ) from None


def _convert(text: str, value: Any) -> Any:  # noqa: C901, PLR0911, PLR0912 - one branch per type
    if text.startswith("list<"):
        if not isinstance(value, list | tuple):
            raise TypeError(f"a list is required, found {_describe(value)}")
        return [_convert(text[5:-1], item) for item in value]
    if text.startswith("map<"):
        if not isinstance(value, Mapping):
            raise TypeError(f"a map is required, found {_describe(value)}")
        if not all(isinstance(k, str) for k in value):
            raise TypeError("map keys must be strings")
        return {k: _convert(text[4:-1], v) for k, v in value.items()}
    match text:
        case "any":
            return value
        case "bool":
            if not isinstance(value, bool):
                raise TypeError(f"a bool is required, found {_describe(value)}")
            return value
        case "string":
            if not isinstance(value, str):
                raise TypeError(f"a string is required, found {_describe(value)}")
            return value
        case "int" | "uint":
            return _integer(value, unsigned=text == "uint")
        case "double":
            return _double(value)
        case "bytes":
            return _bytes(value)
        case "duration":
            return value if isinstance(value, timedelta) else parse_duration(_text(value, "duration"))
        case "timestamp":
            return value if isinstance(value, datetime) else parse_timestamp(_text(value, "timestamp"))
        case "ipaddress":
            return str(ipaddress.ip_address(_text(value, "ipaddress")))
    raise TypeError(f"unsupported caveat type `{text}`")  # pragma: no cover - parse_type guards


def _describe(value: Any) -> str:
    return f"{type(value).__name__} `{value!r}`"


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a {what} string is required, found {_describe(value)}")
    return value


def _integer(value: Any, *, unsigned: bool) -> int:
    number: int
    if isinstance(value, bool):
        raise TypeError(f"an integer is required, found {_describe(value)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"an integer is required, found {value!r}")
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip(), 10)
        except ValueError:
            raise ValueError(f"an integer is required, found invalid string `{value}`") from None
    else:
        raise TypeError(f"an integer is required, found {_describe(value)}")
    low, high = (0, UINT64_MAX) if unsigned else (INT64_MIN, INT64_MAX)
    if not low <= number <= high:
        raise ValueError(f"{number} is out of range for a {'uint' if unsigned else 'int'}")
    # Expressions see uint as int (SpiceDB); keep values the evaluator can represent.
    if number > INT64_MAX:
        raise ValueError(f"{number} is too large for an expression int")
    return number


def _double(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(f"a double is required, found {_describe(value)}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            raise ValueError(f"a double is required, found invalid string `{value}`") from None
        if math.isnan(result) and value.strip().lower() != "nan":  # pragma: no cover - float() guards
            raise ValueError(f"a double is required, found `{value}`")
        return result
    raise TypeError(f"a double is required, found {_describe(value)}")


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(_text(value, "base64"), validate=True)
    except binascii.Error:
        raise ValueError(f"bytes require base64 text, found `{value}`") from None


_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS: Mapping[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> timedelta:
    """Parse Go duration text (``"1h30m"``, ``"-1.5h"``, ``"300ms"``, ``"0"``).

    Raises ValueError for anything else (a unit is required except for ``"0"``).
    """
    body = text.strip()
    sign = 1
    if body[:1] in "+-" and body:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return timedelta(0)
    position, total = 0, 0.0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if match is None:
            raise ValueError(f"invalid duration `{text}` (expected e.g. 1h30m, 300ms)")
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not body:
        raise ValueError(f"invalid duration `{text}` (expected e.g. 1h30m, 300ms)")
    return timedelta(seconds=sign * total)


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (a zone is required; fractions up to nanoseconds).

    Raises ValueError for other text. Sub-microsecond digits are truncated.
    """
    if not _RFC3339.match(text):
        raise ValueError(f"invalid RFC 3339 timestamp `{text}` (e.g. 2024-01-02T03:04:05Z)")
    normalized = text.upper().replace("Z", "+00:00")
    if "." in normalized:
        head, rest = normalized.split(".", 1)
        digits = re.match(r"\d+", rest)
        assert digits is not None  # noqa: S101 - guaranteed by _RFC3339
        normalized = f"{head}.{digits.group(0)[:6].ljust(6, '0')}{rest[digits.end():]}"
    parsed = datetime.fromisoformat(normalized)
    return parsed.astimezone(UTC)
