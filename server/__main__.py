"""`python -m rebac_server [flags]`: the same as `rebac serve`."""

from __future__ import annotations

import argparse
import sys

from rebac.errors import RebacError
from rebac_server.config import add_arguments, config_from_args


def main(argv: list[str] | None = None) -> int:
    """Parse flags, load the config and serve; one error line and exit 2 on bad config."""
    parser = argparse.ArgumentParser(prog="python -m rebac_server", description="Serve the rebac gRPC API.")
    add_arguments(parser)
    try:
        config = config_from_args(parser.parse_args(argv))
    except RebacError as err:
        print(f"rebac: error: {err}", file=sys.stderr)  # noqa: T201 - the user-facing error line
        return 2
    from rebac_server.app import serve  # noqa: PLC0415 - grpc loads only when serving

    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
