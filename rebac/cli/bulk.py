"""`rebac import FILE` and `rebac export`: move many relationships in and out.

Import reads tuples, CSV, JSON lines or a zed validation file (see `rebac.cli.formats`),
checks the whole file first (a malformed record stops the import before anything is
written, naming ``file:line``), then sends batches of `--batch-size` (at most 1000, the
server's transaction size). Each batch is one server transaction: it is written entirely
or not at all. On a failure, or on Ctrl-C (which lets the batch in flight finish), the
command prints how many records were imported and the exact command that resumes after
them (``--skip N``). Progress goes to stderr: a bar on a terminal, a line every few
seconds otherwise. Export streams every relationship at one revision to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import shlex
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rebac.cli import EXIT_OK, CliError
from rebac.cli.connection import (
    ConnectionSettings,
    connection_parent,
    error_to_cli,
    open_client,
    resolve_settings,
    run_client,
)
from rebac.cli.formats import EXPORT_FORMATS, IMPORT_FORMATS, ImportRecord, detect_format, format_relationship
from rebac.cli.formats import read_records as _read_records
from rebac.cli.inputs import CONSISTENCY_HELP, parse_consistency
from rebac.cli.output import print_json
from rebac.revision import Consistency

if TYPE_CHECKING:
    from rebac.client import RebacClient

__all__ = ["ImportOutcome", "Progress", "register", "resume_command"]

MAX_BATCH = 1000
EXIT_INTERRUPTED = 130
_PLAIN_PROGRESS_SECONDS = 5.0
_TTY_REDRAW_SECONDS = 0.1

_IMPORT_EPILOG = """\
examples:
  rebac import tuples.txt
  rebac import relationships.csv --batch-size 500
  rebac import export.jsonl
  rebac import playground.yaml            (the `relationships` of a zed validation file)
  cat tuples.txt | rebac import -
  rebac import tuples.txt --skip 45000    (resume after the first 45000 records)

Formats by extension (.csv, .jsonl/.ndjson/.json, .yaml/.yml, else tuples) or --format.
Every batch is atomic. After a failure or Ctrl-C the command prints how many records were
imported and the exact command to resume. Exit 130 when interrupted."""

_EXPORT_EPILOG = """\
examples:
  rebac export > backup.txt
  rebac export --format jsonl > backup.jsonl
  rebac export --format csv | gzip > backup.csv.gz

