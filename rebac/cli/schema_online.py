"""`rebac schema write|read|diff`: the schema commands that talk to a server (and the diff).

They join the `schema` group of `rebac.cli.schema` through its `register_group` hook, so
the offline commands there stay untouched. `write` compiles the file locally first (errors
point at file:line:column without a round trip), then stores it and prints the revision
token. `diff OLD NEW` compares two schemas definition by definition; either side may be
``@server`` for the schema the server holds. Exit codes of `diff` follow diff(1): 0 the
same, 1 different (2/3 for bad input / server errors, as everywhere).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rebac.cli import EXIT_DENIED, EXIT_OK, EXIT_USAGE, CliError
from rebac.cli.connection import connection_parent, run_client
from rebac.cli.inputs import CONSISTENCY_HELP, parse_consistency
from rebac.cli.output import palette_for, print_json
from rebac.cli.schema import load_schema_source, register_group
from rebac.errors import InvalidRequestError, SchemaError
from rebac.schema import compile_schema, generate_schema
from rebac.schema.definitions import CaveatDefinition, CompiledSchema, Definition, Permission, Relation

if TYPE_CHECKING:
    from rebac.client import RebacClient

__all__ = ["SchemaChange", "diff_schemas", "register"]

SERVER = "@server"

_WRITE_EPILOG = """\
examples:
  rebac schema write schema.zed
  rebac schema write schema.zed --json

The file is compiled locally first; the server refuses a schema that would orphan stored
relationships (remove those relationships first). Prints the revision token."""

_READ_EPILOG = """\
examples:
  rebac schema read > schema.zed
  rebac schema read --json"""

_DIFF_EPILOG = """\
examples:
  rebac schema diff old.zed new.zed
  rebac schema diff @server new.zed       what `rebac schema write new.zed` would change
  rebac schema diff old.zed new.zed --json

