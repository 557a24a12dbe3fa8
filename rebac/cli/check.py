"""`rebac check`: may a subject have a permission on a resource? One check, or a file of them.

Prints ``true``, ``false`` or ``caveated`` (the answer depends on caveat context that was
not given). Exit 0 for true; exit 1 for false and for caveated (fail closed: caveated is
not allowed); 2 for malformed input or an unknown type/permission; 3 if the server could
not answer. `--file` runs every line through one bulk check and exits with the highest
code of any line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rebac.cli import EXIT_DENIED, EXIT_OK, CliError
from rebac.cli.connection import (
    ConnectionSettings,
    connection_parent,
    error_to_cli,
    resolve_settings,
    run_client,
)
from rebac.cli.inputs import (
    CONSISTENCY_HELP,
    WITH_HELP,
    CheckLine,
    SourcedLine,
    parse_check_arguments,
    parse_check_line,
    parse_consistency,
    parse_context,
    parse_contextual,
    read_lines,
)
from rebac.cli.output import (
    expand_tree_json,
    expand_tree_node,
    palette_for,
    permissionship_word,
    print_json,
    render_tree,
)
from rebac.engine.requests import ExpandOperation, ExpandTree, Permissionship
from rebac.errors import RebacError
from rebac.revision import AtExactSnapshot, Consistency
from rebac.tuples import Relationship, SubjectRef

if TYPE_CHECKING:
    from rebac.client import CheckResponse, RebacClient

__all__ = ["explain_tree", "register"]

_BULK_CHUNK = 500
_WORD_STYLE = {"true": ("green", "bold"), "false": ("red", "bold"), "caveated": ("yellow", "bold")}

_EPILOG = """\
examples:
  rebac check document:42 view user:ann
  rebac check document:42 view user:ann --explain
  rebac check document:42 edit group:eng#member --json
  rebac check document:42 view user:ann --consistency token:$TOKEN
  rebac check document:42 view user:ann --context '{"ip": "10.0.0.1"}'
  rebac check document:42 view user:ann --with document:42#viewer@group:eng#member
  rebac check --file checks.txt          (lines: `document:42 view user:ann` or `document:42#view@user:ann`)
  rebac check --file checks.txt --context '{"day": "tue"}' --with group:eng#member@user:ann

