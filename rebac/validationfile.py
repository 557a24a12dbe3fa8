"""Loading zed validation files: schema, relationships, assertions and expected relations.

The format is SpiceDB's / zed's (the playground's export)::

    schema: |-                      # or `schemaFile: ./schema.zed` (relative to this file)
      definition user {}
      definition document { relation viewer: user  permission view = viewer }
    relationships: |-               # one per line; blank lines and `// comments` are skipped
      document:1#viewer@user:tom
      document:1#viewer@user:ann[only_on_tuesday:{"day":"tue"}]
    assertions:
      assertTrue:  ["document:1#view@user:tom"]
      assertFalse: ["document:1#view@user:bob"]
      assertCaveated: ['document:1#view@user:ann with {"day": "wed"}']   # ` with {json}`: context
    validation:                     # expected relations: every subject of resource#permission
      document:1#view:
        - "[user:tom] is <document:1#viewer>"
        - "[user:*  - {user:banned}] is <document:1#viewer>"
        - "[user:ann[...]] is <document:1#viewer>"          # `[...]`: caveated

A file that does not look like YAML (no top-level ``schema:``, ``schemaFile:`` or
``relationships:`` key) is read as a bare schema, as zed does for ``.zed`` files.

`load_validation_file(path)` parses and checks everything that needs no datastore: the
YAML, the schema (compiled), each relationship (syntax, repeats, and the schema's type
rules), assertions and expected-relation strings. Every problem raises
`InvalidRequestError` whose message has one line per problem, each starting
``file:line:column:`` (schema errors point at the file line inside the YAML block and also
name the schema's own line:column).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from rebac.errors import InvalidRequestError, RebacError, SchemaError
from rebac.schema.definitions import CompiledSchema
from rebac.tuples import (
    ObjectRef,
    Relationship,
    SubjectRef,
    parse_object,
    parse_subject,
    validate_relation_name,
)

__all__ = [
    "Assertion",
    "AssertionKind",
    "ExpectedRelations",
    "ExpectedSubject",
    "LoadedRelationship",
    "ValidationFile",
    "load_validation_file",
    "parse_validation_text",
]

_YAML_KEY_RE = re.compile(r"^\s*(schema|schemaFile|relationships)\s*:", re.MULTILINE)
_LEGACY_KEYS = {
    "namespace_configs": "definitions must be specified in `schema`",
    "relation_tuples": "relationships must be specified in `relationships`",
    "validation_tuples": "relationships must be specified in `relationships`",
}
_NULL_TAG = "tag:yaml.org,2002:null"
# `[subject]` / `[subject[...]]` / `[user:* - {user:a, user:b[...]}]`, then `<res#rel>` paths.
_BRACKETED_SUBJECT_RE = re.compile(r"\[(?P<inner>.*)\]")
_SUBJECT_BODY_RE = re.compile(
    r"^(?P<subject>[^\]\s\[]+)(?P<caveat>\[\.\.\.\])?(\s+-\s+\{(?P<exceptions>[^}]+)\})?$"
)
_PATH_RE = re.compile(r"<(?P<onr>[^>]+)>")


class AssertionKind(Enum):
    """What an assertion expects; the value is the text used in results (``"true"``...)."""

    TRUE = "true"
    FALSE = "false"
    CAVEATED = "caveated"


_ASSERTION_KEYS = {
    "assertTrue": AssertionKind.TRUE,
    "assertFalse": AssertionKind.FALSE,
    "assertCaveated": AssertionKind.CAVEATED,
}


@dataclass(frozen=True, slots=True)
class LoadedRelationship:
    """A relationship of the file and the 1-based file line it was written on."""

    relationship: Relationship
    line: int


@dataclass(frozen=True, slots=True)
class Assertion:
    """One assertion: `text` as written (``rel`` or ``rel with {json}``), parsed.

    `context_json` is the check-time caveat context as canonical JSON, or None.
    """

    kind: AssertionKind
    text: str
    relationship: Relationship
    line: int
    column: int
    context_json: str | None = None

    @property
    def context(self) -> dict[str, Any] | None:
        """The check-time caveat context as a fresh dict, or None."""
        if self.context_json is None:
            return None
        value: dict[str, Any] = json.loads(self.context_json)
        return value


@dataclass(frozen=True, slots=True)
class ExpectedSubject:
    """One expected subject line (``[user:tom] is <document:1#viewer>``).

    `subject` is the subject (a subject set keeps its relation); `caveated` marks
    ``[...]``; `exceptions` lists a wildcard's excluded subjects as (subject, caveated);
    `paths` are the ``<resource#relation>`` strings after ``is``, as written.
    """

    text: str
    subject: SubjectRef
    line: int
    caveated: bool = False
    exceptions: tuple[tuple[SubjectRef, bool], ...] = ()
    paths: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Canonical comparison text: ``user:tom``, ``user:tom[...]``, ``user:* - {user:a}``."""
        return subject_key(self.subject, caveated=self.caveated, exceptions=self.exceptions)


def subject_key(
    subject: SubjectRef,
    *,
    caveated: bool = False,
    exceptions: tuple[tuple[SubjectRef, bool], ...] | list[tuple[SubjectRef, bool]] = (),
) -> str:
    """The canonical text of a found or expected subject (exceptions sorted)."""
    text = str(subject) + ("[...]" if caveated else "")
    if exceptions:
        inner = ", ".join(sorted(str(s) + ("[...]" if c else "") for s, c in exceptions))
        text += f" - {{{inner}}}"
    return text


@dataclass(frozen=True, slots=True)
class ExpectedRelations:
    """The expected subjects of `resource#permission` (a ``validation:`` entry)."""

    resource: ObjectRef
    permission: str
    subjects: tuple[ExpectedSubject, ...]
    line: int


@dataclass(frozen=True)
class ValidationFile:
    """A loaded validation file: everything needed to run it, already checked.

    `schema_source` names where the schema text came from (this file or the schemaFile).
    """

    path: str
    schema_text: str
    schema: CompiledSchema
    schema_source: str
    relationships: tuple[LoadedRelationship, ...] = ()
    assertions: tuple[Assertion, ...] = ()
    expected: tuple[ExpectedRelations, ...] = ()
    raw_lines: tuple[str, ...] = field(default=(), repr=False)


class _Problems:
    """Collects `file:line:column: reason` lines; raises them together."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: list[str] = []

    def add(self, line: int, column: int | None, reason: str) -> None:
        where = f"{self.path}:{line}" + (f":{column}" if column else "")
        self.lines.append(f"{where}: {reason}")

    def raise_if_any(self) -> None:
        if self.lines:
            raise InvalidRequestError("\n".join(self.lines), field="validation_file")


def load_validation_file(path: str | Path) -> ValidationFile:
    """Read and check the validation file at `path`; InvalidRequestError names every problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidRequestError(f"{name}: file not found", field="validation_file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidRequestError(f"{name}: cannot read: {reason}", field="validation_file") from None
    return parse_validation_text(text, path=name, base_dir=Path(path).parent)


def parse_validation_text(
    text: str, *, path: str = "<validation>", base_dir: Path | None = None
) -> ValidationFile:
    """Parse validation-file `text` (see the module docstring); `base_dir` resolves schemaFile."""
    raw_lines = tuple(text.splitlines())
    problems = _Problems(path)
    if not _YAML_KEY_RE.search(text):
        compiled = _compile(text, source=path, problems=problems, mapper=None)
        problems.raise_if_any()
        assert compiled is not None  # noqa: S101 - problems were raised otherwise
        return ValidationFile(path, compiled.text, compiled.schema, path, raw_lines=raw_lines)
    root = _compose(text, problems)
    if not isinstance(root, yaml.MappingNode):
        line = root.start_mark.line + 1 if root is not None else 1
        problems.add(line, None, "expected a YAML mapping with `schema`, `relationships`, ...")
        problems.raise_if_any()
    assert isinstance(root, yaml.MappingNode)  # noqa: S101 - raised above otherwise
    sections = {str(k.value): v for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    for key, reason in _LEGACY_KEYS.items():
        if key in sections and not _is_null(sections[key]):
            problems.add(sections[key].start_mark.line + 1, None, reason)
    problems.raise_if_any()

    schema_text, schema_source, mapper = _schema_text(sections, path, raw_lines, base_dir, problems)
    problems.raise_if_any()
    compiled = _compile(schema_text, source=schema_source, problems=problems, mapper=mapper)
    problems.raise_if_any()
    assert compiled is not None  # noqa: S101 - problems were raised otherwise
    schema = compiled.schema
    relationships = _relationships(sections.get("relationships"), raw_lines, schema, problems)
    assertions = _assertions(sections.get("assertions"), problems)
    expected = _expected(sections.get("validation"), problems)
    problems.raise_if_any()
    return ValidationFile(
        path=path,
        schema_text=compiled.text,
        schema=schema,
        schema_source=schema_source,
        relationships=relationships,
        assertions=assertions,
        expected=expected,
        raw_lines=raw_lines,
    )


def _compose(text: str, problems: _Problems) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, None)
        problems.add(line, column, f"invalid YAML: {exc.problem or exc.context}")
    except yaml.YAMLError as exc:
        problems.add(1, None, f"invalid YAML: {exc}")
    problems.raise_if_any()
    return None


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _scalar(node: yaml.Node | None) -> str | None:
    if node is None or _is_null(node) or not isinstance(node, yaml.ScalarNode):
        return None
    return str(node.value)


class _LineMapper:
    """Maps lines of a YAML string value back to (file line, column offset) in the file."""

    def __init__(self, raw_lines: tuple[str, ...], node: yaml.Node, content: str) -> None:
        self.positions: list[tuple[int, int]] = []
        cursor = node.start_mark.line + (1 if getattr(node, "style", None) in ("|", ">") else 0)
        end = max(node.end_mark.line, cursor)
        for content_line in content.split("\n"):
            stripped = content_line.strip()
            found = None
            if stripped:
                for k in range(cursor, min(end + 1, len(raw_lines))):
                    index = raw_lines[k].find(stripped)
                    if index >= 0:
                        found = (k, index - (len(content_line) - len(content_line.lstrip())))
                        break
            if found is None:
                self.positions.append((min(cursor, end) + 1, 0))
            else:
                self.positions.append((found[0] + 1, found[1]))
                cursor = found[0] + 1

    def locate(self, line: int, column: int) -> tuple[int, int]:
        """The file position of 1-based (`line`, `column`) of the value."""
        if 1 <= line <= len(self.positions):
            file_line, offset = self.positions[line - 1]
            return file_line, column + offset
        return (self.positions[-1][0] if self.positions else 1), column


def _schema_text(
    sections: dict[str, yaml.Node],
    path: str,
    raw_lines: tuple[str, ...],
    base_dir: Path | None,
    problems: _Problems,
) -> tuple[str, str, _LineMapper | None]:
    schema_node = sections.get("schema")
    file_node = sections.get("schemaFile")
    inline = _scalar(schema_node)
    schema_file = _scalar(file_node)
    if inline and schema_file:
        assert file_node is not None  # noqa: S101 - schema_file is set
        problems.add(
            file_node.start_mark.line + 1, None, "only one of `schema` or `schemaFile` can be specified"
        )
        return "", path, None
    if schema_file:
        assert file_node is not None  # noqa: S101 - schema_file is set
        schema_path = (base_dir or Path()) / schema_file
        try:
            return schema_path.read_text(encoding="utf-8"), str(schema_path), None
        except (OSError, UnicodeDecodeError) as exc:
            reason = "file not found" if isinstance(exc, FileNotFoundError) else str(exc)
            problems.add(
                file_node.start_mark.line + 1,
                file_node.start_mark.column + 1,
                f"cannot read schemaFile {schema_file!r} ({schema_path}): {reason}",
            )
            return "", path, None
    if inline:
        assert schema_node is not None  # noqa: S101 - inline is set
        return inline, path, _LineMapper(raw_lines, schema_node, inline)
    problems.add(1, None, "either `schema` or `schemaFile` must be present")
    return "", path, None


@dataclass(frozen=True, slots=True)
class _Compiled:
    schema: CompiledSchema
    text: str
    """The text to store: the schema as written, or, if it imports files, the flattened whole."""


def _compile(text: str, *, source: str, problems: _Problems, mapper: _LineMapper | None) -> _Compiled | None:
    """Compile `text`; `import "x.zed"` resolves relative to `source`'s directory (as zed does)."""
    from rebac.schema.compiler import compile_schema  # noqa: PLC0415 - keeps this import light
    from rebac.schema.generator import generate_schema  # noqa: PLC0415

    imported: list[str] = []
    # The compiler hands over paths relative to the root schema's directory: the validation
    # file's own directory for an inline schema, the schemaFile's directory otherwise.
    root_dir = Path(source).parent

    def load_import(path: str) -> str:
        imported.append(path)
        return (root_dir / path).read_text(encoding="utf-8")

    try:
        compiled = compile_schema(text, source=source, import_loader=load_import)
    except SchemaError as err:
        position = err.position
        where = err.source if err.source not in (source, "schema") else source
        if position is None:
            problems.lines.append(f"{where}: schema error: {err.message}")
        elif mapper is None or where != source:
            problems.lines.append(f"{where}:{position}: schema error: {err.message}")
        else:
            line, column = mapper.locate(position.line, position.column)
            problems.add(line, column, f"schema error (schema {position}): {err.message}")
        return None
    return _Compiled(compiled, generate_schema(compiled) if imported else text)


def _string_items(node: yaml.Node | None, what: str, problems: _Problems) -> list[yaml.ScalarNode]:
    """The scalar items of a YAML sequence (null → none); other shapes are problems."""
    if node is None or _is_null(node):
        return []
    if not isinstance(node, yaml.SequenceNode):
        problems.add(node.start_mark.line + 1, None, f"{what} must be a list of strings")
        return []
    items: list[yaml.ScalarNode] = []
    for item in node.value:
        if isinstance(item, yaml.ScalarNode) and not _is_null(item):
            items.append(item)
        else:
            problems.add(item.start_mark.line + 1, item.start_mark.column + 1, f"{what}: expected a string")
    return items


def _relationships(
    node: yaml.Node | None,
    raw_lines: tuple[str, ...],
    schema: CompiledSchema,
    problems: _Problems,
) -> tuple[LoadedRelationship, ...]:
    if node is None or _is_null(node):
        return ()
    lines: list[tuple[str, int]] = []
    if isinstance(node, yaml.ScalarNode):
        content = str(node.value)
        mapper = _LineMapper(raw_lines, node, content)
        lines = [(text, mapper.locate(i + 1, 1)[0]) for i, text in enumerate(content.split("\n"))]
    else:
        items = _string_items(node, "relationships", problems)
        lines = [(str(item.value), item.start_mark.line + 1) for item in items]
    from rebac.schema.typesystem import TypeSystem  # noqa: PLC0415 - keeps this import light

    types = TypeSystem(schema)
    seen: dict[tuple[str, ...], int] = {}
    loaded: list[LoadedRelationship] = []
    for text, line in lines:
        stripped = text.strip()
        if not stripped or stripped.startswith("//"):
            continue
        try:
            relationship = Relationship.parse(stripped)
        except InvalidRequestError as err:
            column = getattr(err, "column", None)
            where = f" (column {column})" if column else ""
            problems.add(line, None, f"invalid relationship `{stripped}`: {err}{where}")
            continue
        if relationship.key in seen:
            first = seen[relationship.key]
            problems.add(line, None, f"repeated relationship `{stripped}` (first on line {first})")
            continue
        seen[relationship.key] = line
        try:
            types.validate_relationship(relationship)
        except RebacError as err:
            problems.add(line, None, f"relationship `{stripped}` is not allowed by the schema: {err}")
            continue
        loaded.append(LoadedRelationship(relationship, line))
    return tuple(loaded)


def _assertions(node: yaml.Node | None, problems: _Problems) -> tuple[Assertion, ...]:
    if node is None or _is_null(node):
        return ()
    if not isinstance(node, yaml.MappingNode):
        problems.add(
            node.start_mark.line + 1,
            None,
            "`assertions` must map assertTrue/assertFalse/assertCaveated to lists",
        )
        return ()
    found: list[Assertion] = []
    for key_node, value_node in node.value:
        key = str(key_node.value)
        kind = _ASSERTION_KEYS.get(key)
        if kind is None:
            problems.add(
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
                f"unknown assertion kind `{key}`: expected assertTrue, assertFalse or assertCaveated",
            )
            continue
        for item in _string_items(value_node, key, problems):
            parsed = _assertion(kind, item, problems)
            if parsed is not None:
                found.append(parsed)
    return tuple(found)


def _assertion(kind: AssertionKind, item: yaml.ScalarNode, problems: _Problems) -> Assertion | None:
    text = str(item.value).strip()
    line, column = item.start_mark.line + 1, item.start_mark.column + 1
    rel_text, sep, context_text = text.partition(" with ")
    try:
        relationship = Relationship.parse(rel_text.strip())
    except InvalidRequestError as err:
        problems.add(line, column, f"invalid relationship in assertion `{text}`: {err}")
        return None
    context_json: str | None = None
    if sep:
        try:
            context = json.loads(context_text)
        except json.JSONDecodeError as exc:
            problems.add(line, column, f"invalid caveat context in assertion `{text}`: {exc.msg}")
            return None
        if not isinstance(context, dict):
            problems.add(line, column, f"caveat context in assertion `{text}` must be a JSON object")
            return None
        context_json = json.dumps(context, sort_keys=True, separators=(",", ":"))
    return Assertion(kind, text, relationship, line, column, context_json)


def _expected(node: yaml.Node | None, problems: _Problems) -> tuple[ExpectedRelations, ...]:
    if node is None or _is_null(node):
        return ()
    if not isinstance(node, yaml.MappingNode):
        problems.add(node.start_mark.line + 1, None, "`validation` must map `resource#permission` to lists")
        return ()
    found: list[ExpectedRelations] = []
    for key_node, value_node in node.value:
        line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
        key = str(key_node.value).strip()
        object_text, hash_, permission = key.rpartition("#")
        if not hash_:
            problems.add(
                line, column, f"invalid expected-relations key `{key}`: expected `type:id#permission`"
            )
            continue
        try:
            resource = parse_object(object_text)
            validate_relation_name(permission)
        except InvalidRequestError as err:
            problems.add(line, column, f"invalid expected-relations key `{key}`: {err}")
            continue
        subjects = [
            subject
            for item in _string_items(value_node, key, problems)
            if (subject := _expected_subject(item, problems)) is not None
        ]
        found.append(ExpectedRelations(resource, permission, tuple(subjects), line))
    return tuple(found)


def _expected_subject(item: yaml.ScalarNode, problems: _Problems) -> ExpectedSubject | None:
    text = str(item.value).strip()
    line, column = item.start_mark.line + 1, item.start_mark.column + 1
    bracketed = _BRACKETED_SUBJECT_RE.search(text)
    if not bracketed:
        expected_form = "`[type:id] is <type:id#relation>`"
        problems.add(line, column, f"no expected subject in `{text}`: expected {expected_form}")
        return None
    inner = bracketed.group("inner").strip()
    match = _SUBJECT_BODY_RE.match(inner)
    if not match:
        problems.add(line, column, f"invalid subject `[{inner}]` in `{text}`")
        return None
    try:
        subject = parse_subject(match.group("subject"))
        exceptions: list[tuple[SubjectRef, bool]] = []
        for part in (match.group("exceptions") or "").split(","):
            part_text = part.strip()
            if not part_text:
                continue
            caveated = part_text.endswith("[...]")
            exceptions.append((parse_subject(part_text.removesuffix("[...]").strip()), caveated))
        paths = tuple(m.group("onr").strip() for m in _PATH_RE.finditer(text[bracketed.end() :]))
    except InvalidRequestError as err:
        problems.add(line, column, f"invalid subject in `{text}`: {err}")
        return None
    return ExpectedSubject(
        text=text,
        subject=subject,
        line=line,
        caveated=match.group("caveat") is not None,
        exceptions=tuple(exceptions),
        paths=paths,
    )
