"""`rebac schema ...`: offline schema commands (validate/check, format, graph).

Online commands (`schema write|read`) are added by registering more sub-parsers on the
`schema` group returned by `register_group`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rebac.cli import CliError
from rebac.errors import InvalidRequestError, SchemaError
from rebac.schema import SchemaGraph, compile_schema, generate_schema
from rebac.schema.definitions import CompiledSchema

__all__ = ["load_schema_file", "load_schema_source", "register", "register_group"]

EXIT_INVALID = 1

VALIDATION_FILE_SUFFIXES = (".yaml", ".yml")
"""A schema argument with one of these suffixes is a zed validation file: its schema is used."""

_FILE_HELP = "schema file (.zed), or a zed validation file (.yaml) whose schema is used"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `schema validate|check|format|graph` to the CLI."""
    group = register_group(subparsers)
    validate = group.add_parser(
        "validate", aliases=["check"], help="compile a schema file; print warnings or errors"
    )
    validate.add_argument("file", type=Path, help=_FILE_HELP)
    validate.set_defaults(handler=_validate)
    fmt = group.add_parser("format", help="print a schema file in canonical form")
    fmt.add_argument("file", type=Path, help=_FILE_HELP)
    fmt.set_defaults(handler=_format)
    graph = group.add_parser("graph", help="print the schema's relation graph (DOT, or Mermaid)")
    graph.add_argument("file", type=Path, help=_FILE_HELP)
    graph.add_argument("--mermaid", action="store_true", help="print Mermaid instead of DOT")
    graph.set_defaults(handler=_graph)


def register_group(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Create (once) the `schema` command group and return its sub-parsers for extension."""
    existing: argparse._SubParsersAction[argparse.ArgumentParser] | None = getattr(
        subparsers, "_rebac_schema_group", None
    )
    if existing is not None:
        return existing
    parser = subparsers.add_parser("schema", help="schema commands")
    group = parser.add_subparsers(dest="schema_command", metavar="SUBCOMMAND", required=True)
    subparsers._rebac_schema_group = group  # type: ignore[attr-defined]  # noqa: SLF001
    return group


def load_schema_file(path: Path) -> CompiledSchema:
    """Read and compile a schema file; imports resolve relative to it. Raises CliError or SchemaError.

    A `.yaml`/`.yml` path is a zed validation file (see `load_schema_source`).
    """
    return load_schema_source(path)[1]


def load_schema_source(path: Path) -> tuple[str, CompiledSchema]:
    """The schema text to store and its compiled form, from a schema or a zed validation file.

    A `.yaml`/`.yml` path is read as a zed validation file (its `schema` or `schemaFile`), so
    the same file serves `rebac validate` and `rebac schema ...`; the whole file must load, and
    its problems raise InvalidRequestError with `file:line[:column]: reason` lines. Other
    paths are schema text; imports resolve relative to the file. Raises CliError (unreadable
    file) or SchemaError (with the position in the schema file).
    """
    if path.suffix.lower() in VALIDATION_FILE_SUFFIXES:
        from rebac.validationfile import load_validation_file  # noqa: PLC0415 - YAML only when needed

        if not path.exists():
            raise CliError(f"{path}: no such file")
        loaded = load_validation_file(path)
        return loaded.schema_text, loaded.schema
    text = _read_text(path)
    base = path.parent

    def loader(relative: str) -> str:
        return _read_text(base / relative)

    return text, compile_schema(text, source=str(path), import_loader=loader)


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except OSError as err:
        raise CliError(f"{path}: cannot read: {err.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SchemaError(f"not UTF-8 text (byte {err.start})", source=str(path)) from None


def _compile_or_report(path: Path) -> CompiledSchema | None:
    try:
        return load_schema_file(path)
    except SchemaError as err:
        print(schema_error_line(err), file=sys.stderr)
        return None
    except InvalidRequestError as err:  # a validation file's problems, already `file:line: reason`
        print(str(err), file=sys.stderr)
        return None


def schema_error_line(err: SchemaError) -> str:
    """`source:line:column: message` for a schema error (1:1 when it has no position)."""
    position = f"{err.position}:" if err.position else "1:1:"
    return f"{err.source}:{position} {err.message}"


def _validate(args: argparse.Namespace) -> int:
    schema = _compile_or_report(args.file)
    if schema is None:
        return EXIT_INVALID
    for warning in SchemaGraph(schema).warnings():
        print(f"{args.file}:{warning}")
    count = len(schema.definitions)
    print(
        f"{args.file}: valid ({count} definition{'s' if count != 1 else ''}, {len(schema.caveats)} caveats)"
    )
    return 0


def _format(args: argparse.Namespace) -> int:
    schema = _compile_or_report(args.file)
    if schema is None:
        return EXIT_INVALID
    sys.stdout.write(generate_schema(schema))
    return 0


def _graph(args: argparse.Namespace) -> int:
    schema = _compile_or_report(args.file)
    if schema is None:
        return EXIT_INVALID
    graph = SchemaGraph(schema)
    sys.stdout.write(graph.to_mermaid() if args.mermaid else graph.to_dot())
    return 0
