"""Stream cursors: the JSON form and the prefix form lookups mint by concatenation."""

from __future__ import annotations

import pytest

from rebac.engine.cursor import encode_cursor as engine_cursor
from rebac.errors import InvalidRevisionError
from rebac_server.cursors import StreamCursor, decode_cursor, encode_cursor, stream_cursor_prefix


class TestStreamCursorPrefix:
    def test_prefix_plus_engine_cursor_decodes_to_both(self) -> None:
        """stream_cursor_prefix(token) + an engine cursor decodes to that token and position."""
        position = engine_cursor("lookup_resources", "doc-1")
        assert decode_cursor(stream_cursor_prefix("tok_-9") + position) == StreamCursor("tok_-9", position)

    def test_json_form_still_decodes(self) -> None:
        """Cursors of other streams (JSON form, any position text) are unaffected."""
        cursor = StreamCursor("tok", "document:1#viewer@user:ann")
        assert decode_cursor(encode_cursor(cursor)) == cursor

    @pytest.mark.parametrize("bad", ["2.", "2.tok", "2.tok.", "2..lookup_resources.YQ", "2.tok.lookup resources.YQ"])
    def test_malformed_prefix_form_names_the_field(self, bad: str) -> None:
        """A prefix-form cursor missing its token or position, or with stray characters, is refused."""
        with pytest.raises(InvalidRevisionError) as info:
            decode_cursor(bad, field="optional_cursor.token")
        assert info.value.field == "optional_cursor.token"
