"""How a client command finds and talks to the server: options, named contexts, errors.

Every client command takes the same connection options (added from `connection_parent`):

    --endpoint HOST:PORT   env REBAC_ENDPOINT, default localhost:50051
    --token KEY            env REBAC_TOKEN (a bearer preshared key)
    --insecure             env REBAC_INSECURE=1: plaintext, no TLS
    --ca PEM, --cert PEM, --key PEM   env REBAC_CA / REBAC_CERT / REBAC_KEY: TLS roots, mTLS
    --use-context NAME     env REBAC_CONTEXT: use this saved context instead of the current one

Precedence, highest first: flag, environment variable, the chosen (or current) named
context, then the defaults. Without `--insecure` the connection uses TLS, except for a
loopback endpoint (localhost, 127.0.0.0/8, ::1) with no CA or client certificate, which
is plaintext because that is how `rebac serve` starts by default.

Named contexts live in one JSON file (mode 0600, it holds tokens): ``$REBAC_CLI_CONFIG`` if
set, else ``contexts.json`` in the XDG config directory (``~/.config/rebac``). `run_client`
turns every failure into a `CliError` with one line and the documented exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rebac.cli import EXIT_DENIED, EXIT_SERVER, EXIT_USAGE, CliError
from rebac.errors import (
    AuthenticationError,
    AuthorizationError,
    BugError,
    CaveatEvaluationError,
    DatastoreError,
    InvalidRequestError,
    RebacError,
    SchemaMissingError,
    SchemaViolationError,
    StaleRevisionError,
    UnknownDefinitionError,
    UnknownRelationError,
)

if TYPE_CHECKING:
    from rebac.client import RebacClient

__all__ = [
    "DEFAULT_ENDPOINT",
    "ConnectionSettings",
    "ContextStore",
    "config_path",
    "connection_parent",
    "error_to_cli",
    "open_client",
    "resolve_settings",
    "run_client",
]

DEFAULT_ENDPOINT = "localhost:50051"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Where and how to connect; `insecure` None means "decide from the endpoint"."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = None
    insecure: bool | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @property
    def uses_tls(self) -> bool:
        """TLS unless insecure; an undecided loopback endpoint without certificates is plaintext."""
        if self.insecure is not None:
            return not self.insecure
        if self.ca or self.cert or self.key:
            return True
        return not _is_loopback(self.endpoint)


def _is_loopback(endpoint: str) -> bool:
    host = endpoint.rpartition(":")[0] or endpoint
    host = host.removeprefix("[").removesuffix("]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CliError(f"{name}={value!r}: expected 1 or 0 (true/false)")


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """The contexts file: ``$REBAC_CLI_CONFIG``, else ``<XDG config dir>/rebac/contexts.json``."""
    env = os.environ if env is None else env
    if env.get("REBAC_CLI_CONFIG"):
        return Path(env["REBAC_CLI_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rebac" / "contexts.json"


@dataclass
class ContextStore:
    """The named contexts file: a current name and settings per name.

    `load` returns an empty store when the file does not exist; a file that is not
    valid raises CliError naming the path. `save` writes atomically with mode 0600.
    """

    path: Path
    current: str | None = None
    contexts: dict[str, ConnectionSettings] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ContextStore:
        """Read `path` (missing: empty store)."""
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except OSError as err:
            raise CliError(f"{path}: cannot read the contexts file: {err.strerror}") from None
        try:
            data = json.loads(raw)
            contexts = {
                str(name): ConnectionSettings(**{k: v for k, v in value.items() if v is not None})
                for name, value in data.get("contexts", {}).items()
            }
            current = data.get("current")
        except (ValueError, TypeError, AttributeError) as err:
            raise CliError(f"{path}: not a valid contexts file ({err}); fix or delete it") from None
        if current is not None and not isinstance(current, str):
            raise CliError(f"{path}: not a valid contexts file (`current` must be a name)")
        return cls(path, current, contexts)

    def save(self) -> None:
        """Write the file atomically (temp file + rename), readable only by the owner."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "current": self.current,
            "contexts": {
                name: {k: v for k, v in asdict(s).items() if v is not None}
                for name, s in sorted(self.contexts.items())
            },
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".contexts-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=2)
                out.write("\n")
            Path(tmp).chmod(0o600)
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, name: str) -> ConnectionSettings:
        """The context called `name`; CliError listing the known names if there is none."""
        try:
            return self.contexts[name]
        except KeyError:
            known = ", ".join(sorted(self.contexts)) or "none saved yet"
            raise CliError(
                f"no context named {name!r} (known: {known}); create it with `rebac context set {name} ...`"
            ) from None


