"""A hand-written recursive-descent parser for SpiceDB's schema language.

`parse(source)` turns text into an `ast.SchemaFile` or raises `SchemaParseError` at the first
problem, with line:column and a message naming what was expected and what was found.

Grammar notes that match SpiceDB (pkg/schemadsl/parser):

- Statements inside a definition end at a newline, a `;`, or before the closing `}`.
- Expression precedence, loosest first: `-`, then `&`, then `+`; each left-associative. So
  `a - b + c` is `a - (b + c)` and `a & b + c` is `a & (b + c)`. Arrows (`->`, `.any()`,
  `.all()`) bind tighter than every binary operator.
- Keywords are contextual: `expiration` and `and` only after `use expiration`, `self` only after
  `use self`, `import`/`partial` only after `use import`/`use partial`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rebac.errors import SchemaParseError
from rebac.schema import ast
from rebac.schema.lexer import Token, TokenKind, lex
from rebac.schema.source import Source

__all__ = ["MAX_NESTING_DEPTH", "USE_FLAGS", "parse"]

MAX_NESTING_DEPTH = 64
"""Deepest allowed nesting of parentheses (and caveat type arguments); deeper is an error."""

USE_FLAGS = frozenset({"expiration", "import", "partial", "self", "typechecking"})
"""The flags `use` accepts."""

_ALWAYS_RESERVED = frozenset({"definition", "caveat", "relation", "permission", "nil", "with"})


class _Stream:
    """Significant tokens with one-token lookahead; remembers newlines and doc comments before each."""

    def __init__(self, tokens: Iterator[Token]) -> None:
        self._tokens = tokens
        self.current: Token
        self.newline_before = False
        self.doc_before: str | None = None
        self.advance()

    def advance(self) -> Token:
        """Move to the next significant token; return the one left behind."""
        previous = getattr(self, "current", None)
        self.newline_before = False
        self.doc_before = None
        for token in self._tokens:
            if token.kind is TokenKind.NEWLINE:
                self.newline_before = True
            elif token.kind is TokenKind.DOC_COMMENT:
                self.doc_before = _doc_text(token.text)
                self.newline_before = True
            elif token.kind is not TokenKind.COMMENT:
                self.current = token
                break
        return previous if previous is not None else self.current

    def raw(self) -> Token:
        """The next token of any kind, bypassing the lookahead (for caveat bodies)."""
        return next(self._tokens)


def _doc_text(comment: str) -> str:
    """The text of a `/** ... */` comment without its delimiters and leading `*`s, dedented."""
    body = comment[3:-2]
    lines = [line.strip() for line in body.split("\n")]
    lines = [line.removeprefix("*") for line in lines]
    lines = [line.removeprefix(" ") for line in lines]
    return "\n".join(line.rstrip() for line in lines).strip("\n").strip()


def _describe(token: Token) -> str:
    if token.kind is TokenKind.IDENTIFIER:
        return f"`{token.text}`"
    if token.kind is TokenKind.ERROR:
        return token.text
    if token.kind in (TokenKind.NUMBER, TokenKind.STRING, TokenKind.CEL_OPERATOR):
        return f"{token.kind.value} `{token.text}`"
    return str(token.kind.value)


class _Parser:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.stream = _Stream(lex(source))
        self.flags: set[str] = set()
        self.depth = 0

    # --- helpers -------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.stream.current

    def error(self, message: str, token: Token | None = None) -> SchemaParseError:
        at = token if token is not None else self.tok
        return SchemaParseError(message, position=at.position, source=self.source.name)

    def expected(self, what: str) -> SchemaParseError:
        return self.error(f"expected {what}, found {_describe(self.tok)}")

    def is_word(self, word: str) -> bool:
        return self.tok.kind is TokenKind.IDENTIFIER and self.tok.text == word

    def expect(self, kind: TokenKind) -> Token:
        if self.tok.kind is not kind:
            raise self.expected(kind.value)
        return self.stream.advance()

    def accept(self, kind: TokenKind) -> bool:
        if self.tok.kind is kind:
            self.stream.advance()
            return True
        return False

    def reserved(self) -> frozenset[str]:
        words = set(_ALWAYS_RESERVED)
        if "expiration" in self.flags:
            words |= {"expiration", "and"}
        if "self" in self.flags:
            words.add("self")
        if "import" in self.flags:
            words.add("import")
        if "partial" in self.flags:
            words.add("partial")
        return frozenset(words)

    def identifier(self, what: str = "an identifier") -> str:
        """`IDENT` that is not a keyword."""
        if self.tok.kind is not TokenKind.IDENTIFIER:
            raise self.expected(what)
        if self.tok.text in self.reserved():
            raise self.error(f"expected {what}, found keyword `{self.tok.text}`")
        return self.stream.advance().text

    def end_statement(self) -> None:
        """A statement ends at `;`, a newline, a closing `}` or the end of the file."""
        if self.accept(TokenKind.SEMICOLON):
            return
        if self.stream.newline_before or self.tok.kind in (TokenKind.RIGHT_BRACE, TokenKind.EOF):
            return
        raise self.expected("the end of the statement (a newline or `;`)")

    # --- productions ---------------------------------------------------------------------

    def parse_file(self) -> ast.SchemaFile:
        """File := (use | import | definition | partial | caveat | `;`)* EOF."""
        items: list[ast.TopLevel] = []
        seen_declaration = False
        while self.tok.kind is not TokenKind.EOF:
            if self.accept(TokenKind.SEMICOLON):
                continue
            doc = self.stream.doc_before
            if self.is_word("use"):
                if seen_declaration:
                    raise self.error("`use` must come before any definition, caveat or partial")
                items.append(self._parse_use())
            elif self.is_word("import") and "import" in self.flags:
                items.append(self._parse_import())
            elif self.is_word("definition"):
                seen_declaration = True
                items.append(self._parse_definition(doc))
            elif self.is_word("caveat"):
                seen_declaration = True
                items.append(self._parse_caveat(doc))
            elif self.is_word("partial") and "partial" in self.flags:
                seen_declaration = True
                items.append(self._parse_partial())
            else:
                raise self.expected("`definition`, `caveat` or `use` at the top level")
        return ast.SchemaFile(tuple(items), self.source.name)

    def _parse_use(self) -> ast.UseDecl:
        """Use := `use` FLAG (FLAG is expiration | import | partial | self | typechecking)."""
        position = self.stream.advance().position
        flag_token = self.tok
        if flag_token.kind is not TokenKind.IDENTIFIER:
            raise self.expected("a `use` flag")
        flag = self.stream.advance().text
        if flag not in USE_FLAGS:
            raise self.error(
                f"unknown `use` flag `{flag}`; the options are {', '.join(sorted(USE_FLAGS))}",
                flag_token,
            )
        self.flags.add(flag)
        if self.tok.kind is TokenKind.SEMICOLON:
            self.stream.advance()
        return ast.UseDecl(flag, position)

    def _parse_import(self) -> ast.ImportDecl:
        """Import := `import` STRING."""
        position = self.stream.advance().position
        if self.tok.kind is not TokenKind.STRING:
            raise self.expected("a quoted import path")
        text = self.stream.advance().text
        quote = 3 if text[:3] in ('"""', "'''") else 1
        self.end_statement()
        return ast.ImportDecl(text[quote:-quote], position)

    def _parse_definition(self, doc: str | None) -> ast.DefinitionDecl:
        """Definition := `definition` TYPE_PATH `{` member* `}`."""
        position = self.stream.advance().position
        name = self._parse_type_path()
        members = self._parse_body()
        return ast.DefinitionDecl(name, members, doc, position)

    def _parse_partial(self) -> ast.PartialDecl:
        """Partial := `partial` IDENT `{` member* `}`."""
        position = self.stream.advance().position
        name = self.identifier("a partial name")
        return ast.PartialDecl(name, self._parse_body(), position)

    def _parse_body(self) -> tuple[ast.MemberDecl, ...]:
        """Body := `{` (relation | permission | `...`IDENT)* `}`, each ending a statement."""
        self.expect(TokenKind.LEFT_BRACE)
        members: list[ast.MemberDecl] = []
        while not self.accept(TokenKind.RIGHT_BRACE):
            if self.accept(TokenKind.SEMICOLON):
                continue
            doc = self.stream.doc_before
            if self.is_word("relation"):
                members.append(self._parse_relation(doc))
            elif self.is_word("permission"):
                members.append(self._parse_permission(doc))
            elif self.tok.kind is TokenKind.ELLIPSIS and "partial" in self.flags:
                position = self.stream.advance().position
                members.append(ast.PartialReference(self.identifier("a partial name"), position))
            else:
                raise self.expected("`relation`, `permission` or `}`")
            self.end_statement()
        return tuple(members)

    def _parse_type_path(self) -> str:
        """type_path := IDENT (`/` IDENT)*."""
        parts = [self.identifier("a type name")]
        while self.accept(TokenKind.SLASH):
            parts.append(self.identifier("a type name after `/`"))
        return "/".join(parts)

    def _parse_relation(self, doc: str | None) -> ast.RelationDecl:
        """Relation := `relation` IDENT `:` allowed_type (`|` allowed_type)*."""
        position = self.stream.advance().position
        name = self.identifier("a relation name")
        self.expect(TokenKind.COLON)
        allowed = [self._parse_allowed_type()]
        while self.accept(TokenKind.PIPE):
            allowed.append(self._parse_allowed_type())
        return ast.RelationDecl(name, tuple(allowed), doc, position)

    def _parse_allowed_type(self) -> ast.AllowedType:
        """allowed_type := TYPE_PATH (`:*` | `#` (IDENT | `...`))? (`with` traits)?.

        traits := CAVEAT_PATH | `expiration` | CAVEAT_PATH `and` `expiration`.
        """
        position = self.tok.position
        type_name = self._parse_type_path()
        relation: str | None = None
        wildcard = False
        if self.accept(TokenKind.COLON):
            self.expect(TokenKind.STAR)
            wildcard = True
            if self.tok.kind is TokenKind.HASH:
                raise self.error(f"a wildcard `{type_name}:*` cannot have a subject relation")
        elif self.accept(TokenKind.HASH):
            if self.accept(TokenKind.ELLIPSIS):
                relation = None
            else:
                relation = self.identifier("a relation name or `...` after `#`")
        caveat: str | None = None
        expiration = False
        if self.is_word("with"):
            self.stream.advance()
            if self.is_word("expiration") and "expiration" in self.flags:
                self.stream.advance()
                expiration = True
                if self.is_word("and"):
                    raise self.error(
                        "the caveat must come before expiration: write `with <caveat> and expiration`"
                    )
            else:
                caveat = self._parse_type_path()
                if self.is_word("and") and "expiration" in self.flags:
                    self.stream.advance()
                    if not self.is_word("expiration"):
                        raise self.expected("`expiration` after `and`")
                    self.stream.advance()
                    expiration = True
        return ast.AllowedType(type_name, relation, wildcard, caveat, expiration, position)

    def _parse_permission(self, doc: str | None) -> ast.PermissionDecl:
        """Permission := `permission` IDENT (`:` TYPE_PATH (`|` TYPE_PATH)*)? `=` expression."""
        position = self.stream.advance().position
        name = self.identifier("a permission name")
        annotation: list[str] = []
        if self.accept(TokenKind.COLON):
            annotation.append(self._parse_type_path())
            while self.accept(TokenKind.PIPE):
                annotation.append(self._parse_type_path())
        self.expect(TokenKind.EQUALS)
        expression = self._parse_expression()
        return ast.PermissionDecl(name, expression, tuple(annotation), doc, position)

    def _parse_expression(self) -> ast.Expression:
        """Expression := intersection (`-` intersection)*   (loosest)."""
        return self._parse_chain(ast.Operator.EXCLUSION, TokenKind.MINUS, self._parse_intersection)

    def _parse_intersection(self) -> ast.Expression:
        """Intersection := union (`&` union)*."""
        return self._parse_chain(ast.Operator.INTERSECTION, TokenKind.AMPERSAND, self._parse_union)

    def _parse_union(self) -> ast.Expression:
        """Union := arrow (`+` arrow)*   (tightest binary operator)."""
        return self._parse_chain(ast.Operator.UNION, TokenKind.PLUS, self._parse_arrow)

    def _parse_chain(
        self, operator: ast.Operator, kind: TokenKind, operand: Callable[[], ast.Expression]
    ) -> ast.Expression:
        first = operand()
        if self.tok.kind is not kind:
            return first
        operands = [first]
        while self.accept(kind):
            operands.append(operand())
        return ast.BinaryChain(operator, tuple(operands), first.position)

    def _parse_arrow(self) -> ast.Expression:
        """Arrow := base (`->` IDENT | `.` (`any` | `all`) `(` IDENT `)`)*."""
        left = self._parse_base()
        steps: list[ast.ArrowStep] = []
        while self.tok.kind in (TokenKind.ARROW, TokenKind.DOT):
            position = self.tok.position
            if self.accept(TokenKind.ARROW):
                steps.append(
                    ast.ArrowStep(self.identifier("a relation or permission after `->`"), "any", position)
                )
                continue
            self.stream.advance()
            function_token = self.tok
            if function_token.kind is not TokenKind.IDENTIFIER or function_token.text not in ("any", "all"):
                raise self.error(
                    f"expected `any` or `all` after `.`, found {_describe(function_token)}", function_token
                )
            function = self.stream.advance().text
            self.expect(TokenKind.LEFT_PAREN)
            target = self.identifier(f"a relation or permission inside `.{function}(...)`")
            self.expect(TokenKind.RIGHT_PAREN)
            steps.append(ast.ArrowStep(target, function, position))
        if not steps:
            return left
        return ast.Arrow(left, tuple(steps), left.position)

    def _parse_base(self) -> ast.Expression:
        """Base := `(` expression `)` | `nil` | `self` | IDENT."""
        token = self.tok
        if token.kind is TokenKind.LEFT_PAREN:
            self.depth += 1
            if self.depth > MAX_NESTING_DEPTH:
                raise self.error(f"parentheses nest deeper than {MAX_NESTING_DEPTH} levels")
            self.stream.advance()
            inner = self._parse_expression()
            self.expect(TokenKind.RIGHT_PAREN)
            self.depth -= 1
            return inner
        if token.kind is TokenKind.IDENTIFIER and token.text == "nil":
            self.stream.advance()
            return ast.NilExpr(token.position)
        if token.kind is TokenKind.IDENTIFIER and token.text == "self" and "self" in self.flags:
            self.stream.advance()
            return ast.SelfExpr(token.position)
        if token.kind is TokenKind.IDENTIFIER and token.text not in self.reserved():
            self.stream.advance()
            return ast.Identifier(token.text, token.position)
        raise self.expected("a relation, permission, `nil` or `(`")

    def _parse_caveat(self, doc: str | None) -> ast.CaveatDecl:
        """Caveat := `caveat` TYPE_PATH `(` (param (`,` param)*)? `)` `{` CEL `}`."""
        position = self.stream.advance().position
        name = self._parse_type_path()
        self.expect(TokenKind.LEFT_PAREN)
        params: list[ast.CaveatParam] = []
        if self.tok.kind is not TokenKind.RIGHT_PAREN:
            params.append(self._parse_caveat_param())
            while self.accept(TokenKind.COMMA):
                params.append(self._parse_caveat_param())
        self.expect(TokenKind.RIGHT_PAREN)
        if self.tok.kind is not TokenKind.LEFT_BRACE:
            raise self.expected("`{` to start the caveat expression")
        expression = self._capture_braced(self.tok)
        return ast.CaveatDecl(name, tuple(params), expression, doc, position)

    def _parse_caveat_param(self) -> ast.CaveatParam:
        """Param := IDENT type_ref."""
        position = self.tok.position
        name = self.identifier("a parameter name")
        return ast.CaveatParam(name, self._parse_type_ref(0), position)

    def _parse_type_ref(self, depth: int) -> str:
        """type_ref := IDENT (`<` type_ref (`,` type_ref)* `>`)?   e.g. `map<list<int>>`."""
        if depth > MAX_NESTING_DEPTH:
            raise self.error(f"type arguments nest deeper than {MAX_NESTING_DEPTH} levels")
        if self.tok.kind is not TokenKind.IDENTIFIER:
            raise self.expected("a parameter type")
        base = self.stream.advance().text
        if not self.accept(TokenKind.LESS):
            return base
        args = [self._parse_type_ref(depth + 1)]
        while self.accept(TokenKind.COMMA):
            args.append(self._parse_type_ref(depth + 1))
        self.expect(TokenKind.GREATER)
        return f"{base}<{', '.join(args)}>"

    def _capture_braced(self, opening: Token) -> str:
        """The raw text between `opening` (a `{`) and its matching `}`, stripped; non-empty."""
        depth = 1
        start = opening.offset + 1
        while True:
            token = self.stream.raw()
            if token.kind is TokenKind.ERROR:
                raise self.error(f"in the caveat expression: {token.text}", token)
            if token.kind is TokenKind.EOF:
                raise self.error("expected `}` to close the caveat expression, found end of file", token)
            if token.kind is TokenKind.LEFT_BRACE:
                depth += 1
            elif token.kind is TokenKind.RIGHT_BRACE:
                depth -= 1
                if depth == 0:
                    text = self.source.text[start : token.offset].strip()
                    if not _has_code(text):
                        raise self.error("the caveat expression is empty", token)
                    self.stream.advance()
                    return text


def _has_code(text: str) -> bool:
    """Whether CEL text has anything but whitespace and comments."""
    return any(
        token.kind not in (TokenKind.NEWLINE, TokenKind.COMMENT, TokenKind.DOC_COMMENT, TokenKind.EOF)
        for token in lex(Source(text))
    )


def parse(text: str, *, source: str = "schema") -> ast.SchemaFile:
    """Parse schema `text` into a syntax tree; raise SchemaParseError (with line:column) if invalid.

    `source` names the text in errors (a file name, for instance).
    """
    return _Parser(Source(text, source)).parse_file()
