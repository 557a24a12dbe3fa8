"""Server configuration: one frozen `ServerConfig`, from flags, env vars and an optional file.

Precedence, highest first: command-line flag, environment variable ``REBAC_<NAME>``
(e.g. ``REBAC_LISTEN``, ``REBAC_DATASTORE_URI``), the config file (``--config FILE`` or
``REBAC_CONFIG``; TOML, or YAML for ``.yaml``/``.yml``; keys are the option names, e.g.
``listen = "0.0.0.0:50051"``), then the defaults below. This module imports no grpc so
the CLI can build its parser cheaply.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from rebac.errors import InvalidRequestError
from rebac_server.auth import ALL_SCOPES, ApiKey, parse_key_file, parse_secret
from rebac_server.tracing import TRACING_MODES

__all__ = [
    "DEFAULT_LISTEN",
    "DatastoreKind",
    "ServerConfig",
    "add_arguments",
    "config_from_args",
    "is_loopback",
    "read_key_file",
    "reload_keys",
    "split_host_port",
]

DEFAULT_LISTEN = "127.0.0.1:50051"

DatastoreKind = Literal["memory", "postgres", "embedded"]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_PRESHARED_PREFIX = "preshared-"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything `rebac serve` needs; `validate()` checks cross-field rules.

    `datastore` is ``memory`` (one throwaway process), ``postgres`` (`datastore_uri`) or
    ``embedded`` (a PostgreSQL the server starts in `embedded_data_dir`). `audit_log` is
    a path, ``-`` for stderr, or None for off. `workers` > 1 forks processes that share
    the port with SO_REUSEPORT (forced to 1 for the memory datastore). `migrate` applies
    pending migrations to `datastore_uri` at start; without it the server refuses a
    database that is not at exactly the migration version it knows (the embedded
    PostgreSQL is always migrated: rebac owns it).
    """

    listen: str = DEFAULT_LISTEN
    datastore: DatastoreKind = "embedded"
    datastore_uri: str | None = None
    embedded_data_dir: Path | None = None
    keys: tuple[ApiKey, ...] = ()
    insecure_no_auth: bool = False
    workers: int = 1
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    audit_log: str | None = "-"
    metrics_listen: str | None = None
    max_depth: int = 50
    max_contextual_relationships: int = 100
    migrate: bool = False
    grace_period: float = 10.0
    max_message_bytes: int = 4 * 1024 * 1024
    max_updates_per_write: int = 1000
    key_file: Path | None = None
    log_level: str = "warning"
    tracing: str = "off"
    gc_interval: float = 180.0

    @property
    def effective_workers(self) -> int:
        """How many processes serve: 1 for the memory datastore (its state lives in one process)."""
        return 1 if self.datastore == "memory" else self.workers

    def validate(self) -> ServerConfig:
        """Return self if consistent; InvalidRequestError naming the option otherwise."""
        host, _ = split_host_port(self.listen)
        if not self.keys and not self.insecure_no_auth and not is_loopback(host):
            raise InvalidRequestError(
                f"refusing to listen on {self.listen} without keys: pass --preshared-key or --key-file, "
                "or --insecure-no-auth if something else protects this port",
                field="listen",
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidRequestError("--tls-cert and --tls-key go together", field="tls_cert")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise InvalidRequestError("--tls-client-ca needs --tls-cert and --tls-key", field="tls_client_ca")
        if self.datastore == "postgres" and not self.datastore_uri:
            raise InvalidRequestError("the postgres datastore needs --datastore-uri", field="datastore_uri")
        for name in ("workers", "max_depth", "max_message_bytes", "max_updates_per_write"):
            if getattr(self, name) < 1:
                raise InvalidRequestError(f"{name} must be at least 1", field=name)
        if self.grace_period < 0:
            raise InvalidRequestError("grace_period must not be negative", field="grace_period")
        if self.max_contextual_relationships < 0:
            raise InvalidRequestError(
                "max_contextual_relationships must not be negative", field="max_contextual_relationships"
            )
        self._validate_operations()
        return self

    def _validate_operations(self) -> None:
        if self.gc_interval < 0:
            raise InvalidRequestError("gc_interval must not be negative", field="gc_interval")
        if self.log_level.upper() not in _LOG_LEVELS:
            raise InvalidRequestError(
                f"log_level: expected one of {', '.join(_LOG_LEVELS).lower()}, got {self.log_level!r}",
                field="log_level",
            )
        if self.metrics_listen is not None:
            split_host_port(self.metrics_listen, field="metrics_listen")
        if self.tracing not in TRACING_MODES:
            raise InvalidRequestError(
                f"tracing: expected one of {', '.join(TRACING_MODES)}, got {self.tracing!r}", field="tracing"
            )


def split_host_port(address: str, *, field: str = "listen") -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port``; InvalidRequestError naming `field` if malformed."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise InvalidRequestError(f"{field}: expected host:port, got {address!r}", field=field)
    return host.removeprefix("[").removesuffix("]"), int(port_text)


def is_loopback(host: str) -> bool:
    """True if `host` only accepts local connections (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _path(value: Any) -> Path:
    return Path(str(value)).expanduser()


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _audit(value: Any) -> str | None:
    text = str(value)
    return None if text.lower() in {"", "off", "none", "false"} else text


# option name → converter; the env var is REBAC_<NAME.upper()>.
_OPTIONS: Mapping[str, Callable[[Any], Any]] = {
    "listen": str,
    "datastore": str,
    "datastore_uri": str,
    "embedded_data_dir": _path,
    "insecure_no_auth": _bool,
    "workers": int,
    "tls_cert": _path,
    "tls_key": _path,
    "tls_client_ca": _path,
    "audit_log": _audit,
    "metrics_listen": str,
    "max_depth": int,
    "max_contextual_relationships": int,
    "migrate": _bool,
    "grace_period": float,
    "max_message_bytes": int,
    "max_updates_per_write": int,
    "key_file": _path,
    "log_level": str,
    "tracing": str,
    "gc_interval": float,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `rebac serve` flags (every default None so the env and file can fill in)."""
    add = parser.add_argument
    add("--config", metavar="FILE", help="TOML or YAML config file (env REBAC_CONFIG)")
    add("--listen", metavar="HOST:PORT", help=f"gRPC address (default {DEFAULT_LISTEN})")
    add("--datastore-uri", metavar="URI", help="PostgreSQL DSN (postgresql://...)")
    add(
        "--datastore",
        choices=["memory", "postgres", "embedded"],
        help="memory: throwaway, one process; default: embedded PostgreSQL unless --datastore-uri",
    )
    add("--embedded-data-dir", metavar="DIR", help="data directory of the embedded PostgreSQL")
    add(
        "--preshared-key",
        action="append",
        metavar="SECRET",
        default=None,
        help="a bearer key with every scope (repeatable; sha256:HEX accepted)",
    )
    add("--key-file", metavar="FILE", help="keys, one per line: ID SECRET-or-sha256:HEX SCOPE[,SCOPE...]")
    add(
        "--insecure-no-auth",
        action="store_true",
        default=None,
        help="serve without keys on a non-loopback address (something else must protect it)",
    )
    add("--workers", type=int, metavar="N", help="worker processes sharing the port (default: CPU count)")
    add("--tls-cert", metavar="PEM", help="server certificate chain")
    add("--tls-key", metavar="PEM", help="server private key")
    add("--tls-client-ca", metavar="PEM", help="require client certificates signed by this CA (mTLS)")
    add("--audit-log", metavar="PATH", help="audit JSON lines to PATH, `-` for stderr (default), `off`")
    add("--metrics-listen", metavar="HOST:PORT", help="Prometheus /metrics address (worker i uses port+i)")
    add("--max-depth", type=int, metavar="N", help="maximum dispatch depth (default 50)")
    add(
        "--max-contextual-relationships",
        type=int,
        metavar="N",
        help="most contextual relationships one request may carry (default 100)",
    )
    add(
        "--migrate",
        action="store_true",
        default=None,
        help="apply pending migrations to --datastore-uri at start (otherwise an unmigrated database "
        "is refused; the embedded PostgreSQL is always migrated)",
    )
    add("--grace-period", type=float, metavar="SECONDS", help="drain time on SIGTERM (default 10)")
    add("--max-message-bytes", type=int, metavar="N", help="largest request message (default 4 MiB)")
    add("--log-level", choices=["debug", "info", "warning", "error"], help="log level (default warning)")
    add(
        "--tracing",
        choices=["off", "otel", "console", "otlp"],
        help="OpenTelemetry tracing (needs the opentelemetry packages; default off)",
    )
    add("--gc-interval", type=float, metavar="SECONDS", help="PostgreSQL GC period, 0 = off (default 180)")


def _load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as err:
        raise InvalidRequestError(f"cannot read config file {path}: {err.strerror}", field="config") from None
    try:
        data: Any = yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else tomllib.loads(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as err:
        raise InvalidRequestError(f"config file {path}: {err}", field="config") from None
    if not isinstance(data, dict):
        raise InvalidRequestError(f"config file {path}: expected a mapping of options", field="config")
    known = {*_OPTIONS, "preshared_keys"}
    normalized = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(normalized) - known)
    if unknown:
        raise InvalidRequestError(
            f"config file {path}: unknown option(s) {', '.join(unknown)}", field="config"
        )
    return normalized


def config_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ServerConfig:
    """Merge flags, env vars (``REBAC_*``), the config file and defaults; validated."""
    env = os.environ if env is None else env
    config_path = getattr(args, "config", None) or env.get("REBAC_CONFIG")
    file_values = _load_file(_path(config_path)) if config_path else {}
    values: dict[str, Any] = {"workers": os.cpu_count() or 1}
    for name, convert in _OPTIONS.items():
        raw = getattr(args, name, None)
        if raw is None:
            raw = env.get(f"REBAC_{name.upper()}")
        if raw is None:
            raw = file_values.get(name)
        if raw is not None:
            try:
                values[name] = convert(raw)
            except ValueError:
                raise InvalidRequestError(f"{name}: invalid value {raw!r}", field=name) from None
    if values.get("datastore") is None:
        values["datastore"] = "postgres" if values.get("datastore_uri") else "embedded"
    if values["datastore"] not in {"memory", "postgres", "embedded"}:
        raise InvalidRequestError(f"datastore: unknown kind {values['datastore']!r}", field="datastore")
    values["keys"] = _keys(args, env, file_values)
    known = {f.name for f in fields(ServerConfig)}
    return replace(ServerConfig(), **{k: v for k, v in values.items() if k in known}).validate()


def _keys(
    args: argparse.Namespace, env: Mapping[str, str], file_values: Mapping[str, Any]
) -> tuple[ApiKey, ...]:
    secrets: list[str] = list(getattr(args, "preshared_key", None) or [])
    if not secrets and env.get("REBAC_PRESHARED_KEY"):
        secrets = [s for s in env["REBAC_PRESHARED_KEY"].split(",") if s]
    if not secrets:
        configured = file_values.get("preshared_keys") or []
        secrets = [configured] if isinstance(configured, str) else [str(s) for s in configured]
    keys = [
        ApiKey(f"{_PRESHARED_PREFIX}{i}", parse_secret(secret, what=f"preshared key #{i}"), ALL_SCOPES)
        for i, secret in enumerate(secrets, start=1)
    ]
    key_file = getattr(args, "key_file", None) or env.get("REBAC_KEY_FILE") or file_values.get("key_file")
    return _combine(keys, read_key_file(_path(key_file)) if key_file else ())


def _combine(preshared: Sequence[ApiKey], from_file: Sequence[ApiKey]) -> tuple[ApiKey, ...]:
    keys = (*preshared, *from_file)
    ids = [key.id for key in keys]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InvalidRequestError(f"duplicate key id(s): {', '.join(duplicates)}", field="key_file")
    return keys


def read_key_file(path: Path) -> tuple[ApiKey, ...]:
    """The keys in the key file at `path`; InvalidRequestError naming the file (never a secret)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise InvalidRequestError(f"cannot read key file {path}: {err.strerror}", field="key_file") from None
    keys = parse_key_file(text, source=str(path))
    reserved = sorted(key.id for key in keys if key.id.startswith(_PRESHARED_PREFIX))
    if reserved:
        raise InvalidRequestError(
            f"key file {path}: ids starting with {_PRESHARED_PREFIX!r} are reserved for --preshared-key "
            f"({', '.join(reserved)})",
            field="key_file",
        )
    return keys


def reload_keys(config: ServerConfig) -> tuple[ApiKey, ...]:
    """The keys now in force: the preshared keys of `config` plus `config.key_file` read again.

    InvalidRequestError if the file is unreadable or invalid (the caller keeps the old keys).
    """
    preshared = [key for key in config.keys if key.id.startswith(_PRESHARED_PREFIX)]
    return _combine(preshared, read_key_file(config.key_file) if config.key_file else ())
