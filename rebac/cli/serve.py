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
            "Serve the rebac gRPC API. Datastore: --datastore-uri for PostgreSQL, --datastore memory "
            "for a throwaway run, otherwise an embedded PostgreSQL whose data directory is printed."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from rebac_server.app import serve  # noqa: PLC0415 - grpc loads only when serving
    from rebac_server.config import config_from_args  # noqa: PLC0415

    return serve(config_from_args(args))
