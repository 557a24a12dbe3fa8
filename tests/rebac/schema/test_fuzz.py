import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebac.errors import SchemaError
from rebac.schema import compile_schema

VALID = """use expiration
caveat cav(xx int) {
  xx == 1
}
definition user {}
definition group {
  relation member: user | group#member | user:* with cav
}
definition doc {
  relation parent: group
  relation viewer: user with expiration | group#member
  permission view = viewer + parent->member - nil & (viewer + parent.all(member))
}
"""
TOKENS = ["definition", "relation", "permission", "caveat", "use", "expiration", "with", "and", "nil",
          "user", "doc", "{", "}", "(", ")", ":", "|", "#", "*", "=", "+", "-", "&", "->", ".", "any",
          "all", "...", "\n", ";", "/", "<", ">", ",", '"x"', "/*", "*/", "//", "import", "partial"]


def compiles_or_schema_error(text):
    try:
        compile_schema(text)
    except SchemaError as err:
        message = err.message
        assert message


class TestFuzz:
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
    def test_random_token_streams(self, text):
        """Random token streams end in success or a SchemaError, nothing else."""
        compiles_or_schema_error(text)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(0, len(VALID)), st.integers(0, 20), st.text(max_size=5))
    def test_mutated_valid_schema(self, at, cut, insert):
        """Cutting and inserting text in a valid schema gives success or a SchemaError."""
        compiles_or_schema_error(VALID[:at] + insert + VALID[at + cut:])

    @settings(max_examples=100, deadline=None)
    @given(st.binary(max_size=200))
    def test_binary_junk(self, data):
        """Arbitrary decoded bytes give success or a SchemaError."""
        compiles_or_schema_error(data.decode("latin-1"))

    def test_empty_text(self):
        """An empty text is an empty schema."""
        assert compile_schema("").definitions == ()

    @pytest.mark.slow
    @pytest.mark.parametrize("count", [120_000])
    def test_large_file(self, count):
        """A ~10 MB schema compiles (bounded time, no recursion)."""
        defs = "\n".join(f"definition type_{i} {{\n  relation owner: user\n  permission view = owner + owner\n}}" for i in range(count))
        assert len(compile_schema("definition user {}\n" + defs).definitions) == count + 1

    def test_large_file_fast_variant(self):
        """A ~0.6 MB schema compiles quickly (bounded variant of the 10 MB test)."""
        defs = "\n".join(f"definition type_{i} {{\n  relation owner: user\n  permission view = owner + owner\n}}" for i in range(7_000))
        assert len(compile_schema("definition user {}\n" + defs).definitions) == 7_001

    @pytest.mark.parametrize("text", ["(" * 10_000, ")" * 10_000, "definition a {" * 10_000, "\x00\xff"])
    def test_pathological_inputs(self, text):
        """Pathological inputs raise SchemaError, never RecursionError."""
        with pytest.raises(SchemaError):
            compile_schema(f"definition doc {{\n permission ppp = {text}\n}}" if text[0] in "()" else text)
