"""Reading what people type: tuples from arguments, stdin or files; check lines; filters.

Every parse error becomes one `CliError` (exit 2) that names where the problem is:
``argument 2, column 14: ...``, ``stdin:3:14: ...`` or ``checks.txt:7:1: ...``. Lines that
are blank or start with ``//`` or ``#`` are skipped in stdin and files (a tuple never
starts with ``#``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rebac.cli import EXIT_USAGE, CliError
from rebac.datastore.filters import ANY_RELATION, AnyRelation, RelationshipFilter, SubjectFilter
from rebac.errors import InvalidRelationshipError
from rebac.revision import AtExactSnapshot, AtLeastAsFresh, Consistency, FullyConsistent, MinimizeLatency
from rebac.tuples import (
    ObjectRef,
    Relationship,
    SubjectRef,
    parse_object,
    parse_subject,
    validate_object_id,
    validate_object_type,
    validate_relation_name,
)

__all__ = [
    "CONSISTENCY_HELP",
    "WITH_HELP",
    "CheckLine",
    "SourcedLine",
    "parse_check_arguments",
    "parse_check_line",
    "parse_consistency",
    "parse_context",
    "parse_contextual",
    "parse_filter",
    "parse_relationship_at",
    "parse_subject_filter",
    "quoting",
    "read_lines",
    "read_relationships",
    "source_lines",
]


@dataclass(frozen=True, slots=True)
class SourcedLine:
    """One input line and where it came from (`where` is e.g. ``stdin:3`` or ``argument 2``)."""

    text: str
    where: str
    separator: str = ":"
    """Between `where` and the column: ``:`` for file lines, ``, column `` for arguments."""

    def at(self, column: int | None) -> str:
        """`where` plus the column, when known."""
        if column is None:
            return self.where
        return f"{self.where}{self.separator}{column}"


def _skippable(text: str) -> bool:
    stripped = text.strip()
    return not stripped or stripped.startswith(("//", "#"))


def source_lines(name: str, stream: Iterable[str]) -> Iterator[SourcedLine]:
    """The meaningful lines of a stream, numbered from 1, as `name:LINE`."""
    for number, raw in enumerate(stream, start=1):
        text = raw.rstrip("\r\n")
        if not _skippable(text):
            yield SourcedLine(text, f"{name}:{number}")


def read_lines(
    values: Sequence[str], *, file: str | None = None, stdin: TextIO | None = None
) -> list[SourcedLine]:
    """Arguments in order, where ``-`` stands for every line of stdin; then `file` (``-``: stdin).

    CliError (exit 2) if a file cannot be read or stdin is named twice.
    """
    stdin = stdin or sys.stdin
    lines: list[SourcedLine] = []
    used_stdin = False
    for index, value in enumerate(values, start=1):
        if value == "-":
            if used_stdin:
                raise CliError("`-` (stdin) may be given only once")
            used_stdin = True
            lines.extend(source_lines("stdin", stdin))
        else:
            lines.append(SourcedLine(value, f"argument {index}", ", column "))
    if file is not None:
        if file == "-":
            if used_stdin:
                raise CliError("`-` (stdin) may be given only once")
            lines.extend(source_lines("stdin", stdin))
        else:
            lines.extend(source_lines(file, _open_text(file)))
    return lines


def _open_text(path: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except UnicodeDecodeError as err:
        raise CliError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise CliError(f"{path}: cannot read: {err.strerror}") from None


def parse_relationship_at(line: SourcedLine) -> Relationship:
    """Parse one tuple; CliError ``WHERE:COLUMN: reason (in 'TEXT')`` if malformed."""
    try:
        return Relationship.parse(line.text)
    except InvalidRelationshipError as err:
        raise CliError(f"{line.at(err.column)}: {quoting(str(err), line.text)}", EXIT_USAGE) from None


def read_relationships(
    values: Sequence[str], *, file: str | None = None, stdin: TextIO | None = None
) -> list[Relationship]:
    """Tuples from arguments / stdin / a file (see `read_lines`); CliError if none or malformed."""
    lines = read_lines(values, file=file, stdin=stdin)
    if not lines:
        raise CliError("no relationships given: pass tuples, `-` for stdin, or --file FILE")
    return [parse_relationship_at(line) for line in lines]


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One check of `rebac check --file`: resource, permission, subject and where it was read."""

    resource: ObjectRef
    permission: str
    subject: SubjectRef
    where: str

    def __str__(self) -> str:
        return f"{self.resource}#{self.permission}@{self.subject}"


def parse_check_arguments(resource: str, permission: str, subject: str) -> CheckLine:
    """The three positionals of `rebac check`; CliError (exit 2) names the argument and column.

    Each argument is parsed on its own, so an error reads e.g.
    ``RESOURCE: expected `:` in object 'document42'``.
    """
    name, value = "RESOURCE", resource
    try:
        parsed_resource = parse_object(resource)
        name, value = "PERMISSION", permission
        parsed_permission = validate_relation_name(permission, field_name="permission")
        name, value = "SUBJECT", subject
        parsed_subject = parse_subject(subject)
    except InvalidRelationshipError as err:
        at = name if err.column is None else f"{name}, column {err.column}"
        raise CliError(f"{at}: {quoting(str(err), value)}", EXIT_USAGE) from None
    return CheckLine(parsed_resource, parsed_permission, parsed_subject, "arguments")


def quoting(message: str, text: str) -> str:
    """`message (in 'TEXT')`, unless `message` already quotes the (stripped) `text`."""
    text = text.strip()
    return message if repr(text) in message else f"{message} (in {text!r})"


