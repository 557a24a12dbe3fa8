"""Relationship file formats of `rebac import` and `rebac export`.

``tuples``  one canonical tuple per line (``document:1#viewer@user:ann``); blank lines and
            lines starting with ``//`` or ``#`` are skipped.
``csv``     columns ``resource,relation,subject[,caveat[,expiration]]``; an optional header
            row starting with ``resource``. `caveat` is ``name`` or ``name:{json}``,
            `expiration` RFC 3339.
``jsonl``   one JSON object per line: ``{"resource": "document:1", "relation": "viewer",
            "subject": "user:ann"}`` with optional ``"caveat": {"name": ..., "context": {...}}``
            and ``"expiration"``; or ``{"relationship": "document:1#viewer@user:ann"}``.
``yaml``    a zed validation file; its ``relationships`` block (checked against its schema).

`read_records` streams `ImportRecord`s and raises CliError (exit 2) at the first malformed
record, naming ``file:line`` and the field or column. `format_relationship` is the inverse
for export, so an export re-imports to the same relationships.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rebac.cli import EXIT_USAGE, CliError
from rebac.errors import InvalidRelationshipError, InvalidRequestError
from rebac.tuples import (
    Relationship,
    RelationshipCaveat,
    format_expiration,
    parse_object,
    parse_subject,
    validate_relation_name,
)
from rebac.validationfile import load_validation_file, parse_validation_text

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "ImportRecord",
    "detect_format",
    "format_relationship",
    "read_records",
]

Format = Literal["tuples", "csv", "jsonl", "yaml"]
IMPORT_FORMATS: tuple[str, ...] = ("auto", "tuples", "csv", "jsonl", "yaml")
EXPORT_FORMATS: tuple[str, ...] = ("tuples", "csv", "jsonl")
_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".yaml": "yaml",
    ".yml": "yaml",
}
_CSV_COLUMNS = ("resource", "relation", "subject", "caveat", "expiration")


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """One relationship to import and where it was read (``file:line``)."""

    relationship: Relationship
    where: str


def detect_format(path: str, requested: str = "auto") -> Format:
    """The format to read `path` in: `requested` unless ``auto``, else by extension (tuples)."""
    if requested != "auto":
        if requested not in IMPORT_FORMATS:
            raise CliError(f"unknown format {requested!r}: expected one of {', '.join(IMPORT_FORMATS)}")
        return requested  # type: ignore[return-value]
    return _EXTENSIONS.get(Path(path).suffix.lower(), "tuples")


def read_records(name: str, lines: Iterable[str], fmt: Format) -> Iterator[ImportRecord]:
    """The relationships of `lines` (the content of `name`) in `fmt`; CliError at the first bad one."""
    if fmt == "tuples":
        yield from _tuple_records(name, lines)
    elif fmt == "csv":
        yield from _csv_records(name, lines)
    elif fmt == "jsonl":
        yield from _jsonl_records(name, lines)
    else:
        yield from _yaml_records(name, lines)


def _tuple_records(name: str, lines: Iterable[str]) -> Iterator[ImportRecord]:
    for number, raw in enumerate(lines, start=1):
        text = raw.rstrip("\r\n")
        stripped = text.strip()
        if not stripped or stripped.startswith(("//", "#")):
            continue
        try:
            yield ImportRecord(Relationship.parse(text), f"{name}:{number}")
        except InvalidRelationshipError as err:
            where = f"{name}:{number}" + (f":{err.column}" if err.column else "")
            raise CliError(f"{where}: {err} (in {stripped!r})", EXIT_USAGE) from None


def _bad(where: str, field: str, problem: str) -> CliError:
    return CliError(f"{where}: {field}: {problem}", EXIT_USAGE)


def _from_fields(where: str, fields: dict[str, Any]) -> Relationship:
    """Build a relationship from named text fields, naming the field that is wrong."""
    values: dict[str, str] = {}
    for key in ("resource", "relation", "subject"):
        value = fields.get(key)
        if not isinstance(value, str) or not value:
            raise _bad(where, key, "missing (expected resource, relation and subject)")
        values[key] = value.strip()
    try:
        resource = parse_object(values["resource"])
    except InvalidRelationshipError as err:
        raise _bad(where, "resource", str(err)) from None
    try:
        relation = validate_relation_name(values["relation"])
    except InvalidRelationshipError as err:
        raise _bad(where, "relation", str(err)) from None
    try:
        subject = parse_subject(values["subject"])
    except InvalidRelationshipError as err:
        raise _bad(where, "subject", str(err)) from None
    suffix = _caveat_suffix(where, fields.get("caveat")) + _expiration_suffix(where, fields.get("expiration"))
    if not suffix:
        return Relationship(resource, relation, subject)
    text = f"{resource}#{relation}@{subject}{suffix}"
    try:
        return Relationship.parse(text)
    except InvalidRelationshipError as err:
        field = "expiration" if "expiration" in str(err) else "caveat"
        raise _bad(where, field, str(err)) from None


def _caveat_suffix(where: str, caveat: Any) -> str:
    if caveat in (None, ""):
        return ""
    if isinstance(caveat, str):
        return f"[{caveat.strip()}]"
    if isinstance(caveat, dict) and isinstance(caveat.get("name"), str):
        context = caveat.get("context") or {}
        if not isinstance(context, dict):
            raise _bad(where, "caveat", "context must be a JSON object")
        return str(RelationshipCaveat.of(caveat["name"], context))
    raise _bad(where, "caveat", 'expected "name", "name:{json}" or {"name": ..., "context": {...}}')


def _expiration_suffix(where: str, expiration: Any) -> str:
    if expiration in (None, ""):
        return ""
    if not isinstance(expiration, str):
        raise _bad(where, "expiration", "expected an RFC 3339 string like 2030-01-01T00:00:00Z")
    return f"[expiration:{expiration.strip()}]"


def _csv_records(name: str, lines: Iterable[str]) -> Iterator[ImportRecord]:
    # csv.reader needs the physical lines with their ends to number quoted multi-line fields.
    reader = csv.reader(line if line.endswith("\n") else line + "\n" for line in lines)
    first = True
    for row in reader:
        where = f"{name}:{reader.line_num}"
        if first and row and row[0].strip().lower() == "resource":
            first = False
            continue
        first = False
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith(("//", "#")):
            continue
        if not 3 <= len(row) <= len(_CSV_COLUMNS):
            raise CliError(
                f"{where}: expected 3 to 5 columns (resource,relation,subject[,caveat[,expiration]]), "
                f"got {len(row)}",
                EXIT_USAGE,
            )
        yield ImportRecord(_from_fields(where, dict(zip(_CSV_COLUMNS, row, strict=False))), where)


def _jsonl_records(name: str, lines: Iterable[str]) -> Iterator[ImportRecord]:
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        where = f"{name}:{number}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise CliError(f"{where}:{err.colno}: invalid JSON: {err.msg}", EXIT_USAGE) from None
        if not isinstance(value, dict):
            raise CliError(f"{where}: expected a JSON object per line", EXIT_USAGE)
        if "relationship" in value:
            tuple_text = value["relationship"]
            if not isinstance(tuple_text, str):
                raise _bad(where, "relationship", "expected a tuple string")
            try:
                yield ImportRecord(Relationship.parse(tuple_text), where)
            except InvalidRelationshipError as err:
                column = f" column {err.column}" if err.column else ""
                raise _bad(where, f"relationship{column}", str(err)) from None
            continue
        yield ImportRecord(_from_fields(where, value), where)


def _yaml_records(name: str, lines: Iterable[str]) -> Iterator[ImportRecord]:
    try:
        if name == "stdin":
            loaded = parse_validation_text("".join(_with_newlines(lines)), path=name)
        else:
            loaded = load_validation_file(name)
    except InvalidRequestError as err:
        first, _, rest = str(err).partition("\n")
        more = f" (and {rest.count(chr(10)) + 1} more problems)" if rest else ""
        raise CliError(first + more, EXIT_USAGE) from None
    for item in loaded.relationships:
        yield ImportRecord(item.relationship, f"{name}:{item.line}")


def _with_newlines(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        yield line if line.endswith("\n") else line + "\n"


def format_relationship(relationship: Relationship, fmt: str) -> str:
    """One export line (without the newline) in `fmt`: ``tuples``, ``csv`` or ``jsonl``."""
    if fmt == "tuples":
        return str(relationship)
    caveat = relationship.caveat
    expiration = format_expiration(relationship.expiration) if relationship.expiration else None
    if fmt == "csv":
        caveat_text = ""
        if caveat is not None:
            caveat_text = str(caveat)[1:-1]  # `[name:{json}]` without the brackets
        row = [str(relationship.resource), relationship.relation, str(relationship.subject)]
        if caveat_text or expiration:
            row.append(caveat_text)
        if expiration:
            row.append(expiration)
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(row)
        return out.getvalue()
    document: dict[str, Any] = {
        "resource": str(relationship.resource),
        "relation": relationship.relation,
        "subject": str(relationship.subject),
    }
    if caveat is not None:
        document["caveat"] = {"name": caveat.name, "context": caveat.context}
    if expiration:
        document["expiration"] = expiration
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
