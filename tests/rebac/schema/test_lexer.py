from rebac.schema.lexer import TokenKind, lex
from rebac.schema.source import Source, SourcePosition


def kinds(text):
    return [t.kind for t in lex(Source(text)) if t.kind is not TokenKind.NEWLINE]


class TestLex:
    def test_tokens_carry_kind_text_and_position(self):
        """Each token has its kind, exact text and 1-based line:column."""
        tokens = list(lex(Source("definition a/b {\n  relation r: x#y | z:*\n}")))
        assert tokens[0].kind is TokenKind.IDENTIFIER
        assert tokens[0].text == "definition"
        assert tokens[0].position == SourcePosition(1, 1)
        relation = next(t for t in tokens if t.text == "relation")
        assert relation.position == SourcePosition(2, 3)
        assert tokens[-1].kind is TokenKind.EOF

    def test_operators(self):
        """Arrow, ellipsis and the set operators lex as single tokens."""
        assert kinds("a->b ... + & - .") == [
            TokenKind.IDENTIFIER, TokenKind.ARROW, TokenKind.IDENTIFIER, TokenKind.ELLIPSIS,
            TokenKind.PLUS, TokenKind.AMPERSAND, TokenKind.MINUS, TokenKind.DOT, TokenKind.EOF,
        ]

    def test_comments_and_doc_comments(self):
        """`//` and `/* */` are comments; `/** */` is a doc comment."""
        assert kinds("// x\n/* y */ /** z */") == [TokenKind.COMMENT, TokenKind.COMMENT, TokenKind.DOC_COMMENT, TokenKind.EOF]

    def test_bad_character_ends_stream_with_error(self):
        """A character no token starts with yields one ERROR token naming it, then EOF."""
        tokens = list(lex(Source("definition `x")))
        assert [t.kind for t in tokens] == [TokenKind.IDENTIFIER, TokenKind.ERROR, TokenKind.EOF]
        assert "'`'" in tokens[1].text
        assert tokens[1].position == SourcePosition(1, 12)

    def test_unterminated_comment_is_error(self):
        """An unclosed block comment is reported, not swallowed."""
        tokens = list(lex(Source("/* never closed")))
        assert tokens[0].kind is TokenKind.ERROR
        assert "unterminated" in tokens[0].text

    def test_columns_count_characters(self):
        """Columns count characters, not bytes."""
        tokens = list(lex(Source("'一级' x")))
        assert tokens[1].position == SourcePosition(1, 6)
