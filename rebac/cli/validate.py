"""`rebac validate FILE...`: run zed validation files offline on the memory datastore.

Exit codes: 0 every file loads and every assertion and expected relation holds; 1 some
assertion or expected relation fails (a readable diff is printed); 2 some file cannot be
loaded (one ``file:line: reason`` line per problem on stderr). `--json` prints exactly one
JSON document on stdout instead (see `rebac.validation.results_document`); the exit code
is the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from rebac.cli import EXIT_DENIED, EXIT_OK, EXIT_USAGE
from rebac.validation import FileResult, results_document, run_validation_file

__all__ = ["exit_code_for", "format_result", "register"]

_ASSERT_NAMES = {"true": "assertTrue", "false": "assertFalse", "caveated": "assertCaveated"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `validate` command."""
    parser = subparsers.add_parser(
        "validate",
        help="run zed validation files (schema, relationships, assertions, expected relations)",
        description=(
            "Load each validation file into a fresh in-memory datastore and check its assertions "
            "and expected relations. Exit 0 if all hold, 1 if any fails, 2 if a file cannot be loaded."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="validation YAML (or bare schema) files")
    parser.add_argument(
        "--json", action="store_true", dest="as_json", help="print one JSON document with every result"
    )
    parser.set_defaults(handler=_handle)


def exit_code_for(results: Sequence[FileResult]) -> int:
    """2 if any file failed to load, else 1 if anything failed, else 0."""
    if any(r.error is not None for r in results):
        return EXIT_USAGE
    if any(not r.ok for r in results):
        return EXIT_DENIED
    return EXIT_OK


async def _run_all(files: Sequence[str]) -> list[FileResult]:
    return [await run_validation_file(path) for path in files]


def _handle(args: argparse.Namespace) -> int:
    results = asyncio.run(_run_all(args.files))
    if args.as_json:
        print(json.dumps(results_document(results), indent=2))
        return exit_code_for(results)
    for result in results:
        if result.error is not None:
            for line in result.error.splitlines():
                print(f"rebac: error: {line}", file=sys.stderr)
            continue
        print(format_result(result))
    if len(results) > 1:
        passed = sum(1 for r in results if r.ok)
        print(f"total files: {len(results)}, successfully validated files: {passed}")
    return exit_code_for(results)


def format_result(result: FileResult) -> str:
    """The human-readable report of one loaded file: a summary, then a diff of each failure."""
    lines: list[str] = []
    for item in result.assertions:
        if item.ok:
            continue
        name = _ASSERT_NAMES.get(item.expected, item.expected)
        lines.append(f"{result.file}:{item.line}: {name} failed: {item.assertion}")
        lines.append(f"    expected: {item.expected}")
        lines.append(f"    actual:   {item.actual}" + (f" ({item.error})" if item.error else ""))
    for entry in result.validation:
        if entry.ok:
            continue
        where = f"{result.file}:{entry.line}"
        if entry.error is not None:
            target = f"{entry.resource}#{entry.permission}"
            lines.append(f"{where}: expected relations for {target}: error: {entry.error}")
            continue
        lines.append(f"{where}: expected relations for {entry.resource}#{entry.permission} differ:")
        lines.extend(f"    - {key}    (expected, not found)" for key in entry.missing)
        lines.extend(f"    + {key}    (found, not expected)" for key in entry.unexpected)
    failed_assertions = sum(1 for a in result.assertions if not a.ok)
    failed_expected = sum(1 for v in result.validation if not v.ok)
    counts = (
        f"{result.relationship_count} relationships loaded, {len(result.assertions)} assertions run, "
        f"{len(result.validation)} expected relations validated"
    )
    if result.ok:
        lines.append(f"{result.file}: Success! - {counts}")
    else:
        lines.append(
            f"{result.file}: FAILED - {failed_assertions} of {len(result.assertions)} assertions and "
            f"{failed_expected} of {len(result.validation)} expected relations failed ({counts})"
        )
    return "\n".join(lines)
