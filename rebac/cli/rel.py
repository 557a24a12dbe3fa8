"""`rebac rel create|touch|delete|read`: write and read relationship tuples.

Writes are atomic (all the tuples of one command or none) and print the revision token
they created on stdout, alone, so ``TOKEN=$(rebac rel create ...)`` works; ``--json``
prints ``{"operation", "count", "written_at"}`` instead. `read` streams canonical tuples,
one per line (``--json``: one JSON object per line).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from rebac.cli import EXIT_DENIED, EXIT_OK, EXIT_USAGE, CliError
from rebac.cli.connection import connection_parent, run_client
from rebac.cli.formats import format_relationship
from rebac.cli.inputs import CONSISTENCY_HELP, parse_consistency, parse_filter, read_relationships
from rebac.cli.output import print_json
from rebac.datastore.filters import RelationshipFilter
from rebac.tuples import Relationship, RelationshipUpdate, UpdateOperation

if TYPE_CHECKING:
    from rebac.client import RebacClient

__all__ = ["describe_filter", "register"]

_CONFIRM_COUNT_CAP = 10_000

_WRITE_EPILOG = """\
examples:
  rebac rel {op} document:42#viewer@user:ann document:42#editor@group:eng#member
  cat tuples.txt | rebac rel {op} -
  rebac rel {op} --file tuples.txt --json

Prints the revision token the write created; pass it to `--consistency token:TOKEN`."""

_DELETE_EPILOG = """\
examples:
  rebac rel delete document:42#viewer@user:ann
  rebac rel delete --filter document:42#viewer --yes
  rebac rel delete --filter document --subject user:ann

With --filter every matching relationship is deleted after a confirmation (or --yes)."""

_READ_EPILOG = """\
examples:
  rebac rel read document:42            every relationship of document:42
  rebac rel read document:42#viewer     its viewers
  rebac rel read document               every document relationship
  rebac rel read --subject user:ann     everything ann is directly related to
  rebac rel read document --subject group:eng#member --json

