import json

import pytest

from rebac.errors import SchemaParseError, SourcePosition
from rebac.schema import ast
from rebac.schema.parser import MAX_NESTING_DEPTH, parse
from tests.conformance_paths import PARSER_CASES_FILE

CASES = PARSER_CASES_FILE
_ALL = [json.loads(line) for line in CASES.read_text().splitlines()] if CASES.exists() else []
SPICEDB_PARSE = [c for c in _ALL if c["schema_language"] == "spicedb" and c["kind"] == "parse"]


def expr(text, flags=""):
    schema = parse(f"{flags}\ndefinition resource {{\n permission p = {text}\n}}")
    return schema.items[-1].members[0].expression


def shape(node):
    match node:
        case ast.Identifier(name=name):
            return name
        case ast.NilExpr():
            return "nil"
        case ast.Arrow(left=left, steps=steps):
            return (shape(left), *[("->" if s.function == "any" else ".all", s.target) for s in steps])
        case ast.BinaryChain(operator=op, operands=operands):
            return (op.value, *[shape(o) for o in operands])
    raise AssertionError(node)


class TestPrecedence:
    def test_minus_binds_loosest(self):
        """`a - b + c` parses as `a - (b + c)`, SpiceDB's surprising precedence."""
        assert shape(expr("a - b + c")) == ("-", "a", ("+", "b", "c"))

    def test_intersection_looser_than_union(self):
        """`a & b + c` parses as `a & (b + c)`."""
        assert shape(expr("a & b + c")) == ("&", "a", ("+", "b", "c"))

    def test_minus_looser_than_intersection(self):
        """`a & b - c` parses as `(a & b) - c`."""
        assert shape(expr("a & b - c")) == ("-", ("&", "a", "b"), "c")

    def test_left_associative_chains(self):
        """`a - b - c` is one left-associative chain of three operands."""
        assert shape(expr("a - b - c")) == ("-", "a", "b", "c")

    def test_arrow_binds_tightest(self):
        """`a->b + c` is `(a->b) + c`."""
        assert shape(expr("a->b + c")) == ("+", ("a", ("->", "b")), "c")

    def test_arrow_functions(self):
        """`.any(x)` is an arrow and `.all(x)` an all-arrow."""
        assert shape(expr("a.any(b) + c.all(d)")) == ("+", ("a", ("->", "b")), ("c", (".all", "d")))

    def test_parentheses_override(self):
        """Parentheses group as written."""
        assert shape(expr("(a - b) + c")) == ("+", ("-", "a", "b"), "c")


class TestParseErrors:
    def test_error_has_position_and_names_token(self):
        """An error carries line:column and names what was found."""
        with pytest.raises(SchemaParseError) as info:
            parse("definition doc {\n  relation viewer user\n}")
        assert info.value.position == SourcePosition(2, 19)
        assert "`user`" in info.value.message

    def test_bad_arrow_function(self):
        """`.foo(x)` is rejected naming `foo`."""
        with pytest.raises(SchemaParseError, match=r"`any` or `all`.*`foo`"):
            expr("a.foo(b)")

    def test_deep_parentheses_rejected_clearly(self):
        """10,000 nested parentheses end in a clear error, not RecursionError."""
        with pytest.raises(SchemaParseError, match="nest deeper"):
            expr("(" * 10_000 + "a" + ")" * 10_000)

    def test_nesting_at_limit_is_fine(self):
        """Nesting up to the limit parses."""
        assert shape(expr("(" * MAX_NESTING_DEPTH + "a" + ")" * MAX_NESTING_DEPTH)) == "a"

    def test_use_after_definition(self):
        """`use` after a definition is rejected."""
        with pytest.raises(SchemaParseError, match="`use` must come before"):
            parse("definition a {}\nuse expiration")

    def test_expiration_before_caveat(self):
        """`with expiration and c` is rejected with the right order in the message."""
        with pytest.raises(SchemaParseError, match="caveat must come before expiration"):
            parse("use expiration\ndefinition a {\n relation r: user with expiration and c\n}")

    def test_two_statements_on_one_line(self):
        """Members need a newline or `;` between them."""
        with pytest.raises(SchemaParseError, match="end of the statement"):
            parse("definition a { relation r: user relation s: user }")
        parse("definition a { relation r: user; relation s: user }")


class TestParseFeatures:
    def test_doc_comments_kept(self):
        """`/** */` comments before a definition and a member are kept, normalized."""
        f = parse("/**\n * the doc\n */\ndefinition a {\n /** rel */\n relation r: user\n}")
        assert f.items[0].doc == "the doc"
        assert f.items[0].members[0].doc == "rel"

    def test_caveat_body_raw_text(self):
        """A caveat's CEL is captured raw between balanced braces, with parameter types."""
        f = parse("caveat c(a map<list<int>>, b int) {\n  {'x': 1}.contains('x') && b == 2\n}")
        decl = f.items[0]
        assert decl.expression == "{'x': 1}.contains('x') && b == 2"
        assert [p.type for p in decl.parameters] == ["map<list<int>>", "int"]

    def test_allowed_type_forms(self):
        """Prefixed types, subject relations, `...`, wildcards and traits all parse."""
        f = parse("use expiration\ndefinition a {\n relation r: t/u | g#m | g#... | u:* | u with c and expiration | u with expiration\n}")
        got = [(a.type, a.relation, a.wildcard, a.caveat, a.expiration) for a in f.items[1].members[0].allowed]
        assert got == [
            ("t/u", None, False, None, False), ("g", "m", False, None, False), ("g", None, False, None, False),
            ("u", None, True, None, False), ("u", None, False, "c", True), ("u", None, False, None, True),
        ]


@pytest.mark.parametrize("case", SPICEDB_PARSE, ids=[c["source"].rsplit("/", 1)[-1] for c in SPICEDB_PARSE])
def test_spicedb_parser_conformance(case):
    """Accept/reject matches SpiceDB's parser on each upstream parser test case."""
    try:
        parse(case["schema"])
        rejected = False
    except SchemaParseError:
        rejected = True
    assert rejected == case["expect_error"]


def test_conformance_data_present():
    """The conformance file is there, so the parametrized cases above are not silently empty."""
    assert len(SPICEDB_PARSE) >= 60