def connection_parent() -> argparse.ArgumentParser:
    """A parent parser with the connection options every client command shares."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--endpoint",
        metavar="HOST:PORT",
        help=f"server address (env REBAC_ENDPOINT; default {DEFAULT_ENDPOINT})",
    )
    group.add_argument("--token", metavar="KEY", help="bearer preshared key (env REBAC_TOKEN)")
    group.add_argument(
        "--insecure", action="store_true", default=None, help="plaintext, no TLS (env REBAC_INSECURE=1)"
    )
    group.add_argument("--ca", metavar="PEM", help="CA certificates to trust for TLS (env REBAC_CA)")
    group.add_argument("--cert", metavar="PEM", help="client certificate for mTLS (env REBAC_CERT)")
    group.add_argument("--key", metavar="PEM", help="client private key for mTLS (env REBAC_KEY)")
    group.add_argument(
        "--use-context",
        dest="context_name",
        metavar="NAME",
        help="use this saved context (env REBAC_CONTEXT)",
    )
    return parent


def resolve_settings(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ConnectionSettings:
    """Flags > environment > the chosen or current context > defaults."""
    env = os.environ if env is None else env
    store = ContextStore.load(config_path(env))
    chosen = getattr(args, "context_name", None) or env.get("REBAC_CONTEXT") or None
    if chosen:
        settings = store.get(chosen)
    elif store.current and store.current in store.contexts:
        settings = store.contexts[store.current]
    else:
        settings = ConnectionSettings()
    overrides: dict[str, Any] = {}
    for name, variable in (
        ("endpoint", "REBAC_ENDPOINT"),
        ("token", "REBAC_TOKEN"),
        ("ca", "REBAC_CA"),
        ("cert", "REBAC_CERT"),
        ("key", "REBAC_KEY"),
    ):
        flag = getattr(args, name, None)
        if flag is not None:
            overrides[name] = flag
        elif env.get(variable):
            overrides[name] = env[variable]
    if getattr(args, "insecure", None):
        overrides["insecure"] = True
    elif env.get("REBAC_INSECURE") is not None:
        overrides["insecure"] = _parse_bool(env["REBAC_INSECURE"], "REBAC_INSECURE") or None
    settings = replace(settings, **overrides)
    if ":" not in settings.endpoint:
        raise CliError(f"endpoint {settings.endpoint!r}: expected HOST:PORT (e.g. localhost:50051)")
    if (settings.cert is None) != (settings.key is None):
        raise CliError("--cert and --key go together (a client certificate needs its private key)")
    return settings


def _read_pem(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as err:
        raise CliError(f"{what} {path}: cannot read: {err.strerror}") from None


def open_client(settings: ConnectionSettings) -> RebacClient:
    """A client for `settings` (call inside a running event loop; close it when done)."""
    # gRPC's C core writes handshake and connection failures straight to stderr; the CLI
    # reports every failure as one line of its own, so it silences them unless asked not to.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from rebac.client import RebacClient  # noqa: PLC0415 - grpc loads only for client commands

    return RebacClient(
        settings.endpoint,
        token=settings.token,
        tls=settings.uses_tls,
        root_certificates=_read_pem(settings.ca, "--ca"),
        certificate_chain=_read_pem(settings.cert, "--cert"),
        private_key=_read_pem(settings.key, "--key"),
        # Each CLI call is one short process; a second retry round only delays the message.
        max_retries=1,
    )


def run_client(
    args: argparse.Namespace,
    work: Callable[[RebacClient], Awaitable[_T]],
    *,
    settings: ConnectionSettings | None = None,
) -> _T:
    """Connect with the resolved settings, run `work(client)`, close; errors become CliError."""
    settings = settings or resolve_settings(args)

    async def main() -> _T:
        client = open_client(settings)
        try:
            return await work(client)
        finally:
            await client.close()

    try:
        return asyncio.run(main())
    except CliError:
        raise
    except BrokenPipeError:
        # The reader went away (`| head`): silence the final flush too, and let main() exit 0.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise
    except Exception as err:  # noqa: BLE001 - every failure becomes one line, never a traceback
        raise error_to_cli(err, settings) from None


def error_to_cli(err: BaseException, settings: ConnectionSettings) -> CliError:
    """One line and an exit code for a failure of a client call (see `rebac --help`).

    Connection, authentication and server-side failures (including server bugs) exit 3;
    malformed input, unknown types or relations, relationships the schema forbids,
    caveat context the caveat cannot use (e.g. a number for a string parameter) and
    garbage-collected revision tokens exit 2; other refusals (already exists,
    precondition failed, no schema yet, schema change refused) exit 1.
    """
    if isinstance(err, RebacError):
        return _rebac_error_to_cli(err, settings)
    grpc_error = _grpc_error_to_cli(err, settings)
    if grpc_error is not None:
        return grpc_error
    return CliError(f"{type(err).__name__}: {err}", EXIT_SERVER)


# First match wins: (error classes, exit code, message template).
_ERROR_RULES: tuple[tuple[tuple[type[RebacError], ...], int, str], ...] = (
    (
        (AuthenticationError,),
        EXIT_SERVER,
        "{endpoint} rejected the credentials: {message} (pass the right key with --token or REBAC_TOKEN)",
    ),
    ((AuthorizationError,), EXIT_SERVER, "{message} (the key lacks the scope this command needs)"),
    (
        (
            InvalidRequestError,
            UnknownDefinitionError,
            UnknownRelationError,
            SchemaViolationError,
            StaleRevisionError,
            CaveatEvaluationError,
        ),
        EXIT_USAGE,
        "{message}",
    ),
    ((DatastoreError,), EXIT_SERVER, "server datastore error: {message}"),
    ((BugError,), EXIT_SERVER, "server error: {message}"),
    ((SchemaMissingError,), EXIT_DENIED, "{message} (write one with `rebac schema write FILE`)"),
)


# Request fields the CLI fills from one flag or argument: a server error about such a field
# names the flag or argument the user typed instead of the field's path in the request.
_FIELD_TO_CLI = {
    "optional_cursor": "--cursor",
    "consistency": "--consistency",
    "context": "--context",
    "resource": "RESOURCE",
    "permission": "PERMISSION",
    "subject": "SUBJECT",
}


def _user_message(err: RebacError) -> str:
    """`str(err)`, with a leading request-field path (``optional_cursor.token: ...``) renamed."""
    text = str(err)
    field = getattr(err, "field", None)
    if not field or not text.startswith(f"{field}: "):
        return text
    name = _FIELD_TO_CLI.get(field.split(".", 1)[0])
    return text if name is None else f"{name}: {text[len(field) + 2 :]}"


def _rebac_error_to_cli(err: RebacError, settings: ConnectionSettings) -> CliError:
    message = _user_message(err)
    for classes, code, template in _ERROR_RULES:
        if isinstance(err, classes):
            return CliError(template.format(message=message, endpoint=settings.endpoint), code)
    return CliError(message, EXIT_DENIED)


def _grpc_error_to_cli(err: BaseException, settings: ConnectionSettings) -> CliError | None:
    import grpc  # noqa: PLC0415 - only reached after a client call failed

    if not isinstance(err, grpc.RpcError):
        return None
    code = err.code() if callable(getattr(err, "code", None)) else None
    details = (err.details() if callable(getattr(err, "details", None)) else None) or str(err)
    details = " ".join(str(details).split())
    if code is grpc.StatusCode.UNAVAILABLE:
        hint = "(is `rebac serve` running?"
        hint += " is it serving plaintext? then pass --insecure)" if settings.uses_tls else ")"
        return CliError(f"cannot reach rebac at {settings.endpoint}: {details} {hint}", EXIT_SERVER)
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return CliError(
            f"{settings.endpoint} rejected the credentials: {details} (pass --token or set REBAC_TOKEN)",
            EXIT_SERVER,
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return CliError(f"{settings.endpoint} did not answer in time: {details}", EXIT_SERVER)
    name = code.name if code is not None else "UNKNOWN"
    return CliError(f"server error {name}: {details}", EXIT_SERVER)
