"""`rebac lookup-resources` and `rebac lookup-subjects`: stream who can reach what.

Both print one id per line as results arrive (``--json``: one JSON object per line).
With ``--limit N`` and N results printed, the cursor that resumes after the last one is
printed on stderr as ``next cursor: TOKEN``; pass it back with ``--cursor TOKEN`` (the
cursor pins the revision, so pages are consistent with each other).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from rebac.cli import EXIT_OK, CliError
from rebac.cli.connection import connection_parent, run_client
from rebac.cli.inputs import CONSISTENCY_HELP, WITH_HELP, parse_consistency, parse_context, parse_contextual
from rebac.engine.requests import FoundSubject, Permissionship
from rebac.errors import InvalidRelationshipError
from rebac.tuples import parse_object, parse_subject, validate_object_type
from rebac.tuples import validate_relation_name as _relation

if TYPE_CHECKING:
    from rebac.client import RebacClient

__all__ = ["register"]

_RESOURCES_EPILOG = """\
examples:
  rebac lookup-resources document view user:ann
  rebac lookup-resources document view group:eng#member --json
  rebac lookup-resources document view user:ann --limit 100
  rebac lookup-resources document view user:ann --limit 100 --cursor TOKEN
  rebac lookup-resources document view user:ann --context '{"day": "tue"}'
  rebac lookup-resources document view user:ann --with document:42#viewer@user:ann

Prints the id of each document ann may view, one per line; a result that depends on
missing caveat context is followed by `(caveated: missing NAMES)` (--json: its
permissionship is "conditional" and missing_context lists the names)."""

_SUBJECTS_EPILOG = """\
examples:
  rebac lookup-subjects document:42 view user
  rebac lookup-subjects document:42 view group --subject-relation member
  rebac lookup-subjects document:42 view user --limit 50 --json
  rebac lookup-subjects document:42 view user --context '{"day": "tue"}' --with group:eng#member@user:ann

