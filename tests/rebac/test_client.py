"""RebacClient lookups over a real in-process server: batched messages, per-result cursors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rebac.client import RebacClient
from rebac.datastore.memory import MemoryDatastore
from rebac.engine.requests import Permissionship
from rebac.errors import InvalidRevisionError
from rebac.revision import FullyConsistent
from tests.server.server_helpers import serve

SCHEMA = """
caveat weekday(day string) { day != "sat" && day != "sun" }

definition user {}

definition doc {
  relation viewer: user | user:* | user with weekday
  relation banned: user
  permission view = viewer - banned
}
"""

STORED = (
    "doc:1#viewer@user:ann",
    "doc:2#viewer@user:ann[weekday]",
    "doc:3#viewer@user:ann",
    "doc:4#viewer@user:ann[weekday]",
    "doc:5#viewer@user:ann",
    "doc:6#viewer@user:bob",
    "doc:7#viewer@user:*",
    "doc:7#banned@user:eve",
    "doc:7#viewer@user:ann[weekday]",
    "doc:7#viewer@user:cat",
    "doc:7#viewer@user:dan",
)
FULL = FullyConsistent()
ANN_DOCS = ["1", "2", "3", "4", "5", "7"]


@pytest.fixture(name="client")
async def _client(tmp_path: Path) -> AsyncIterator[RebacClient]:
    async with (
        MemoryDatastore() as ds,
        serve(ds, tmp_path, schema=SCHEMA) as served,
        RebacClient(served.address) as client,
    ):
        await client.touch(*STORED)
        yield client


class TestLookupResources:
    @pytest.mark.parametrize("per_message", [1, 2, 4, None])
    async def test_every_result_cursor_resumes_right_after_it(self, client: RebacClient, per_message: int | None) -> None:
        """Whatever the message size, each result's cursor (minted or sent) resumes exactly after it."""
        found = [
            f
            async for f in client.lookup_resources_found("doc", "view", "user:ann", consistency=FULL, results_per_message=per_message)
        ]
        assert [f.resource_id for f in found] == ANN_DOCS
        for i, result in enumerate(found):
            rest = [f.resource_id async for f in client.lookup_resources_found("doc", "view", "user:ann", cursor=result.cursor)]
            assert rest == ANN_DOCS[i + 1 :], result

    async def test_conditional_results_keep_their_place_across_messages(self, client: RebacClient) -> None:
        """CONDITIONAL results come marked, in order, split over messages; plain ids leave them out."""
        found = [
            (f.resource_id, f.permissionship, f.missing_context)
            async for f in client.lookup_resources_found("doc", "view", "user:ann", consistency=FULL, results_per_message=2)
        ]
        maybe = (Permissionship.CONDITIONAL, ("day",))
        yes = (Permissionship.HAS_PERMISSION, ())
        assert found == [("1", *yes), ("2", *maybe), ("3", *yes), ("4", *maybe), ("5", *yes), ("7", *yes)]
        ids = [i async for i in client.lookup_resources("doc", "view", "user:ann", consistency=FULL, results_per_message=2)]
        assert ids == ["1", "3", "5", "7"]
        decided = [i async for i in client.lookup_resources("doc", "view", "user:ann", context={"day": "mon"}, consistency=FULL)]
        assert decided == ANN_DOCS

    async def test_limit_ending_mid_message_resumes_with_the_rest(self, client: RebacClient) -> None:
        """limit 3 with 2 per message stops inside the second message; the last cursor resumes at doc 4."""
        page = [f async for f in client.lookup_resources_found("doc", "view", "user:ann", limit=3, results_per_message=2, consistency=FULL)]
        assert [f.resource_id for f in page] == ["1", "2", "3"]
        rest = [f.resource_id async for f in client.lookup_resources_found("doc", "view", "user:ann", cursor=page[-1].cursor)]
        assert rest == ["4", "5", "7"]

    async def test_other_users_documents_stay_hidden(self, client: RebacClient) -> None:
        """bob sees his own document and the public one, never ann's."""
        assert [i async for i in client.lookup_resources("doc", "view", "user:bob", consistency=FULL, results_per_message=1)] == ["6", "7"]
        assert [i async for i in client.lookup_resources("doc", "view", "user:eve", consistency=FULL)] == []

    async def test_tampered_cursor_is_an_error_not_a_page(self, client: RebacClient) -> None:
        """A cursor with its position cut off raises InvalidRevisionError instead of restarting the stream."""
        found = [f async for f in client.lookup_resources_found("doc", "view", "user:ann", consistency=FULL)]
        broken = found[0].cursor.rsplit(".", 2)[0]
        with pytest.raises(InvalidRevisionError):
            _ = [f async for f in client.lookup_resources_found("doc", "view", "user:ann", cursor=broken)]


class TestLookupSubjects:
    async def test_wildcard_exclusions_and_cursors_across_messages(self, client: RebacClient) -> None:
        """One result per message: the wildcard minus eve first, then each subject; every cursor resumes after its result."""
        found = [f async for f in client.lookup_subjects("doc:7", "view", "user", consistency=FULL, results_per_message=1)]
        assert [(f.subject.id, [s.id for s in f.excluded], f.permissionship) for f in found] == [
            ("*", ["eve"], Permissionship.HAS_PERMISSION),
            ("ann", [], Permissionship.HAS_PERMISSION),
            ("cat", [], Permissionship.HAS_PERMISSION),
            ("dan", [], Permissionship.HAS_PERMISSION),
        ]
        ids = [f.subject.id for f in found]
        for i, result in enumerate(found):
            rest = [f.subject.id async for f in client.lookup_subjects("doc:7", "view", "user", cursor=result.cursor, results_per_message=2)]
            assert rest == ids[i + 1 :], result

    async def test_conditional_subjects_are_marked(self, client: RebacClient) -> None:
        """ann's caveated grant on doc:2 is CONDITIONAL naming `day`; a weekend context removes it."""
        found = [(f.subject.id, f.permissionship, f.missing_context) async for f in client.lookup_subjects("doc:2", "view", "user", consistency=FULL)]
        assert found == [("ann", Permissionship.CONDITIONAL, ("day",))]
        assert [f async for f in client.lookup_subjects("doc:2", "view", "user", context={"day": "sat"}, consistency=FULL)] == []