Every relationship at one revision, streamed; `rebac import` reads each format back."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `import` and `export`."""
    parent = connection_parent()
    importer = subparsers.add_parser(
        "import",
        parents=[parent],
        help="load relationships from a file (tuples, CSV, JSON lines, validation YAML)",
        description="Create every relationship of FILE, in atomic batches, with progress and resume.",
        epilog=_IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    importer.add_argument("file", metavar="FILE", help="the file to import (`-`: stdin)")
    importer.add_argument("--format", choices=IMPORT_FORMATS, default="auto", help="default: by extension")
    importer.add_argument(
        "--batch-size",
        type=int,
        default=MAX_BATCH,
        metavar="N",
        help=f"records per atomic batch (1-{MAX_BATCH})",
    )
    importer.add_argument(
        "--skip", type=int, default=0, metavar="N", help="skip the first N records (resume)"
    )
    importer.add_argument("--json", action="store_true", dest="as_json", help="print the summary as JSON")
    importer.set_defaults(handler=_import)
    exporter = subparsers.add_parser(
        "export",
        parents=[parent],
        help="stream every relationship to stdout",
        description="Stream every relationship (at one revision) to stdout.",
        epilog=_EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exporter.add_argument("--format", choices=EXPORT_FORMATS, default="tuples", help="default: tuples")
    exporter.add_argument("--consistency", metavar="MODE", help=CONSISTENCY_HELP)
    exporter.set_defaults(handler=_export)


class Progress:
    """Import progress on `stream`: a redrawn bar on a terminal, a plain line now and then otherwise."""

    def __init__(self, total: int | None, *, stream: TextIO, tty: bool) -> None:
        self.total = total
        self.stream = stream
        self.tty = tty
        self.started = time.monotonic()
        self._last_plain = self.started
        self._last_draw = 0.0

    def rate(self, done: int) -> float:
        """Records per second so far."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return done / elapsed

    def line(self, done: int) -> str:
        """The progress text for `done` records (with a bar when the total is known)."""
        rate = self.rate(done)
        if self.total:
            fraction = min(done / self.total, 1.0)
            width = 30
            filled = int(fraction * width)
            bar = "█" * filled + "░" * (width - filled)
            eta = (self.total - done) / rate if rate > 0 else 0.0
            return f"[{bar}] {done:,}/{self.total:,} {fraction:4.0%}  {rate:,.0f}/s  eta {eta:,.0f}s"
        return f"{done:,} imported  {rate:,.0f}/s"

    def update(self, done: int) -> None:
        """Report `done` records (throttled to every few seconds when not a terminal)."""
        now = time.monotonic()
        if self.tty:
            # Redraw at most ten times a second: small batches would otherwise flood the terminal.
            if now - self._last_draw >= _TTY_REDRAW_SECONDS or done == self.total:
                self._last_draw = now
                self.stream.write("\r" + self.line(done) + "\x1b[K")
                self.stream.flush()
            return
        if now - self._last_plain >= _PLAIN_PROGRESS_SECONDS:
            self._last_plain = now
            print(f"import: {self.line(done)}", file=self.stream, flush=True)

    def finish(self) -> None:
        """End the redrawn line so later messages start on their own."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass(slots=True)
class ImportOutcome:
    """How far an import got (updated batch by batch): records imported by this run, last token.

    `aborted` means a second Ctrl-C cancelled the batch in flight, which may or may not
    have been written.
    """

    imported: int = 0
    token: str | None = None
    error: BaseException | None = None
    interrupted: bool = False
    aborted: bool = False
    failed_batch: str | None = None
    """Where the failed batch came from: ``file:3 to file:1002``."""


def resume_command(argv: Sequence[str], skip: int) -> str:
    """The command line that resumes an import after `skip` records (replacing any --skip)."""
    words: list[str] = []
    rest = iter(argv)
    for word in rest:
        if word == "--skip":
            next(rest, None)
            continue
        if word.startswith("--skip="):
            continue
        words.append(word)
    return shlex.join(["rebac", *words, "--skip", str(skip)])


def _records(args: argparse.Namespace) -> tuple[Iterator[ImportRecord], int | None]:
    """The records to import after --skip, and their count when the input can be read twice."""
    fmt = detect_format(args.file, args.format)
    if args.file == "-":
        return itertools.islice(_read_records("stdin", sys.stdin, fmt), args.skip, None), None
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{args.file}: no such file")
    # First pass: validate every record (nothing is written if one is malformed) and count.
    total = sum(1 for _ in _read_records(args.file, _file_lines(path), fmt))
    if args.skip > total:
        raise CliError(f"--skip {args.skip}: {args.file} has only {total} records")
    records = itertools.islice(_read_records(args.file, _file_lines(path), fmt), args.skip, None)
    return records, total - args.skip


def _file_lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            yield from handle
    except UnicodeDecodeError as err:
        raise CliError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise CliError(f"{path}: cannot read: {err.strerror}") from None


async def _run_import(
    client: RebacClient,
    records: Iterator[ImportRecord],
    batch_size: int,
    progress: Progress,
    *,
    stop: asyncio.Event,
    outcome: ImportOutcome,
) -> None:
    """Send batches until the records run out, one fails, or `stop` is set; updates `outcome`."""
    while not stop.is_set():
        try:
            batch = list(itertools.islice(records, batch_size))
        except CliError as err:  # a malformed record read from stdin (files were checked first)
            outcome.error = err
            return
        if not batch:
            break
        try:
            count, token = await client.import_relationships(
                [r.relationship for r in batch], batch_size=len(batch)
            )
        except Exception as err:  # noqa: BLE001 - reported with the resume hint by the caller
            outcome.error = err
            outcome.failed_batch = f"{batch[0].where} to {batch[-1].where}"
            return
        outcome.imported += int(count)
        outcome.token = token
        progress.update(outcome.imported)
    outcome.interrupted = stop.is_set()


def _import(args: argparse.Namespace) -> int:
    if not 1 <= args.batch_size <= MAX_BATCH:
        raise CliError(f"--batch-size must be between 1 and {MAX_BATCH} (one server transaction)")
    if args.skip < 0:
        raise CliError("--skip must not be negative")
    settings = resolve_settings(args)
    records, total = _records(args)
    progress = Progress(total, stream=sys.stderr, tty=sys.stderr.isatty())
    outcome = _drive_import(settings, records, args.batch_size, progress)
    progress.finish()
    done = args.skip + outcome.imported
    resume = resume_command(sys.argv[1:], done)
    if outcome.error is not None:
        error = (
            outcome.error if isinstance(outcome.error, CliError) else error_to_cli(outcome.error, settings)
        )
        where = f" (in the batch {outcome.failed_batch})" if outcome.failed_batch else ""
        print(f"rebac: error: {error}{where}", file=sys.stderr)
        print(
            f"rebac: import stopped after {done:,} records ({outcome.imported:,} imported by this run); "
            f"the failed batch was not written. Fix the problem, then resume with: {resume}",
            file=sys.stderr,
        )
        return error.exit_code
    elapsed = time.monotonic() - progress.started
    if outcome.interrupted:
        print(
            f"rebac: interrupted after {done:,} records ({outcome.imported:,} imported by this run; "
            f"every batch is atomic). Resume with: {resume}",
            file=sys.stderr,
        )
        if outcome.aborted:
            print(
                "rebac: the batch in flight was abandoned and may or may not have been written; if the "
                f"resumed import reports that a relationship already exists, add {args.batch_size} to --skip",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
    rate = outcome.imported / elapsed if elapsed > 0 else 0.0
    if args.as_json:
        print_json(
            {
                "imported": outcome.imported,
                "skipped": args.skip,
                "seconds": round(elapsed, 3),
                "rate": round(rate, 1),
                "written_at": outcome.token,
            }
        )
    else:
        print(
            f"imported {outcome.imported:,} relationships in {elapsed:.1f}s ({rate:,.0f}/s)", file=sys.stderr
        )
        if outcome.token:
            print(outcome.token)
    return EXIT_OK


def _drive_import(
    settings: ConnectionSettings, records: Iterator[ImportRecord], batch_size: int, progress: Progress
) -> ImportOutcome:
    """Run the import loop; the first Ctrl-C finishes the batch in flight, a second one aborts."""
    outcome = ImportOutcome()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_interrupt() -> None:
            if stop.is_set() and task is not None:
                task.cancel()
            stop.set()
            print("\nrebac: finishing the batch in flight (Ctrl-C again to abort)", file=sys.stderr)

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
        client = open_client(settings)
        try:
            await _run_import(client, records, batch_size, progress, stop=stop, outcome=outcome)
        finally:
            await client.close()

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        outcome.interrupted = outcome.aborted = True
    return outcome


def _export(args: argparse.Namespace) -> int:
    consistency: Consistency = parse_consistency(args.consistency)
    fmt: str = args.format

    async def work(client: RebacClient) -> int:
        count = 0
        out = sys.stdout
        if fmt == "csv":
            out.write("resource,relation,subject,caveat,expiration\n")
        async for relationship in client.export(consistency=consistency):
            out.write(format_relationship(relationship, fmt) + "\n")
            count += 1
        out.flush()
        return count

    run_client(args, work)
    return EXIT_OK