Prints the id of each subject of the type with the permission, one per line. A wildcard
prints `*`, followed by `(except a, b)` when some subjects are excluded."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `lookup-resources` and `lookup-subjects`."""
    parent = connection_parent()
    resources = subparsers.add_parser(
        "lookup-resources",
        parents=[parent],
        help="which resources of TYPE may SUBJECT reach with PERMISSION?",
        description="Stream the ids of the resources of TYPE on which SUBJECT has PERMISSION.",
        epilog=_RESOURCES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    resources.add_argument("resource_type", metavar="TYPE", help="e.g. document")
    resources.add_argument("permission", metavar="PERMISSION", help="e.g. view")
    resources.add_argument("subject", metavar="SUBJECT", help="e.g. user:ann or group:eng#member")
    _add_stream_options(resources)
    resources.set_defaults(handler=_lookup_resources)
    subjects = subparsers.add_parser(
        "lookup-subjects",
        parents=[parent],
        help="which subjects of SUBJECT_TYPE have PERMISSION on RESOURCE?",
        description="Stream the ids of the subjects of SUBJECT_TYPE that have PERMISSION on RESOURCE.",
        epilog=_SUBJECTS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subjects.add_argument("resource", metavar="RESOURCE", help="e.g. document:42")
    subjects.add_argument("permission", metavar="PERMISSION", help="e.g. view")
    subjects.add_argument("subject_type", metavar="SUBJECT_TYPE", help="e.g. user")
    subjects.add_argument("--subject-relation", metavar="RELATION", help="find subject sets (group#member)")
    _add_stream_options(subjects)
    subjects.set_defaults(handler=_lookup_subjects)


def _add_stream_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, metavar="N", help="at most N results; prints the next cursor")
    parser.add_argument("--cursor", metavar="TOKEN", help="resume after the result that carried TOKEN")
    parser.add_argument("--consistency", metavar="MODE", help=CONSISTENCY_HELP)
    parser.add_argument("--context", dest="caveat_context", metavar="JSON", help="caveat context object")
    parser.add_argument("--with", dest="contextual", action="append", metavar="REL", help=WITH_HELP)
    parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object per line")


def _checked(value: str, what: str, parse: Any) -> Any:
    try:
        return parse(value)
    except InvalidRelationshipError as err:
        column = f", column {err.column}" if err.column else ""
        raise CliError(f"{what}{column}: {err}") from None


def _caveat_note(permissionship: Permissionship, missing: tuple[str, ...]) -> str:
    if permissionship is not Permissionship.CONDITIONAL:
        return ""
    return f"  (caveated: missing {', '.join(missing) or 'context'})"


def _subject_line(found: FoundSubject, subject_type: str) -> str:
    """``ann``, ``*  (except bob, carl)``, plus a caveat note; other types keep their prefix."""
    text = found.subject.id
    if found.excluded:
        names = [s.id if s.type == subject_type and s.relation is None else str(s) for s in found.excluded]
        text += f"  (except {', '.join(names)})"
    return text + _caveat_note(found.permissionship, found.missing_context)


def _limit(args: argparse.Namespace) -> int | None:
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1")
    limit: int | None = args.limit
    return limit


def _report_cursor(args: argparse.Namespace, count: int, cursor: str) -> None:
    if args.limit is not None and count >= args.limit and cursor:
        print(f"next cursor: {cursor}", file=sys.stderr)


def _lookup_resources(args: argparse.Namespace) -> int:
    resource_type = _checked(args.resource_type, "TYPE", validate_object_type)
    permission = _checked(args.permission, "PERMISSION", _relation)
    subject = _checked(args.subject, "SUBJECT", parse_subject)
    limit = _limit(args)
    context = parse_context(args.caveat_context)
    contextual = parse_contextual(args.contextual)
    consistency = parse_consistency(args.consistency)

    async def work(client: RebacClient) -> tuple[int, str]:
        count, cursor = 0, ""
        stream = client.lookup_resources_found(
            resource_type,
            permission,
            subject,
            limit=limit,
            cursor=args.cursor,
            context=context,
            contextual=contextual,
            consistency=consistency,
        )
        async for found in stream:
            count, cursor = count + 1, found.cursor
            if args.as_json:
                print(
                    _json_line(
                        {
                            "resource_id": found.resource_id,
                            "permissionship": found.permissionship.value,
                            "missing_context": list(found.missing_context),
                            "cursor": found.cursor,
                        }
                    )
                )
            else:
                print(found.resource_id + _caveat_note(found.permissionship, found.missing_context))
        return count, cursor

    count, cursor = run_client(args, work)
    _report_cursor(args, count, cursor)
    return EXIT_OK


def _lookup_subjects(args: argparse.Namespace) -> int:
    resource = _checked(args.resource, "RESOURCE", parse_object)
    permission = _checked(args.permission, "PERMISSION", _relation)
    subject_type = _checked(args.subject_type, "SUBJECT_TYPE", validate_object_type)
    subject_relation = (
        _checked(args.subject_relation, "--subject-relation", _relation) if args.subject_relation else None
    )
    limit = _limit(args)
    context = parse_context(args.caveat_context)
    contextual = parse_contextual(args.contextual)
    consistency = parse_consistency(args.consistency)

    async def work(client: RebacClient) -> tuple[int, str]:
        count, cursor = 0, ""
        stream = client.lookup_subjects(
            resource,
            permission,
            subject_type,
            subject_relation=subject_relation,
            limit=limit,
            cursor=args.cursor,
            context=context,
            contextual=contextual,
            consistency=consistency,
        )
        async for found in stream:
            count, cursor = count + 1, found.cursor
            if args.as_json:
                print(
                    _json_line(
                        {
                            "subject": str(found.subject),
                            "subject_id": found.subject.id,
                            "excluded": [str(s) for s in found.excluded],
                            "permissionship": found.permissionship.value,
                            "missing_context": list(found.missing_context),
                            "cursor": found.cursor,
                        }
                    )
                )
            else:
                print(_subject_line(found, subject_type))
        return count, cursor

    count, cursor = run_client(args, work)
    _report_cursor(args, count, cursor)
    return EXIT_OK


def _json_line(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