def parse_check_line(line: SourcedLine) -> CheckLine:
    """``RESOURCE PERMISSION SUBJECT`` or ``resource#permission@subject``; CliError with the column."""
    text = line.text.strip()
    lead = len(line.text) - len(line.text.lstrip())
    parts = text.split()
    try:
        if len(parts) == 3:
            resource = parse_object(parts[0], offset=lead)
            permission_offset = line.text.index(parts[1], lead + len(parts[0]))
            try:
                permission = validate_relation_name(parts[1], field_name="permission")
            except InvalidRelationshipError as err:
                raise InvalidRelationshipError(str(err), column=permission_offset + 1) from None
            subject_offset = line.text.index(parts[2], permission_offset + len(parts[1]))
            subject = parse_subject(parts[2], offset=subject_offset)
            return CheckLine(resource, permission, subject, line.where)
        if len(parts) == 1:
            parsed = Relationship.parse(line.text)
            if parsed.caveat is None and parsed.expiration is None:
                return CheckLine(parsed.resource, parsed.relation, parsed.subject, line.where)
            column = text.find("[") + lead + 1
            raise CliError(f"{line.at(column)}: a check cannot carry a caveat or expiration")
    except InvalidRelationshipError as err:
        raise CliError(f"{line.at(err.column)}: {quoting(str(err), text)}", EXIT_USAGE) from None
    raise CliError(
        f"{line.at(lead + 1)}: expected `RESOURCE PERMISSION SUBJECT` or `resource#permission@subject`, "
        f"got {text!r}",
        EXIT_USAGE,
    )


def parse_filter(text: str | None, subject: str | None) -> RelationshipFilter:
    """A filter from ``type``, ``type:id``, ``type#relation`` or ``type:id#relation`` and a subject.

    `subject` is ``type``, ``type:id``, ``type:id#relation`` (only that subject relation),
    ``type:id#...`` (plain subjects only) or ``type:*``; without ``#`` any subject relation
    matches. CliError (exit 2) names the malformed part.
    """
    resource_type: str | None = None
    resource_ids: tuple[str, ...] | None = None
    relation: str | None = None
    if text:
        body, hash_, relation_text = text.partition("#")
        type_, colon, id_ = body.partition(":")
        try:
            resource_type = validate_object_type(type_, field_name="filter resource type")
            if colon:
                resource_ids = (validate_object_id(id_, field_name="filter resource id"),)
            if hash_:
                relation = validate_relation_name(relation_text, field_name="filter relation")
        except InvalidRelationshipError as err:
            raise CliError(f"filter {text!r}: {err}", EXIT_USAGE) from None
    subject_filter = parse_subject_filter(subject) if subject else None
    return RelationshipFilter(resource_type, resource_ids, relation, subject_filter)


def parse_subject_filter(text: str) -> SubjectFilter:
    """A subject filter from ``type``, ``type:id``, ``type:id#relation``, ``type:id#...``, ``type:*``."""
    body, hash_, relation_text = text.partition("#")
    type_, colon, id_ = body.partition(":")
    relation: str | AnyRelation | None = ANY_RELATION
    try:
        validate_object_type(type_, field_name="subject type")
        ids = (validate_object_id(id_, allow_wildcard=True, field_name="subject id"),) if colon else None
        if hash_:
            relation = None if relation_text == "..." else validate_relation_name(relation_text)
    except InvalidRelationshipError as err:
        raise CliError(f"subject filter {text!r}: {err}", EXIT_USAGE) from None
    return SubjectFilter(type_, ids, relation)


WITH_HELP = (
    "a contextual relationship that counts for this request only, in tuple syntax "
    "(repeatable; caveat suffixes allowed)"
)


def parse_contextual(values: Sequence[str] | None) -> tuple[Relationship, ...]:
    """The `--with` relationships, in order; CliError ``--with #N, column C: ...`` if malformed."""
    return tuple(
        parse_relationship_at(SourcedLine(value, f"--with #{index}", ", column "))
        for index, value in enumerate(values or (), start=1)
    )


CONSISTENCY_HELP = (
    "which revision to read: full (every committed write; the CLI default), min (a recent cached "
    "revision, fastest), token:TOKEN (at least as fresh as a write's token), exact:TOKEN (exactly there)"
)


def parse_consistency(text: str | None) -> Consistency:
    """``full`` (default), ``min``, ``token:TOKEN`` or ``exact:TOKEN``; CliError otherwise.

    The CLI defaults to ``full`` because each invocation is a fresh process: with ``min``
    a check right after `rebac rel create` could miss that write for a few seconds.
    """
    value = (text or "full").strip()
    kind, colon, token = value.partition(":")
    if not colon and kind in {"full", "fully_consistent"}:
        return FullyConsistent()
    if not colon and kind in {"min", "minimize_latency"}:
        return MinimizeLatency()
    if colon and token and kind in {"token", "at_least_as_fresh"}:
        return AtLeastAsFresh(token)
    if colon and token and kind in {"exact", "at_exact_snapshot"}:
        return AtExactSnapshot(token)
    raise CliError(f"--consistency {value!r}: expected full, min, token:TOKEN or exact:TOKEN", EXIT_USAGE)


def parse_context(text: str | None) -> dict[str, Any] | None:
    """The `--context` JSON object (caveat context), or None; CliError naming the column."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(f"--context: invalid JSON at column {err.colno}: {err.msg}", EXIT_USAGE) from None
    if not isinstance(value, dict):
        raise CliError('--context: expected a JSON object like \'{"ip": "10.0.0.1"}\'', EXIT_USAGE)
    return value
