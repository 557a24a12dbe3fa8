"""Engine lookup cursors: prefix-form encoding, the fast encoder, and refusal of bad input."""

from __future__ import annotations

import base64
import json

import pytest

from rebac.engine.cursor import cursor_encoder, cursor_prefix, decode_cursor, encode_cursor
from rebac.errors import InvalidRequestError


class TestCursor:
    @pytest.mark.parametrize("after", ["1", "*", "a/b|c-d=e+f_g", "x" * 300])
    def test_round_trip(self, after: str) -> None:
        """decode_cursor returns the sort key encode_cursor was given, for any valid id."""
        assert decode_cursor("lookup_resources", encode_cursor("lookup_resources", after)) == after

    def test_encoder_matches_encode_cursor_and_keeps_the_prefix(self) -> None:
        """cursor_encoder mints exactly prefix + encode_cursor (the transport relies on it)."""
        mint = cursor_encoder("lookup_subjects", prefix="2.tok.")
        assert mint("ann") == "2.tok." + encode_cursor("lookup_subjects", "ann")
        assert encode_cursor("lookup_subjects", "ann").startswith(cursor_prefix("lookup_subjects"))

    def test_version_one_cursors_still_decode(self) -> None:
        """A cursor from before the prefix form (base64 JSON) still resumes."""
        payload = json.dumps({"v": 1, "k": "lookup_resources", "a": "42"}).encode()
        old = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        assert decode_cursor("lookup_resources", old) == "42"

    def test_no_cursor_is_the_start(self) -> None:
        """None and the empty string both mean "from the beginning"."""
        assert decode_cursor("lookup_resources", None) is None
        assert decode_cursor("lookup_resources", "") is None

    def test_other_kind_is_refused(self) -> None:
        """A LookupSubjects cursor cannot resume a LookupResources stream."""
        with pytest.raises(InvalidRequestError, match="lookup_resources"):
            decode_cursor("lookup_resources", encode_cursor("lookup_subjects", "ann"))

    @pytest.mark.parametrize("bad", ["lookup_resources.", "lookup_resources.%%", "lookup_resources.YQ!", "%%%"])
    def test_malformed_is_refused(self, bad: str) -> None:
        """Garbage after the prefix is InvalidRequestError naming the cursor, never a silent restart."""
        with pytest.raises(InvalidRequestError) as info:
            decode_cursor("lookup_resources", bad)
        assert info.value.field == "cursor"
