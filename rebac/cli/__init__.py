"""The `rebac` command line.

Each command group lives in its own module under `rebac.cli` and exposes
``register(subparsers) -> None``, which adds its sub-commands with
``parser.set_defaults(handler=fn)``; a handler takes the parsed namespace and returns
an exit code. Heavy imports (grpc, asyncpg) happen inside handlers so offline commands
start fast.

Exit codes: 0 ok; 1 a failure or a denial that was asked about; 2 usage or input error;
3 server or connection error. A user error prints one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Sequence

from rebac.errors import (
    DatastoreError,
    InvalidRequestError,
    RebacError,
)

__all__ = ["EXIT_DENIED", "EXIT_OK", "EXIT_SERVER", "EXIT_USAGE", "CliError", "main"]

EXIT_OK = 0
EXIT_DENIED = 1
EXIT_USAGE = 2
EXIT_SERVER = 3

# One line per command module; each module registers its own sub-commands.
_COMMAND_MODULES: tuple[str, ...] = (
    "migrate",
    "schema",
    "schema_online",
    "serve",
    "validate",
    "rel",
    "check",
    "expand",
    "lookup",
    "bulk",
    "context",
    "completion",
)


class CliError(Exception):
    """A user-facing error: printed as one line, exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


Handler = Callable[[argparse.Namespace], int]

_EPILOG = """\
exit codes:
  0  ok (for `check`: the permission is granted)
  1  a failure, or a denial that was asked about (`check` prints false or caveated)
  2  usage or input error (malformed tuple, unknown type or relation, bad flag)
  3  server or connection error (server down, credentials rejected, datastore failure)

client commands connect with --endpoint/--token/--insecure, or REBAC_ENDPOINT,
REBAC_TOKEN and REBAC_INSECURE=1, or a saved `rebac context`.

example:
  rebac serve --datastore memory &
  rebac schema write schema.zed
  rebac rel create document:42#viewer@user:ann
  rebac check document:42 view user:ann"""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="rebac",
        description="rebac: relationship-based authorization (SpiceDB schema language).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rebac {installed_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"rebac.cli.{name}")
        module.register(subparsers)
    return parser


def installed_version() -> str:
    """The installed distribution's version, or ``unknown`` when run from an uninstalled tree."""
    try:
        return importlib.metadata.version("rebac")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _exit_code_for(err: RebacError) -> int:
    if isinstance(err, InvalidRequestError):
        return EXIT_USAGE
    if isinstance(err, DatastoreError):
        return EXIT_SERVER
    return EXIT_DENIED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to sys.exit)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except CliError as err:
        print(f"rebac: error: {err}", file=sys.stderr)
        return err.exit_code
    except RebacError as err:
        print(f"rebac: error: {err}", file=sys.stderr)
        return _exit_code_for(err)
    except KeyboardInterrupt:
        print("rebac: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
