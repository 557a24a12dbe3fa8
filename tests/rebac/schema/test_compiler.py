import json

import pytest

from rebac.errors import SchemaCompileError, SchemaError, SourcePosition
from rebac.schema import compile_schema
from rebac.schema.definitions import (
    ArrowFunction,
    ComputedUserset,
    Exclusion,
    Intersection,
    Nil,
    TupleToUserset,
    Union,
)
from tests.conformance_paths import CASES_FILE, PARSER_CASES_FILE

CASES = CASES_FILE
PARSER_CASES = PARSER_CASES_FILE
_CASES = [json.loads(line) for line in CASES.read_text().splitlines()] if CASES.exists() else []
LOADABLE = [c for c in _CASES if not c.get("expect_load_error")]
IMPORTS = [json.loads(line) for line in PARSER_CASES.read_text().splitlines() if '"import_compile"' in line] if PARSER_CASES.exists() else []

BASE = """definition user {}
definition group {
  relation member: user | group#member
}
definition folder {
  relation parent: folder
  relation viewer: user
  permission view = viewer + parent->view
}
"""


def perm(expr):
    s = compile_schema(BASE + f"definition doc {{\n relation aaa: user\n relation bbb: user\n relation ccc: user\n relation parent: folder\n permission ppp = {expr}\n}}")
    return s.definition("doc").member("ppp").rewrite


def error_of(text):
    with pytest.raises(SchemaCompileError) as info:
        compile_schema(text)
    return info.value


class TestCompileRewrites:
    def test_union_chains_flatten(self):
        """Nested unions flatten into one n-ary Union."""
        assert perm("aaa + (bbb + ccc)") == Union((ComputedUserset("aaa"), ComputedUserset("bbb"), ComputedUserset("ccc")))

    def test_exclusion_never_flattens(self):
        """`a - b - c` is (a - b) - c."""
        assert perm("aaa - bbb - ccc") == Exclusion(Exclusion(ComputedUserset("aaa"), ComputedUserset("bbb")), ComputedUserset("ccc"))

    def test_precedence_in_ir(self):
        """`a & b + c` compiles to Intersection(a, Union(b, c))."""
        assert perm("aaa & bbb + ccc") == Intersection((ComputedUserset("aaa"), Union((ComputedUserset("bbb"), ComputedUserset("ccc")))))

    def test_arrows_and_nil(self):
        """Arrows and `.all` become TupleToUserset; `nil` becomes Nil."""
        assert perm("parent->view + parent.all(view) + nil") == Union((
            TupleToUserset("parent", "view"), TupleToUserset("parent", "view", ArrowFunction.ALL), Nil()))

    def test_positions_recorded(self):
        """Members carry their source position."""
        s = compile_schema("definition user {}\ndefinition doc {\n  relation viewer: user\n}")
        assert s.definition("doc").member("viewer").position == SourcePosition(3, 3)


class TestCompileErrors:
    @pytest.mark.parametrize(("text", "fragment", "position"), [
        ("definition doc {\n relation viewer: usr\n}", "object definition `usr` not found", (2, 19)),
        ("definition user {}\ndefinition doc {\n relation viewer: user#nope\n}", "`nope` not found under definition `user`", (3, 19)),
        ("definition user {}\ndefinition user {}", "duplicate object definition `user`", (2, 1)),
        ("definition user {}\ndefinition doc {\n relation viewer: user\n permission viewer = viewer\n}", "duplicate relation/permission `viewer`", (4, 2)),
        ("definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewr\n}", "`viewr` not found under definition `doc`", (4, 20)),
        ("definition user {\n relation xyz: user\n}\ndefinition doc {\n relation viewer: user\n permission ppp = viewer\n permission qqq = ppp->xyz\n}", "permissions cannot be used on the left side of an arrow", (7, 19)),
        ("definition user {}\ndefinition doc {\n relation viewer: user\n permission qqq = viewer->nothing\n}", "arrow target `nothing` not found", (4, 25)),
        ("definition user {}\ndefinition doc {\n relation viewer: user with nocaveat\n}", "caveat `nocaveat` not found", (3, 19)),
        ("definition user {}\ndefinition doc {\n relation viewer: user with expiration\n}", "use expiration", (3, 19)),
        ("definition user {}\ndefinition doc {\n relation viewer: user | user\n}", "duplicate allowed subject type `user`", (3, 26)),
        ("definition user {\n relation xyz: user\n}\ndefinition doc {\n relation viewer: user\n permission qqq = viewer->xyz->xyz\n}", "nested arrows", (6, 30)),
        ("definition us {}", "invalid definition name `us`", (1, 1)),
        ("caveat cav(x strng) {\n x\n}", "unknown type `strng`", (1, 12)),
    ])
    def test_error_names_culprit_with_position(self, text, fragment, position):
        """Each invalid schema fails with line:column and a message naming the culprit."""
        err = error_of(text)
        assert fragment in err.message
        assert err.position == SourcePosition(*position)

    def test_first_error_in_source_order(self):
        """With two problems, the first in the text is reported."""
        err = error_of("definition user {}\ndefinition aaa {\n relation rrr: nope1\n}\ndefinition bbb {\n relation rrr: nope2\n}")
        assert "nope1" in err.message

    def test_long_exclusion_chain_bounded(self):
        """A very long `-` chain is a clear error, not a RecursionError."""
        names = " - ".join(["viewer"] * 5000)
        err = error_of(f"definition user {{}}\ndefinition doc {{\n relation viewer: user\n permission view = {names}\n}}")
        assert "nests deeper" in err.message

    def test_long_union_is_fine(self):
        """A 5,000-term union compiles flat."""
        names = " + ".join(["viewer"] * 5000)
        s = compile_schema(f"definition user {{}}\ndefinition doc {{\n relation viewer: user\n permission view = {names}\n}}")
        assert len(s.definition("doc").member("view").rewrite.children) == 5000

    def test_import_without_loader(self):
        """An import with no loader is a clear error."""
        err = error_of('use import\nimport "user.zed"\n')
        assert "cannot resolve import" in err.message


class TestPartials:
    def test_partial_spliced(self):
        """`...name` splices the partial's members into the definition."""
        s = compile_schema("use partial\npartial viewing {\n relation viewer: user\n permission view = viewer\n}\ndefinition user {}\ndefinition doc {\n ...viewing\n}")
        assert [m.name for m in s.definition("doc").members] == ["viewer", "view"]


@pytest.mark.parametrize("case", LOADABLE, ids=[c["id"] for c in LOADABLE])
def test_conformance_schemas_compile(case):
    """Every conformance schema that SpiceDB loads compiles here."""
    if "composable_schema_unresolved" in case.get("flags", []):
        pytest.skip("schema imports files that are not part of the case")
    if "upstream_skipped" in case.get("flags", []):
        pytest.skip("uses `self`, which upstream skips and the IR cannot express yet")
    compile_schema(case["schema"])


@pytest.mark.parametrize("case", IMPORTS, ids=[c["source"].rsplit("/", 1)[-1] for c in IMPORTS])
def test_import_conformance(case):
    """Import resolution accepts/rejects like SpiceDB and yields the expected definitions."""
    files = case["files"]
    try:
        got = compile_schema(files[case["root"]], source=case["root"], import_loader=lambda p: files[p])
    except SchemaError:
        assert case["expect_error"]
        return
    assert not case["expect_error"]
    assert got == compile_schema(case["expected_schema"])


def test_conformance_data_present():
    """The conformance files are present, so the parametrized cases are not silently empty."""
    assert len(LOADABLE) >= 80
    assert len(IMPORTS) >= 10
