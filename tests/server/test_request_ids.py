"""The interceptor's request ids: unique, uuid-shaped, and never shared between forked workers."""

from __future__ import annotations

import multiprocessing
import re

from rebac_server.interceptors import _new_request_id


def _child_id(queue: multiprocessing.Queue) -> None:
    queue.put(_new_request_id())


class TestRequestIds:
    def test_unique_and_uuid_shaped(self):
        """Ten thousand ids are distinct and each is 32 lowercase hex digits."""
        ids = [_new_request_id() for _ in range(10_000)]
        assert len(set(ids)) == len(ids)
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)

    def test_forked_worker_gets_its_own_prefix(self):
        """A forked child (a server worker) draws a new prefix, so its ids cannot collide with the parent's."""
        parent = _new_request_id()
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_child_id, args=(queue,))
        child.start()
        got = queue.get(timeout=30)
        child.join(timeout=30)
        assert got[:16] != parent[:16]