Prints true, false or caveated (a caveat needs context that was not given; --json lists
it under missing_context). Exit 0 if true, 1 if false or caveated, 2 for bad input,
3 if the server could not answer. --context and --with apply to every line of --file.
--explain draws the expand tree: the branches that grant (marked ✓; marked ? where a
caveat must hold, e.g. `user:ann [caveat only_on_tuesday]  ?`), or the whole tree that
was searched when denied. Arrows read as in the schema (document:42#parent->edit)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `check` command."""
    parser = subparsers.add_parser(
        "check",
        parents=[connection_parent()],
        help="may SUBJECT have PERMISSION on RESOURCE? (true/false/caveated)",
        description="Check a permission: prints true, false or caveated.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("resource", nargs="?", metavar="RESOURCE", help="e.g. document:42")
    parser.add_argument("permission", nargs="?", metavar="PERMISSION", help="e.g. view")
    parser.add_argument("subject", nargs="?", metavar="SUBJECT", help="e.g. user:ann or group:eng#member")
    parser.add_argument(
        "--file", metavar="FILE", help="check every line of FILE (`-`: stdin) in one bulk call"
    )
    parser.add_argument("--explain", action="store_true", help="show the tree that granted or denied")
    parser.add_argument("--consistency", metavar="MODE", help=CONSISTENCY_HELP)
    parser.add_argument("--context", dest="caveat_context", metavar="JSON", help="caveat context object")
    parser.add_argument("--with", dest="contextual", action="append", metavar="REL", help=WITH_HELP)
    parser.add_argument("--json", action="store_true", dest="as_json", help="print the full result as JSON")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    positional = [args.resource, args.permission, args.subject]
    consistency = parse_consistency(args.consistency)
    context = parse_context(args.caveat_context)
    contextual = parse_contextual(args.contextual)
    if args.explain and contextual:
        # Expand reads stored relationships only: its tree could not show the --with ones.
        raise CliError("--explain cannot show --with relationships: drop one of them")
    if args.file is not None:
        if any(p is not None for p in positional):
            raise CliError("give either RESOURCE PERMISSION SUBJECT or --file, not both")
        if args.explain:
            raise CliError("--explain works on a single check, not with --file")
        return _check_file(args, read_lines([], file=args.file), consistency, context, contextual)
    if any(p is None for p in positional):
        raise CliError("expected RESOURCE PERMISSION SUBJECT (e.g. `rebac check document:42 view user:ann`)")
    line = parse_check_arguments(args.resource, args.permission, args.subject)
    return _check_one(args, line, consistency, context, contextual)


def _check_one(
    args: argparse.Namespace,
    line: CheckLine,
    consistency: Consistency,
    context: dict[str, Any] | None,
    contextual: tuple[Relationship, ...],
) -> int:
    async def work(client: RebacClient) -> tuple[CheckResponse, ExpandTree | None]:
        result = await client.check(
            line.resource,
            line.permission,
            line.subject,
            context=context,
            contextual=contextual,
            consistency=consistency,
        )
        tree = None
        if args.explain:
            # Expand at the revision the check used, so the tree explains that very answer.
            tree = await client.expand(
                line.resource, line.permission, recursive=True, consistency=AtExactSnapshot(result.checked_at)
            )
        return result, tree

    result, tree = run_client(args, work)
    word = permissionship_word(result.permissionship)
    shown_tree = None
    if tree is not None:
        # A conditional answer is explained like a grant: the paths that might grant, marked `?`.
        granted = result.permissionship is not Permissionship.NO_PERMISSION
        shown_tree = (explain_tree(tree, line.subject) if granted else None) or tree
    if args.as_json:
        document: dict[str, Any] = {
            "resource": str(line.resource),
            "permission": line.permission,
            "subject": str(line.subject),
            "result": word,
            "allowed": result.allowed,
            "permissionship": result.permissionship.value,
            "missing_context": list(result.missing_context),
            "checked_at": result.checked_at,
        }
        if shown_tree is not None:
            document["explain"] = expand_tree_json(shown_tree)
        print_json(document)
    else:
        palette = palette_for(sys.stdout)
        print(palette.paint(word, *_WORD_STYLE[word]))
        if result.missing_context:
            print(f"missing caveat context: {', '.join(result.missing_context)}", file=sys.stderr)
        if shown_tree is not None:
            print()
            print(
                render_tree(expand_tree_node(shown_tree, palette=palette, highlight=_matches(line.subject)))
            )
    return EXIT_OK if result.allowed else EXIT_DENIED


def _matches(subject: SubjectRef) -> frozenset[SubjectRef]:
    """The leaf subjects that stand for `subject`: itself, and its type's wildcard if plain."""
    if subject.relation is None and not subject.is_wildcard:
        return frozenset({subject, SubjectRef(subject.type, "*")})
    return frozenset({subject})


def _contains(tree: ExpandTree, wanted: frozenset[SubjectRef]) -> bool:
    if tree.operation is ExpandOperation.LEAF:
        return any(s in wanted for s in tree.subjects)
    return any(_contains(c, wanted) for c in tree.children)


def explain_tree(tree: ExpandTree, subject: SubjectRef) -> ExpandTree | None:
    """The part of a recursive expand tree through which `subject` is reached, or None.

    A union keeps only the children that reach the subject and a leaf only the matching
    subjects; an intersection keeps every child (each had to grant), pruned; an exclusion
    keeps its pruned base and its subtracted branches whole (they show why the subject
    was not excluded). If pruning loses a branch that had to grant, the node is kept whole.
    """
    return _prune(tree, _matches(subject))


def _prune(tree: ExpandTree, wanted: frozenset[SubjectRef]) -> ExpandTree | None:
    op = tree.operation
    if op is ExpandOperation.LEAF:
        found = _leaf_subset(tree, wanted)
        return found if found.subjects else None
    if op is ExpandOperation.UNION:
        kids = [k for k in (_prune(c, wanted) for c in tree.children) if k is not None]
        if not kids:
            return None
        return replace(tree, children=_with_links(tree.children, kids))
    if not _contains(tree, wanted):
        return None
    if op is ExpandOperation.INTERSECTION:
        pruned: list[ExpandTree | None] = [_prune(c, wanted) for c in tree.children]
    else:  # exclusion: the base must grant; the subtracted branches are shown whole
        pruned = [_prune(tree.children[0], wanted), *tree.children[1:]] if tree.children else [None]
    kept = tuple(p for p in pruned if p is not None)
    return replace(tree, children=kept) if len(kept) == len(pruned) else tree


def _leaf_subset(leaf: ExpandTree, keep: frozenset[SubjectRef] | set[SubjectRef]) -> ExpandTree:
    """`leaf` with only the subjects in `keep`, each still with its caveat."""
    caveats = leaf.subject_caveats or ("",) * len(leaf.subjects)
    pairs = [(s, c) for s, c in zip(leaf.subjects, caveats, strict=True) if s in keep]
    kept_caveats = tuple(c for _, c in pairs)
    return replace(
        leaf,
        subjects=tuple(s for s, _ in pairs),
        subject_caveats=kept_caveats if any(kept_caveats) else (),
    )


def _with_links(children: tuple[ExpandTree, ...], kept: list[ExpandTree]) -> tuple[ExpandTree, ...]:
    """`kept`, where a stored leaf also keeps the subject sets whose expansion was kept.

    A recursive expand of a relation is a union of its stored leaf and one subtree per
    stored subject set; keeping ``group:eng#member`` in the leaf shows the hop to it.
    """
    reached = {SubjectRef(k.resource.type, k.resource.id, k.relation) for k in kept}
    result: list[ExpandTree] = []
    for child in children:
        if child.operation is not ExpandOperation.LEAF:
            continue
        links = tuple(s for s in child.subjects if s in reached)
        if not links:
            continue
        mine = next(
            (
                k
                for k in kept
                if k.resource == child.resource
                and k.relation == child.relation
                and k.operation is ExpandOperation.LEAF
            ),
            None,
        )
        found = mine.subjects if mine is not None else ()
        result.append(_leaf_subset(child, {*links, *found}))
    linked = {(r.resource, r.relation) for r in result}
    others = [
        k for k in kept if not (k.operation is ExpandOperation.LEAF and (k.resource, k.relation) in linked)
    ]
    return (*result, *others)


def _check_file(
    args: argparse.Namespace,
    lines: Sequence[SourcedLine],
    consistency: Consistency,
    context: dict[str, Any] | None,
    contextual: tuple[Relationship, ...],
) -> int:
    if not lines:
        raise CliError(f"{args.file}: no checks found (lines: `RESOURCE PERMISSION SUBJECT`)")
    checks = [parse_check_line(line) for line in lines]
    settings = resolve_settings(args)

    async def work(client: RebacClient) -> list[CheckResponse | RebacError]:
        results: list[CheckResponse | RebacError] = []
        pinned = consistency
        for start in range(0, len(checks), _BULK_CHUNK):
            chunk = checks[start : start + _BULK_CHUNK]
            answers = await client.check_bulk(
                ((c.resource, c.permission, c.subject) for c in chunk),
                context=context,
                contextual=contextual,
                consistency=pinned,
            )
            # Later chunks read the revision of the first, so the whole file is one snapshot.
            first = next((a for a in answers if not isinstance(a, RebacError)), None)
            if first is not None and not isinstance(pinned, AtExactSnapshot):
                pinned = AtExactSnapshot(first.checked_at)
            results.extend(answers)
        return results

    results = run_client(args, work, settings=settings)
    rows = [_bulk_row(check, answer, settings) for check, answer in zip(checks, results, strict=True)]
    exit_code = max((code for _, code in rows), default=EXIT_OK)
    if args.as_json:
        counts = {
            w: sum(1 for r, _ in rows if r["result"] == w) for w in ("true", "false", "caveated", "error")
        }
        checked_at = next((r.checked_at for r in results if not isinstance(r, RebacError)), None)
        print_json({"checked_at": checked_at, "results": [r for r, _ in rows], "summary": counts})
        return exit_code
    palette = palette_for(sys.stdout)
    for row, _ in rows:
        word = row["result"]
        style = _WORD_STYLE.get(word, ("red", "bold"))
        note = ""
        if word == "error":
            note = f"  ({row['where']}: {row['error']})"
        elif word == "caveated":
            note = f"  (missing {', '.join(row['missing_context']) or 'context'})"
        print(f"{palette.paint(word.ljust(8), *style)}  {row['check']}{note}")
    return exit_code


def _bulk_row(
    check: CheckLine, answer: CheckResponse | RebacError, settings: ConnectionSettings
) -> tuple[dict[str, Any], int]:
    """The JSON row of one bulk answer and the exit code it calls for."""
    row: dict[str, Any] = {"check": str(check), "where": check.where}
    if isinstance(answer, RebacError):
        error = error_to_cli(answer, settings)
        row.update(result="error", error=str(error))
        return row, error.exit_code
    row.update(
        result=permissionship_word(answer.permissionship), missing_context=list(answer.missing_context)
    )
    return row, EXIT_OK if answer.allowed else EXIT_DENIED
