"""Fixtures for the benchmark harness tests: repository root on sys.path, a SpiceDB peer when present."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    # `benchmarks` is a top-level folder of the repository, not an installed package.
    sys.path.insert(0, str(_ROOT))

from benchmarks.spicedb_peer import PeerUnavailableError, SpiceDBPeer  # noqa: E402


def spicedb_or_skip() -> SpiceDBPeer:
    """A fresh SpiceDB peer, or a skip that names why SpiceDB cannot run here."""
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
