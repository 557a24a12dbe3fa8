"""compile_schema type checks every caveat's CEL and reports errors at their schema line:column."""

from __future__ import annotations

import pytest

from rebac.errors import SchemaCompileError, SourcePosition
from rebac.schema import compile_schema


def _error(text: str, **kw: object) -> SchemaCompileError:
    with pytest.raises(SchemaCompileError) as info:
        compile_schema(text, **kw)  # type: ignore[arg-type]
    return info.value


class TestCaveatCompileChecks:
    def test_valid_caveat_compiles(self) -> None:
        """A well-typed caveat compiles into the schema."""
        schema = compile_schema("caveat ok_cav(a int) { a > 1 }\ndefinition user {}")
        assert schema.caveat("ok_cav") is not None

    def test_unknown_parameter_on_first_line(self) -> None:
        """An unknown name is reported at its column on the caveat's line."""
        err = _error("definition user {}\ncaveat bad_cav(a int) { nope == 1 }")
        assert err.position == SourcePosition(2, 25)
        assert "nope" in err.message
        assert "bad_cav" in err.message

    def test_type_mismatch_on_a_later_line(self) -> None:
        """A type mismatch inside a multi-line expression is reported at its own line and column."""
        text = "caveat bad_cav(a int, b string) {\n  a > 1 &&\n     b + 1 == 2\n}\n"
        err = _error(text)
        assert err.position == SourcePosition(3, 6)
        assert "string" in err.message

    def test_non_bool_result(self) -> None:
        """An expression that does not produce a bool is an error at the expression."""
        err = _error("caveat bad_cav(a int) {\n  a + 1\n}")
        assert err.position == SourcePosition(2, 3)
        assert "bool" in err.message

    def test_syntax_error(self) -> None:
        """A CEL syntax error fails the schema write with a position on the caveat's line."""
        err = _error("caveat bad_cav(a int) { a > }")
        assert err.position is not None
        assert err.position.line == 1
        assert "syntax" in err.message

    def test_error_in_imported_file_names_that_file(self) -> None:
        """A bad caveat in an imported file is reported in that file at its own line:column."""
        files = {"cav.zed": "caveat bad_cav(a int) {\n  a == 'x'\n}\n"}
        err = _error('use import\nimport "cav.zed"\ndefinition user {}', import_loader=files.__getitem__)
        assert err.source == "cav.zed"
        assert err.position == SourcePosition(2, 3)

    def test_nothing_compiled_on_error(self) -> None:
        """A schema with one bad caveat among good ones is refused as a whole."""
        err = _error("caveat good_cav(a int) { a > 1 }\ncaveat bad_cav(b int) { b }\ndefinition user {}")
        assert "bad_cav" in err.message
        assert err.position == SourcePosition(2, 25)
