"""Bearer preshared keys: authentication first, then authorization by scope; fail closed.

A caller sends ``authorization: bearer <secret>``. The server keeps only SHA-256 digests
(configured directly as ``sha256:HEX`` or computed from a secret at startup) and compares
the digest of the presented secret against every key with `hmac.compare_digest`, so the
time taken does not depend on which key (if any) matched or where they differ.

Scopes: ``check`` (reads: Check, lookups, Expand, reads of relationships and schema),
``write`` (relationship writes), ``schema`` (schema writes), ``admin`` (everything).
Health checking and server reflection need no key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from rebac.errors import AuthenticationError, AuthorizationError, InvalidRequestError

__all__ = [
    "ALL_SCOPES",
    "METHOD_SCOPES",
    "PUBLIC_METHOD_PREFIXES",
    "ApiKey",
    "KeyRing",
    "Scope",
    "is_public",
    "parse_key_file",
    "parse_secret",
]


class Scope(Enum):
    """What a key may do."""

    CHECK = "check"
    WRITE = "write"
    SCHEMA = "schema"
    ADMIN = "admin"


ALL_SCOPES = frozenset(Scope)

_SHA256_PREFIX = "sha256:"
_BEARER = "bearer "

PUBLIC_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
"""Methods that need no key (health checks, reflection)."""

_PERMISSIONS = "/rebac.v1.PermissionsService/"
_RELATIONSHIPS = "/rebac.v1.RelationshipsService/"
_SCHEMA = "/rebac.v1.SchemaService/"

METHOD_SCOPES: Mapping[str, Scope] = {
    _PERMISSIONS + "Check": Scope.CHECK,
    _PERMISSIONS + "CheckBulk": Scope.CHECK,
    _PERMISSIONS + "Expand": Scope.CHECK,
    _PERMISSIONS + "LookupResources": Scope.CHECK,
    _PERMISSIONS + "LookupSubjects": Scope.CHECK,
    _RELATIONSHIPS + "WriteRelationships": Scope.WRITE,
    _RELATIONSHIPS + "DeleteRelationships": Scope.WRITE,
    _RELATIONSHIPS + "ImportRelationships": Scope.WRITE,
    _RELATIONSHIPS + "ReadRelationships": Scope.CHECK,
    _RELATIONSHIPS + "ExportRelationships": Scope.CHECK,
    _RELATIONSHIPS + "Watch": Scope.CHECK,
    _SCHEMA + "WriteSchema": Scope.SCHEMA,
    _SCHEMA + "ReadSchema": Scope.CHECK,
}
"""The scope each RPC needs; a method not listed needs ``admin`` (fail closed)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured key: an id (safe to log), the secret's SHA-256 digest, its scopes."""

    id: str
    digest: bytes = field(repr=False)
    scopes: frozenset[Scope] = ALL_SCOPES

    def allows(self, scope: Scope) -> bool:
        """True if this key has `scope` or ``admin``."""
        return scope in self.scopes or Scope.ADMIN in self.scopes


def parse_secret(value: str, *, what: str = "key") -> bytes:
    """The digest for a configured secret: ``sha256:HEX`` as given, else SHA-256 of the text."""
    if value.startswith(_SHA256_PREFIX):
        hex_digest = value.removeprefix(_SHA256_PREFIX)
        try:
            digest = bytes.fromhex(hex_digest)
        except ValueError:
            digest = b""
        if len(digest) != hashlib.sha256().digest_size:
            raise InvalidRequestError(f"{what}: `sha256:` must be followed by 64 hex digits", field=what)
        return digest
    if not value:
        raise InvalidRequestError(f"{what}: empty secret", field=what)
    return hashlib.sha256(value.encode()).digest()


def parse_key_file(text: str, *, source: str = "key file") -> tuple[ApiKey, ...]:
    """Parse ``ID SECRET-or-sha256:HEX SCOPE[,SCOPE...]`` lines (``#`` comments, blank lines).

    Errors name the line but never echo the secret.
    """
    keys: list[ApiKey] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{number}"
        parts = line.split()
        if len(parts) != 3:
            raise InvalidRequestError(
                f"{where}: expected `ID SECRET-or-sha256:HEX SCOPE[,SCOPE...]` (3 fields, got {len(parts)})",
                field="key_file",
            )
        key_id, secret, scope_text = parts
        if key_id in seen:
            raise InvalidRequestError(f"{where}: duplicate key id {key_id!r}", field="key_file")
        seen.add(key_id)
        keys.append(ApiKey(key_id, parse_secret(secret, what=where), _parse_scopes(scope_text, where)))
    return tuple(keys)


def _parse_scopes(text: str, where: str) -> frozenset[Scope]:
    scopes: set[Scope] = set()
    for name in text.split(","):
        try:
            scopes.add(Scope(name.strip().lower()))
        except ValueError:
            valid = ", ".join(s.value for s in Scope)
            raise InvalidRequestError(
                f"{where}: unknown scope {name!r} (valid: {valid})", field="key_file"
            ) from None
    return frozenset(scopes)


class KeyRing:
    """The configured keys; authenticates bearer headers and authorizes scopes.

    An empty key ring means authentication is off (the caller decided that is safe),
    unless `required`: a reload that removed every key must refuse every call, not open
    the server (fail closed).
    """

    def __init__(self, keys: Iterable[ApiKey], *, required: bool = False) -> None:
        self._keys: Sequence[ApiKey] = tuple(keys)
        self._required = required
        ids = [key.id for key in self._keys]
        if len(ids) != len(set(ids)):
            raise InvalidRequestError("duplicate key id", field="keys")

    @property
    def enabled(self) -> bool:
        """True if keys are checked (then every non-public RPC needs a valid one)."""
        return self._required or bool(self._keys)

    def replaced(self, keys: Iterable[ApiKey]) -> KeyRing:
        """A ring with `keys` instead; still enforcing if this one was (never silently opens)."""
        return KeyRing(keys, required=self.enabled)

    def __len__(self) -> int:
        return len(self._keys)

    def authenticate(self, authorization: str | None) -> ApiKey:
        """The key whose secret is the bearer token in `authorization`.

        AuthenticationError if the header is missing, not ``bearer <secret>``, or matches no key.
        """
        if not authorization:
            raise AuthenticationError("missing `authorization: bearer <key>` metadata")
        if authorization[: len(_BEARER)].lower() != _BEARER:
            raise AuthenticationError("the authorization metadata must be `bearer <key>`")
        presented = hashlib.sha256(authorization[len(_BEARER) :].strip().encode()).digest()
        found: ApiKey | None = None
        for key in self._keys:
            # Compare against every key, without breaking early, in constant time.
            if hmac.compare_digest(presented, key.digest):
                found = key
        if found is None:
            raise AuthenticationError("invalid key")
        return found

    @staticmethod
    def authorize(key: ApiKey, method: str) -> None:
        """Raise AuthorizationError unless `key` may call `method` (unknown methods need admin)."""
        scope = METHOD_SCOPES.get(method, Scope.ADMIN)
        if not key.allows(scope):
            raise AuthorizationError(f"key {key.id!r} lacks the `{scope.value}` scope needed by {method}")


def is_public(method: str) -> bool:
    """True for methods that need no key (health, reflection)."""
    return method.startswith(PUBLIC_METHOD_PREFIXES)