FILTER is TYPE, TYPE:ID, TYPE#RELATION or TYPE:ID#RELATION. --subject is TYPE, TYPE:ID,
TYPE:ID#RELATION, TYPE:ID#... (plain subjects only) or TYPE:*. Output: one tuple per line
(--json: one JSON object per line). Without any filter every relationship is listed."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `rel` command group."""
    parser = subparsers.add_parser(
        "rel",
        help="write, delete and read relationship tuples",
        description="Write, delete and read relationship tuples (document:42#viewer@user:ann).",
    )
    group = parser.add_subparsers(dest="rel_command", metavar="SUBCOMMAND", required=True)
    parent = connection_parent()
    for op, verb in (("create", "create (fails if one exists)"), ("touch", "create or replace")):
        write = group.add_parser(
            op,
            parents=[parent],
            help=f"{verb} relationships",
            description=f"Atomically {verb} the given relationships.",
            epilog=_WRITE_EPILOG.format(op=op),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_tuple_inputs(write)
        write.set_defaults(handler=_write, operation=UpdateOperation(op))
    delete = group.add_parser(
        "delete",
        parents=[parent],
        help="delete relationships (given, or every match of --filter)",
        description="Delete the given relationships, or every relationship matching --filter.",
        epilog=_DELETE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_tuple_inputs(delete)
    delete.add_argument("--filter", dest="filter_text", metavar="FILTER", help="delete every match of FILTER")
    delete.add_argument("--subject", metavar="SUBJECT", help="with --filter: only this subject")
    delete.add_argument("--limit", type=int, metavar="N", help="with --filter: delete at most N")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=_delete, operation=UpdateOperation.DELETE)
    read = group.add_parser(
        "read",
        parents=[parent],
        help="list relationships matching a filter",
        description="Stream the relationships that match FILTER (and --subject).",
        epilog=_READ_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    read.add_argument("filter_text", nargs="?", metavar="FILTER", help="TYPE[:ID][#RELATION]")
    read.add_argument("--subject", metavar="SUBJECT", help="only relationships with this subject")
    read.add_argument("--limit", type=int, metavar="N", help="at most N relationships")
    read.add_argument("--consistency", metavar="MODE", help=CONSISTENCY_HELP)
    read.add_argument("--json", action="store_true", dest="as_json", help="one JSON object per line")
    read.set_defaults(handler=_read)


def _add_tuple_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "tuples", nargs="*", metavar="TUPLE", help="resource#relation@subject; `-` reads stdin"
    )
    parser.add_argument("--file", metavar="FILE", help="read tuples from FILE, one per line (`-`: stdin)")
    parser.add_argument("--json", action="store_true", dest="as_json", help="print a JSON result")


def _report_write(args: argparse.Namespace, operation: str, count: int, token: str) -> None:
    if args.as_json:
        print_json({"operation": operation, "count": count, "written_at": token})
        return
    print(token)
    if sys.stderr.isatty():
        print(f"{operation}: {count} relationship(s); the line above is the revision token", file=sys.stderr)


def _write(args: argparse.Namespace) -> int:
    relationships = read_relationships(args.tuples, file=args.file)
    operation: UpdateOperation = args.operation
    updates = [RelationshipUpdate(operation, r) for r in relationships]

    async def work(client: RebacClient) -> str:
        return await client.write(updates)

    token = run_client(args, work)
    _report_write(args, operation.value, len(updates), token)
    return EXIT_OK


def describe_filter(flt: RelationshipFilter) -> str:
    """A filter in the words people typed: ``document:42#viewer`` plus ``with subject user:ann``."""
    text = flt.resource_type or "any resource"
    if flt.resource_ids:
        text += ":" + ",".join(flt.resource_ids)
    if flt.relation:
        text += f"#{flt.relation}"
    if flt.subject is not None:
        subject = flt.subject.type
        if flt.subject.ids:
            subject += ":" + ",".join(flt.subject.ids)
        if isinstance(flt.subject.relation, str):
            subject += f"#{flt.subject.relation}"
        elif flt.subject.relation is None:
            subject += "#..."
        text += f" with subject {subject}"
    return text


def _delete_filter(args: argparse.Namespace) -> RelationshipFilter:
    """The validated --filter/--subject/--limit of `rel delete --filter`."""
    if args.tuples or args.file:
        raise CliError("give either tuples or --filter, not both")
    flt = parse_filter(args.filter_text, args.subject)
    if flt.resource_type is None:
        raise CliError("--filter needs a resource type (e.g. --filter document)")
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1")
    return flt


def _confirmed(args: argparse.Namespace, flt: RelationshipFilter) -> bool:
    """Ask on the terminal how many would go; CliError when there is no terminal to ask."""
    if not sys.stdin.isatty():
        raise CliError(
            f"refusing to delete every match of {describe_filter(flt)} without confirmation: "
            "pass --yes (stdin is not a terminal, so there is no one to ask)",
            EXIT_USAGE,
        )

    async def count(client: RebacClient) -> int:
        found = 0
        async for _ in client.read(flt, limit=_CONFIRM_COUNT_CAP + 1, consistency=parse_consistency("full")):
            found += 1
        return found

    matches = run_client(args, count)
    shown = f"more than {_CONFIRM_COUNT_CAP}" if matches > _CONFIRM_COUNT_CAP else str(matches)
    if args.limit is not None and matches > args.limit:
        shown = f"{args.limit} of {shown}"
    answer = input(f"Delete {shown} relationship(s) matching {describe_filter(flt)}? [y/N] ")
    return answer.strip().lower() in {"y", "yes"}


def _delete(args: argparse.Namespace) -> int:
    if args.filter_text is None:
        if args.subject is not None or args.limit is not None:
            raise CliError("--subject and --limit go with --filter")
        return _write(args)
    flt = _delete_filter(args)
    if not args.yes and not _confirmed(args, flt):
        print("rebac: nothing deleted", file=sys.stderr)
        return EXIT_DENIED

    async def delete(client: RebacClient) -> tuple[str, int]:
        return await client.delete_where(flt, limit=args.limit)

    token, deleted = run_client(args, delete)
    _report_write(args, "delete", deleted, token)
    return EXIT_OK


def _read(args: argparse.Namespace) -> int:
    flt = parse_filter(args.filter_text, args.subject)
    consistency = parse_consistency(args.consistency)
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1")
    unfiltered = flt.resource_type is None and flt.subject is None

    def emit(relationship: Relationship) -> None:
        print(format_relationship(relationship, "jsonl" if args.as_json else "tuples"), flush=False)

    async def work(client: RebacClient) -> int:
        shown = 0
        stream = (
            client.export(consistency=consistency)
            if unfiltered
            else client.read(flt, limit=args.limit, consistency=consistency)
        )
        async for relationship in stream:
            emit(relationship)
            shown += 1
            if args.limit is not None and shown >= args.limit:
                break
        sys.stdout.flush()
        return shown

    run_client(args, work)
    return EXIT_OK
