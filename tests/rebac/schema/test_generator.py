import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebac.errors import SchemaError
from rebac.schema import compile_schema, generate_schema
from tests.conformance_paths import CASES_FILE

CASES = CASES_FILE
_CASES = [json.loads(line) for line in CASES.read_text().splitlines()] if CASES.exists() else []

NAMES = ["rel_a", "rel_b", "rel_c", "rel_d"]
TYPES = ["user", "team", "tenant/doc"]


def expressions(names):
    leaf = st.one_of(
        st.sampled_from(names),
        st.just("nil"),
        st.sampled_from(["rel_a->rel_a", "rel_a.all(rel_b)", "rel_a.any(rel_c)"]),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from([" + ", " & ", " - "]), inner).map("".join),
            inner.map(lambda e: f"({e})"),
        ),
        max_leaves=8,
    )


@st.composite
def schemas(draw):
    """Random valid schemas: every type has rel_a..rel_d (so arrows resolve), plus permissions."""
    parts = ["use expiration", "caveat cav(xx int, mm map<list<string>>) {\n  xx > 1\n}"]
    for type_name in TYPES:
        members = []
        for name in NAMES:
            options = draw(st.lists(st.sampled_from([
                "user", "user:*", "team#rel_a", "tenant/doc#rel_b", "team", "user with cav",
                "user:* with cav", "team#rel_c with expiration", "user with cav and expiration", "team#...",
            ]), min_size=1, max_size=4, unique=True))
            options = list(dict.fromkeys(o.replace("team#...", "team") for o in options))
            doc = draw(st.sampled_from(["", "/** doc */\n  ", "/**\n   * two\n   * lines\n   */\n  "]))
            members.append(f"{doc}relation {name}: {' | '.join(options)}")
        for index in range(draw(st.integers(0, 3))):
            members.append(f"permission perm_{index} = {draw(expressions(NAMES))}")
        parts.append(f"definition {type_name} {{\n  " + "\n  ".join(members) + "\n}")
    return "\n\n".join(parts)


class TestGenerate:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(schemas())
    def test_round_trip_identity(self, text):
        """compile(generate(compile(s))) == compile(s), and generating twice is stable."""
        compiled = compile_schema(text)
        generated = generate_schema(compiled)
        again = compile_schema(generated)
        assert again == compiled
        assert generate_schema(again) == generated

    def test_canonical_text(self):
        """The generator prints tabs, docs and minimal parentheses."""
        text = "definition user {}\n/** d */\ndefinition doc {\n relation aaa: user\n relation bbb: user\n permission ppp = aaa - (bbb - aaa) + (aaa & bbb)\n}"
        assert generate_schema(compile_schema(text)) == (
            "definition user {}\n\n/** d */\ndefinition doc {\n\trelation aaa: user\n\trelation bbb: user\n"
            "\tpermission ppp = aaa - (bbb - aaa) + (aaa & bbb)\n}\n"
        )

    def test_empty_schema(self):
        """An empty schema generates empty text."""
        assert generate_schema(compile_schema("")) == ""

    @pytest.mark.parametrize("case", [c for c in _CASES if not c.get("expect_load_error")], ids=lambda c: c["id"])
    def test_conformance_round_trip(self, case):
        """Every loadable conformance schema round-trips through the generator."""
        try:
            compiled = compile_schema(case["schema"])
        except SchemaError:
            pytest.skip("schema needs imports or `self` (see test_compiler)")
        assert compile_schema(generate_schema(compiled)) == compiled
