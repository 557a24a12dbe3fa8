"""Tests for rebac.engine.caching.walks_graph (the memoized GraphReader test)."""

from __future__ import annotations

from typing import Any

from rebac.datastore.memory import MemoryDatastore
from rebac.datastore.protocol import GraphReader
from rebac.engine.caching import walks_graph


class _Delegating:
    """A wrapper whose graph capability depends on what it wraps (like a proxy)."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def _memory_reader() -> object:
    datastore = MemoryDatastore()
    return datastore.snapshot_reader(await datastore.head_revision())


class TestWalksGraph:
    async def test_agrees_with_the_protocol_check_for_the_memory_reader(self) -> None:
        """A reader class defining every GraphReader member is recognised, as isinstance does."""
        reader = await _memory_reader()
        assert walks_graph(reader) is True
        assert isinstance(reader, GraphReader)

    async def test_a_wrapper_is_judged_by_what_it_wraps_each_time(self) -> None:
        """A delegating class is not memoized: the same class answers per instance."""
        assert walks_graph(_Delegating(await _memory_reader())) is True
        assert walks_graph(_Delegating(object())) is False

    def test_a_plain_object_is_not_a_graph_reader(self) -> None:
        """An object without the members is refused."""
        assert walks_graph(object()) is False
