"""The schema lexer: a plain generator of tokens over a source text.

`lex(source)` yields every token, including whitespace-free trivia the parser needs
(NEWLINE, COMMENT, DOC_COMMENT), and ends with exactly one EOF token. A character that
starts no token yields one ERROR token and ends the stream (followed by EOF), so the
parser reports the first bad character with its position instead of guessing.

The token set is wider than the permission language because caveat bodies are CEL:
their tokens are lexed too, and the parser keeps the raw text between the braces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from rebac.schema.source import Source, SourcePosition

__all__ = ["Token", "TokenKind", "lex"]


class TokenKind(Enum):
    """What a token is. Words are always IDENTIFIER: keywords are contextual (see the parser)."""

    IDENTIFIER = "identifier"
    NUMBER = "number"
    STRING = "string"
    NEWLINE = "newline"
    COMMENT = "comment"
    DOC_COMMENT = "doc comment"
    LEFT_BRACE = "`{`"
    RIGHT_BRACE = "`}`"
    LEFT_PAREN = "`(`"
    RIGHT_PAREN = "`)`"
    LEFT_BRACKET = "`[`"
    RIGHT_BRACKET = "`]`"
    LESS = "`<`"
    GREATER = "`>`"
    COLON = "`:`"
    SEMICOLON = "`;`"
    COMMA = "`,`"
    PIPE = "`|`"
    HASH = "`#`"
    EQUALS = "`=`"
    PLUS = "`+`"
    MINUS = "`-`"
    AMPERSAND = "`&`"
    ARROW = "`->`"
    ELLIPSIS = "`...`"
    DOT = "`.`"
    STAR = "`*`"
    SLASH = "`/`"
    AT = "`@`"
    CEL_OPERATOR = "operator"
    """`==`, `!=`, `<=`, `>=`, `&&`, `||`, `!`, `?`, `%`: only meaningful inside caveat bodies."""
    ERROR = "invalid input"
    EOF = "end of file"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its exact text, where it starts, and its character offset."""

    kind: TokenKind
    text: str
    position: SourcePosition
    offset: int


# Order matters: longer operators before their prefixes, doc comments before comments.
_PATTERNS: tuple[tuple[str, TokenKind | None], ...] = (
    (r"[ \t\r\f\v]+", None),
    (r"\n", TokenKind.NEWLINE),
    (r"/\*\*(?!/)[\s\S]*?\*/", TokenKind.DOC_COMMENT),
    (r"/\*[\s\S]*?\*/", TokenKind.COMMENT),
    (r"//[^\n]*", TokenKind.COMMENT),
    (r"/\*", TokenKind.ERROR),
    (r"[A-Za-z_][A-Za-z0-9_]*", TokenKind.IDENTIFIER),
    (r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[uU]?", TokenKind.NUMBER),
    (r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'', TokenKind.STRING),
    (r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'', TokenKind.STRING),
    (r"->", TokenKind.ARROW),
    (r"\.\.\.", TokenKind.ELLIPSIS),
    (r"==|!=|<=|>=|&&|\|\||[!?%]", TokenKind.CEL_OPERATOR),
    (r"\{", TokenKind.LEFT_BRACE),
    (r"\}", TokenKind.RIGHT_BRACE),
    (r"\(", TokenKind.LEFT_PAREN),
    (r"\)", TokenKind.RIGHT_PAREN),
    (r"\[", TokenKind.LEFT_BRACKET),
    (r"\]", TokenKind.RIGHT_BRACKET),
    (r"<", TokenKind.LESS),
    (r">", TokenKind.GREATER),
    (r":", TokenKind.COLON),
    (r";", TokenKind.SEMICOLON),
    (r",", TokenKind.COMMA),
    (r"\|", TokenKind.PIPE),
    (r"#", TokenKind.HASH),
    (r"=", TokenKind.EQUALS),
    (r"\+", TokenKind.PLUS),
    (r"-", TokenKind.MINUS),
    (r"&", TokenKind.AMPERSAND),
    (r"\.", TokenKind.DOT),
    (r"\*", TokenKind.STAR),
    (r"/", TokenKind.SLASH),
    (r"@", TokenKind.AT),
)
_KINDS: tuple[TokenKind | None, ...] = tuple(kind for _, kind in _PATTERNS)
_MASTER = re.compile("|".join(f"({pattern})" for pattern, _ in _PATTERNS))


def lex(source: Source) -> Iterator[Token]:
    """Yield the tokens of `source` in order, ending with one EOF token.

    An unterminated block comment or string, or a character no token starts with, yields
    a single ERROR token (its text says what is wrong) and then EOF.
    """
    text = source.text
    match = _MASTER.match
    offset = 0
    end = len(text)
    while offset < end:
        found = match(text, offset)
        if found is None:
            yield Token(TokenKind.ERROR, _describe_bad_input(text, offset), source.position(offset), offset)
            break
        kind = _KINDS[(found.lastindex or 1) - 1]
        if kind is TokenKind.ERROR:
            yield Token(kind, _describe_bad_input(text, offset), source.position(offset), offset)
            break
        if kind is not None:
            yield Token(kind, found.group(), source.position(offset), offset)
        offset = found.end()
    yield Token(TokenKind.EOF, "", source.position(end), end)


def _describe_bad_input(text: str, offset: int) -> str:
    """Say why no token starts at `offset`."""
    if text.startswith("/*", offset):
        return "unterminated block comment: `/*` without a closing `*/`"
    char = text[offset]
    if char in "\"'":
        return f"unterminated string starting with {char}"
    return f"unexpected character {char!r}"