Lines: `+` added, `-` removed, `~` changed (old → new). Exit 0 if the schemas mean the
same, 1 if they differ."""


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """One difference: `kind` is added/removed/changed; `path` is e.g. ``document#view``."""

    kind: str
    what: str
    path: str
    old: str | None = None
    new: str | None = None

    def __str__(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~"}[self.kind]
        if self.kind == "changed":
            return f"{sign} {self.what} {self.path}: {self.old}  →  {self.new}"
        return f"{sign} {self.what} {self.path}" + (
            f": {self.new or self.old}" if (self.new or self.old) else ""
        )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `schema write|read|diff` to the `schema` group."""
    group = register_group(subparsers)
    parent = connection_parent()
    write = group.add_parser(
        "write",
        parents=[parent],
        help="store a schema file on the server",
        description="Compile FILE and store it as the server's schema.",
        epilog=_WRITE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    write.add_argument(
        "file", type=Path, metavar="FILE", help="schema file (.zed), or a zed validation file (.yaml)"
    )
    write.add_argument("--json", action="store_true", dest="as_json", help="print a JSON result")
    write.set_defaults(handler=_write)
    read = group.add_parser(
        "read",
        parents=[parent],
        help="print the server's schema",
        description="Print the schema the server holds.",
        epilog=_READ_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    read.add_argument("--consistency", metavar="MODE", help=CONSISTENCY_HELP)
    read.add_argument("--json", action="store_true", dest="as_json", help="print {schema} as JSON")
    read.set_defaults(handler=_read)
    diff = group.add_parser(
        "diff",
        parents=[parent],
        help="explain what changes between two schemas",
        description="Compare two schemas (files, or @server) definition by definition.",
        epilog=_DIFF_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diff.add_argument("old", metavar="OLD", help="schema file or @server")
    diff.add_argument("new", metavar="NEW", help="schema file or @server")
    diff.add_argument("--json", action="store_true", dest="as_json", help="print the changes as JSON")
    diff.set_defaults(handler=_diff)


def _compile_file(path: Path) -> CompiledSchema:
    return _load_source(path)[1]


def _load_source(path: Path) -> tuple[str, CompiledSchema]:
    try:
        return load_schema_source(path)
    except SchemaError as err:
        position = f"{err.position}:" if err.position else ""
        raise CliError(f"{path}:{position} {err.message}", EXIT_USAGE) from None
    except InvalidRequestError as err:  # a validation file's problems, already `file:line: reason`
        raise CliError(str(err), EXIT_USAGE) from None


def _write(args: argparse.Namespace) -> int:
    path: Path = args.file
    text, _ = _load_source(path)

    async def work(client: RebacClient) -> str:
        return await client.write_schema(text)

    token = run_client(args, work)
    if args.as_json:
        print_json({"written_at": token, "file": str(path)})
    else:
        print(token)
        if sys.stderr.isatty():
            print(f"schema from {path} written; the line above is the revision token", file=sys.stderr)
    return EXIT_OK


def _read(args: argparse.Namespace) -> int:
    consistency = parse_consistency(args.consistency)

    async def work(client: RebacClient) -> str:
        return await client.read_schema(consistency=consistency)

    text = run_client(args, work)
    if args.as_json:
        print_json({"schema": text})
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def _load_side(args: argparse.Namespace, value: str) -> CompiledSchema:
    if value != SERVER:
        return _compile_file(Path(value))

    async def work(client: RebacClient) -> str:
        return await client.read_schema(consistency=parse_consistency("full"))

    text = run_client(args, work)
    try:
        return compile_schema(text, source=SERVER)
    except SchemaError as err:
        raise CliError(f"{SERVER}: {err}", EXIT_USAGE) from None


def _diff(args: argparse.Namespace) -> int:
    changes = diff_schemas(_load_side(args, args.old), _load_side(args, args.new))
    if args.as_json:
        print_json(
            {
                "same": not changes,
                "changes": [
                    {"kind": c.kind, "what": c.what, "path": c.path, "old": c.old, "new": c.new}
                    for c in changes
                ],
            }
        )
        return EXIT_DENIED if changes else EXIT_OK
    if not changes:
        print("no changes: the schemas mean the same")
        return EXIT_OK
    palette = palette_for(sys.stdout)
    colour = {"added": "green", "removed": "red", "changed": "yellow"}
    for change in changes:
        print(palette.paint(str(change), colour[change.kind]))
    return EXIT_DENIED


def _member_text(definition: str, member: Relation | Permission) -> str:
    """`member` as the schema language writes it, after ``relation x:`` / ``permission x =``."""
    text = generate_schema(CompiledSchema(definitions=(Definition(definition, (member,)),)))
    line = next(
        line.strip() for line in text.splitlines() if line.strip().startswith(("relation ", "permission "))
    )
    return line.split(":", 1)[1].strip() if isinstance(member, Relation) else line.split("=", 1)[1].strip()


def _caveat_text(caveat: CaveatDefinition) -> str:
    params = ", ".join(f"{p.name} {p.type}" for p in caveat.parameters)
    return f"({params}) {{ {caveat.expression.strip()} }}"


def diff_schemas(old: CompiledSchema, new: CompiledSchema) -> list[SchemaChange]:
    """Every difference from `old` to `new`, in a stable order (by name; removals first).

    Definitions, caveats, relations (their allowed subject types) and permissions (their
    expressions, compared in canonical form, so formatting and comments never count) are
    compared; a member that turns from a relation into a permission is a change.
    """
    old_defs = {d.name: d for d in old.definitions}
    new_defs = {d.name: d for d in new.definitions}
    changes = [
        SchemaChange("removed", "definition", name) for name in sorted(old_defs.keys() - new_defs.keys())
    ]
    changes.extend(
        SchemaChange("added", "definition", name) for name in sorted(new_defs.keys() - old_defs.keys())
    )
    for name in sorted(old_defs.keys() & new_defs.keys()):
        changes.extend(_diff_definition(old_defs[name], new_defs[name]))
    old_caveats = {c.name: c for c in old.caveats}
    new_caveats = {c.name: c for c in new.caveats}
    for name in sorted(old_caveats.keys() | new_caveats.keys()):
        before, after = old_caveats.get(name), new_caveats.get(name)
        if before is None and after is not None:
            changes.append(SchemaChange("added", "caveat", name, new=_caveat_text(after)))
        elif after is None and before is not None:
            changes.append(SchemaChange("removed", "caveat", name, old=_caveat_text(before)))
        elif before is not None and after is not None and _caveat_text(before) != _caveat_text(after):
            changes.append(SchemaChange("changed", "caveat", name, _caveat_text(before), _caveat_text(after)))
    return changes


def _kind(member: Relation | Permission) -> str:
    return "relation" if isinstance(member, Relation) else "permission"


def _diff_definition(old: Definition, new: Definition) -> list[SchemaChange]:
    changes: list[SchemaChange] = []
    old_members = {m.name: m for m in old.members}
    new_members = {m.name: m for m in new.members}
    for name in sorted(old_members.keys() - new_members.keys()):
        member = old_members[name]
        changes.append(
            SchemaChange("removed", _kind(member), f"{old.name}#{name}", old=_member_text(old.name, member))
        )
    for name in sorted(new_members.keys() - old_members.keys()):
        member = new_members[name]
        changes.append(
            SchemaChange("added", _kind(member), f"{new.name}#{name}", new=_member_text(new.name, member))
        )
    for name in sorted(old_members.keys() & new_members.keys()):
        before, after = old_members[name], new_members[name]
        old_text, new_text = _member_text(old.name, before), _member_text(new.name, after)
        if _kind(before) != _kind(after):
            changes.append(
                SchemaChange(
                    "changed", f"{_kind(before)}→{_kind(after)}", f"{old.name}#{name}", old_text, new_text
                )
            )
        elif old_text != new_text:
            changes.append(SchemaChange("changed", _kind(before), f"{old.name}#{name}", old_text, new_text))
    return changes
