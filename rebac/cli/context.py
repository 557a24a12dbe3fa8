"""`rebac context set|use|list|remove`: named connection settings, like zed's contexts.

A context saves an endpoint, a token and TLS choices under a name in the contexts file
(`rebac.cli.connection.config_path`). The current context fills in whatever flags and
environment variables leave unset. Tokens are never printed: `list` shows only whether
one is saved.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace

from rebac.cli import EXIT_OK, CliError
from rebac.cli.connection import ConnectionSettings, ContextStore, config_path
from rebac.cli.output import palette_for, print_json, render_table

__all__ = ["register"]

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

_EPILOG = """\
examples:
  rebac context set local --endpoint localhost:50051 --token dev-key --insecure
  rebac context set prod --endpoint authz.example.com:443 --token "$KEY" --ca ca.pem
  rebac context use prod
  rebac context list
  rebac context remove local

Precedence: command-line flags > REBAC_* environment variables > the current context
(or --use-context NAME / REBAC_CONTEXT) > defaults. The file is $REBAC_CLI_CONFIG or
~/.config/rebac/contexts.json (mode 0600: it holds tokens)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `context` command group."""
    parser = subparsers.add_parser(
        "context",
        help="save and switch named connections (endpoint, token, TLS)",
        description="Manage named connection contexts.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = parser.add_subparsers(dest="context_command", metavar="SUBCOMMAND", required=True)
    setter = group.add_parser(
        "set",
        help="create or update a context",
        description="Create or update context NAME; the first context saved becomes current.",
        epilog="example:\n  rebac context set local --endpoint localhost:50051 --token dev-key --insecure",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    setter.add_argument("name", metavar="NAME")
    setter.add_argument("--endpoint", metavar="HOST:PORT")
    setter.add_argument("--token", metavar="KEY")
    tls = setter.add_mutually_exclusive_group()
    tls.add_argument("--insecure", action="store_true", default=None, help="plaintext, no TLS")
    tls.add_argument("--tls", dest="insecure", action="store_false", help="always TLS (even on loopback)")
    setter.add_argument("--ca", metavar="PEM")
    setter.add_argument("--cert", metavar="PEM")
    setter.add_argument("--key", metavar="PEM")
    setter.set_defaults(handler=_set)
    use = group.add_parser(
        "use",
        help="make a context current",
        epilog="example:\n  rebac context use prod",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    use.add_argument("name", metavar="NAME")
    use.set_defaults(handler=_use)
    lister = group.add_parser(
        "list",
        help="list contexts (tokens hidden)",
        epilog="example:\n  rebac context list --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lister.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    lister.set_defaults(handler=_list)
    remove = group.add_parser(
        "remove",
        help="delete a context",
        epilog="example:\n  rebac context remove local",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(handler=_remove)


def _store() -> ContextStore:
    return ContextStore.load(config_path())


def _set(args: argparse.Namespace) -> int:
    if not _NAME_RE.fullmatch(args.name):
        raise CliError(f"context name {args.name!r}: use letters, digits, `_`, `.` and `-` (up to 64)")
    store = _store()
    settings = store.contexts.get(args.name, ConnectionSettings())
    changes = {
        name: getattr(args, name)
        for name in ("endpoint", "token", "insecure", "ca", "cert", "key")
        if getattr(args, name) is not None
    }
    settings = replace(settings, **changes)
    if ":" not in settings.endpoint:
        raise CliError(f"--endpoint {settings.endpoint!r}: expected HOST:PORT (e.g. localhost:50051)")
    if (settings.cert is None) != (settings.key is None):
        raise CliError("--cert and --key go together (a client certificate needs its private key)")
    store.contexts[args.name] = settings
    if store.current is None or store.current not in store.contexts:
        store.current = args.name
    store.save()
    switch = f"; switch to it with `rebac context use {args.name}`"
    current = " (current)" if store.current == args.name else switch
    print(f"saved context {args.name} in {store.path}{current}")
    return EXIT_OK


def _use(args: argparse.Namespace) -> int:
    store = _store()
    store.get(args.name)
    store.current = args.name
    store.save()
    print(f"current context: {args.name}")
    return EXIT_OK


def _describe(name: str, settings: ConnectionSettings, current: str | None) -> dict[str, object]:
    return {
        "name": name,
        "current": name == current,
        "endpoint": settings.endpoint,
        "token": "set" if settings.token else None,
        "tls": settings.uses_tls,
        "ca": settings.ca,
        "cert": settings.cert,
    }


def _list(args: argparse.Namespace) -> int:
    store = _store()
    rows = [_describe(name, s, store.current) for name, s in sorted(store.contexts.items())]
    if args.as_json:
        print_json({"config": str(store.path), "current": store.current, "contexts": rows})
        return EXIT_OK
    if not rows:
        print(
            f"no contexts saved in {store.path}; add one with `rebac context set NAME --endpoint HOST:PORT`"
        )
        return EXIT_OK
    table = [
        [
            "*" if row["current"] else "",
            str(row["name"]),
            str(row["endpoint"]),
            "set" if row["token"] else "-",
            "tls" if row["tls"] else "plaintext",
        ]
        for row in rows
    ]
    print(
        render_table(["", "NAME", "ENDPOINT", "TOKEN", "TRANSPORT"], table, palette=palette_for(sys.stdout))
    )
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    store = _store()
    store.get(args.name)
    del store.contexts[args.name]
    if store.current == args.name:
        store.current = None
    store.save()
    print(f"removed context {args.name}")
    return EXIT_OK
