"""Revision tokens and consistency values."""

from __future__ import annotations

import base64
import json

import pytest

from rebac.datastore.memory import MemoryRevision
from rebac.errors import InvalidRevisionError
from rebac.revision import (
    AtExactSnapshot,
    AtLeastAsFresh,
    FullyConsistent,
    MinimizeLatency,
    Revision,
    decode_token,
    encode_token,
)


def _raw(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


class TestTokens:
    @pytest.mark.parametrize("revision_text", ["0", "1", "123456789", "42:100:105:101,103"])
    def test_round_trip(self, revision_text: str) -> None:
        """decode_token(encode_token(r)) gives back str(r) for any datastore's text form."""

        class TextRevision:
            def __str__(self) -> str:
                return revision_text

            def greater_than(self, other: Revision) -> bool:
                return False

        assert decode_token(encode_token(TextRevision())) == revision_text

    def test_token_is_opaque_url_safe_text(self) -> None:
        """A token has no padding and only URL-safe base64 characters, and hides the revision."""
        token = encode_token(MemoryRevision(7))
        assert "=" not in token
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert token != "7"
        assert decode_token(token) == "7"

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "!!!",
            "not base64 at all",
            "é",
            _raw([1, 2]),
            _raw({"v": 2, "r": "1"}),
            _raw({"r": "1"}),
            _raw({"v": 1}),
            _raw({"v": 1, "r": ""}),
            _raw({"v": 1, "r": 5}),
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        ],
    )
    def test_malformed_tokens_are_invalid(self, token: str) -> None:
        """Garbage, another version or a wrong shape raises InvalidRevisionError on field `token`."""
        with pytest.raises(InvalidRevisionError) as info:
            decode_token(token)
        assert info.value.field == "token"

    def test_tampered_token_is_invalid_or_different(self) -> None:
        """Flipping a character never yields the original revision silently."""
        token = encode_token(MemoryRevision(1234))
        for index in range(len(token)):
            flipped = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
            try:
                assert decode_token(flipped) != "1234"
            except InvalidRevisionError:
                continue


class TestConsistency:
    def test_variants_are_frozen_values(self) -> None:
        """Consistency choices compare by value and cannot be mutated."""
        assert MinimizeLatency() == MinimizeLatency()
        assert FullyConsistent() == FullyConsistent()
        assert AtLeastAsFresh("t") == AtLeastAsFresh("t")
        assert AtExactSnapshot("t") != AtExactSnapshot("u")
        with pytest.raises(AttributeError):
            AtLeastAsFresh("t").token = "u"  # type: ignore[misc]

    def test_memory_revision_satisfies_the_protocol(self) -> None:
        """The runtime-checkable Revision protocol accepts a datastore revision."""
        assert isinstance(MemoryRevision(1), Revision)
