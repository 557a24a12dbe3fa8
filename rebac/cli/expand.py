"""`rebac expand RESOURCE PERMISSION`: draw the userset tree behind a permission."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from rebac.cli import EXIT_OK, CliError
from rebac.cli.connection import connection_parent, run_client
from rebac.cli.inputs import CONSISTENCY_HELP, SourcedLine, parse_consistency
from rebac.cli.output import expand_tree_json, expand_tree_node, palette_for, print_json, render_tree
from rebac.engine.requests import ExpandTree
from rebac.errors import InvalidRelationshipError
from rebac.tuples import parse_object, validate_relation_name

if TYPE_CHECKING:
    from rebac.client import RebacClient

__all__ = ["register"]

_EPILOG = """\
examples:
  rebac expand document:42 view
  rebac expand document:42 view --recursive
  rebac expand folder:root edit --json

Without --recursive, computed usersets and arrows appear as leaves naming the userset
(e.g. folder:root#view); with it they are expanded down to stored subjects. --json prints
{"resource", "relation", "operation": "leaf|union|intersection|exclusion",
"subjects": [...] (leaves) or "children": [...]}."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `expand` command."""
    parser = subparsers.add_parser(
        "expand",
        parents=[connection_parent()],
        help="draw the userset tree behind RESOURCE#PERMISSION",
        description="Draw the tree of subjects and usersets behind a permission.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("resource", metavar="RESOURCE", help="e.g. document:42")
    parser.add_argument("permission", metavar="PERMISSION", help="e.g. view")
    parser.add_argument("--recursive", action="store_true", help="expand nested usersets too")
    parser.add_argument("--consistency", metavar="MODE", help=CONSISTENCY_HELP)
    parser.add_argument("--json", action="store_true", dest="as_json", help="print the tree as JSON")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    try:
        resource = parse_object(args.resource)
    except InvalidRelationshipError as err:
        where = SourcedLine(args.resource, "RESOURCE", ", column ").at(err.column)
        raise CliError(f"{where}: {err}") from None
    try:
        permission = validate_relation_name(args.permission, field_name="permission")
    except InvalidRelationshipError as err:
        raise CliError(f"PERMISSION: {err}") from None
    consistency = parse_consistency(args.consistency)

    async def work(client: RebacClient) -> ExpandTree:
        return await client.expand(resource, permission, recursive=args.recursive, consistency=consistency)

    tree = run_client(args, work)
    if args.as_json:
        print_json(expand_tree_json(tree))
    else:
        print(render_tree(expand_tree_node(tree, palette=palette_for(sys.stdout))))
    return EXIT_OK
