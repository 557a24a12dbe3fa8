"""Compile a parsed schema into the IR of `rebac.schema.definitions`, validating as it goes.

`compile_schema(text)` is the one entry point most callers need: parse, resolve imports and
partials, build the IR and check every rule SpiceDB checks. The first problem (in source
order: definitions, then their members, then the parts of each) raises `SchemaCompileError`
with the line:column of the culprit and a message naming it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from rebac.errors import SchemaCompileError, SourcePosition
from rebac.schema import ast
from rebac.schema.definitions import (
    AllowedSubject,
    ArrowFunction,
    CaveatDefinition,
    CaveatParameter,
    CompiledSchema,
    ComputedUserset,
    Definition,
    Exclusion,
    Intersection,
    Member,
    Nil,
    Permission,
    Relation,
    Rewrite,
    This,
    TupleToUserset,
    Union,
)
from rebac.schema.parser import parse
from rebac.schema.source import Source

__all__ = ["MAX_REWRITE_DEPTH", "ImportLoader", "compile_ast", "compile_schema", "rewrite_depth"]

ImportLoader = Callable[[str], str]
"""Returns the text of an imported file given its normalized relative path; raises OSError if missing."""

MAX_REWRITE_DEPTH = 100
"""Deepest allowed permission expression tree (a long `a - b - c - ...` chain nests one per `-`)."""

_TYPE_NAME = re.compile(r"([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]")
_MEMBER_NAME = re.compile(r"[a-z][a-z0-9_]{1,62}[a-z0-9]")
_SCALAR_TYPES = frozenset(
    {"any", "bool", "string", "int", "uint", "double", "bytes", "duration", "timestamp", "ipaddress"}
)
_GENERIC_TYPES = {"list": 1, "map": 1}


def compile_schema(
    text: str, *, source: str = "schema", import_loader: ImportLoader | None = None
) -> CompiledSchema:
    """Parse, resolve and validate schema `text`; return the compiled IR.

    `source` names the text in errors. `import` statements are read through `import_loader`
    (it receives paths relative to the root file's directory, normalized; an import is
    relative to the importing file and may not be absolute or leave the root's directory);
    without a loader an import is an error. Raises SchemaParseError or SchemaCompileError.
    """
    texts = {source: text}

    def remembering_loader(path: str) -> str:
        assert import_loader is not None  # noqa: S101 - only called when a loader exists
        loaded = import_loader(path)
        texts[path] = loaded
        return loaded

    root = parse(text, source=source)
    files = list(_resolve_imports(root, remembering_loader if import_loader else None))
    return compile_ast(files, texts=texts)


def compile_ast(files: Iterable[ast.SchemaFile], *, texts: Mapping[str, str] | None = None) -> CompiledSchema:
    """Compile parsed files (imported files first, the root last) into one validated schema.

    Every caveat's CEL expression is type checked (`rebac.caveats.compile_caveat`). `texts`
    maps each file's source name to its text so an expression error is reported at its
    line:column in the schema; without the text it is reported at the caveat's position.
    """
    files = list(files)
    schema = _Compiler(files).run()
    _check_caveat_expressions(files, texts or {})
    return schema


def _check_caveat_expressions(files: list[ast.SchemaFile], texts: Mapping[str, str]) -> None:
    """Type check each caveat's CEL; SchemaCompileError positioned in the schema text."""
    decls = [(item, f.source) for f in files for item in f.items if isinstance(item, ast.CaveatDecl)]
    if not decls:
        return
    # Imported lazily: the CEL libraries load only for schemas that declare caveats.
    from rebac.caveats import compile_caveat  # noqa: PLC0415

    for decl, source in decls:
        definition = CaveatDefinition(
            decl.name,
            tuple(CaveatParameter(p.name, p.type, p.position) for p in decl.parameters),
            decl.expression,
            decl.doc,
            decl.position,
        )
        try:
            compile_caveat(definition)
        except SchemaCompileError as err:
            position = err.position
            if position is not None and all(p.position != position for p in decl.parameters):
                position = _expression_position(texts.get(source), decl, position)
            raise SchemaCompileError(err.message, position=position or decl.position, source=source) from None


def _expression_position(
    text: str | None, decl: ast.CaveatDecl, relative: SourcePosition
) -> SourcePosition | None:
    """Map a position relative to `decl.expression` (1:1 = its first character) onto `text`.

    The expression is the stripped text after the first `{` that follows the caveat's
    keyword (parameter lists contain no braces). None when the text is unknown.
    """
    if text is None:
        return None
    source = Source(text)
    line_start = 0
    for _ in range(decl.position.line - 1):
        line_start = text.index("\n", line_start) + 1
    brace = text.index("{", line_start + decl.position.column - 1)
    start = brace + 1
    while start < len(text) and text[start].isspace():
        start += 1
    origin = source.position(start)
    if relative.line == 1:
        return SourcePosition(origin.line, origin.column + relative.column - 1)
    return SourcePosition(origin.line + relative.line - 1, relative.column)


def rewrite_depth(rewrite: Rewrite) -> int:
    """The depth of an expression tree (a leaf is 1), computed without recursion."""
    deepest = 0
    stack: list[tuple[Rewrite, int]] = [(rewrite, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        match node:
            case Union(children=children) | Intersection(children=children):
                stack.extend((child, depth + 1) for child in children)
            case Exclusion(base=base, subtracted=subtracted):
                stack.extend(((base, depth + 1), (subtracted, depth + 1)))
            case _:
                pass
    return deepest


# --- imports ---------------------------------------------------------------------------------


def _resolve_imports(root: ast.SchemaFile, loader: ImportLoader | None) -> Iterator[ast.SchemaFile]:
    """Yield every file reachable through imports in depth-first post-order, each once, root last."""
    visited: set[str] = set()

    def visit(schema_file: ast.SchemaFile, directory: str) -> Iterator[ast.SchemaFile]:
        visited.add(schema_file.source)
        for item in schema_file.items:
            if not isinstance(item, ast.ImportDecl):
                continue
            path = _import_path(item, directory, schema_file.source)
            if path in visited:
                continue
            if loader is None:
                raise SchemaCompileError(
                    f"cannot resolve import `{item.path}`: imports need a file (no import loader given)",
                    position=item.position,
                    source=schema_file.source,
                )
            try:
                text = loader(path)
            except (OSError, KeyError) as err:
                raise SchemaCompileError(
                    f"failed to read import `{item.path}`: {err}",
                    position=item.position,
                    source=schema_file.source,
                ) from None
            yield from visit(parse(text, source=path), posixpath.dirname(path))
        yield schema_file

    yield from visit(root, "")


def _import_path(item: ast.ImportDecl, directory: str, source: str) -> str:
    """`item`'s path relative to the root file's directory; it may not escape that directory."""
    raw = item.path
    bad = not raw or raw.startswith("/") or "\\" in raw or not raw.endswith(".zed")
    joined = posixpath.normpath(posixpath.join(directory, raw)) if not bad else ""
    if bad or joined.startswith("../") or joined == "..":
        raise SchemaCompileError(
            f"invalid import path `{raw}`: it must be a relative `.zed` path that stays inside "
            "the root schema's directory",
            position=item.position,
            source=source,
        )
    return joined


# --- the compiler ----------------------------------------------------------------------------


@dataclass
class _Compiler:
    files: list[ast.SchemaFile]
    definitions: dict[str, tuple[ast.DefinitionDecl, str]] = field(default_factory=dict)
    partials: dict[str, tuple[ast.PartialDecl, str]] = field(default_factory=dict)
    caveats: dict[str, tuple[ast.CaveatDecl, str]] = field(default_factory=dict)
    uses_expiration: bool = False
    source: str = "schema"

    def error(self, message: str, position: SourcePosition) -> SchemaCompileError:
        return SchemaCompileError(message, position=position, source=self.source)

    def run(self) -> CompiledSchema:
        self._collect()
        members_by_def = {
            name: self._expand_members(decl, source) for name, (decl, source) in self.definitions.items()
        }
        definitions = [
            self._compile_definition(decl, source, members_by_def)
            for name, (decl, source) in self.definitions.items()
            if members_by_def[name] is not None
        ]
        caveats = [self._compile_caveat(decl, source) for decl, source in self.caveats.values()]
        return CompiledSchema(tuple(definitions), tuple(caveats))

    def _collect(self) -> None:
        """Index definitions, partials and caveats by name; reject duplicates and bad names."""
        for schema_file in self.files:
            self.source = schema_file.source
            if "expiration" in schema_file.use_flags:
                self.uses_expiration = True
            for item in schema_file.items:
                match item:
                    case ast.DefinitionDecl():
                        self._check_type_name(item.name, "definition", item.position)
                        self._add_unique(self.definitions, item, "object definition")
                    case ast.CaveatDecl():
                        self._check_type_name(item.name, "caveat", item.position)
                        self._add_unique(self.caveats, item, "caveat")
                    case ast.PartialDecl():
                        self._add_unique(self.partials, item, "partial")
                    case _:
                        pass

    def _add_unique(
        self,
        table: dict[str, tuple[ast.DefinitionDecl, str]]
        | dict[str, tuple[ast.CaveatDecl, str]]
        | dict[str, tuple[ast.PartialDecl, str]],
        item: ast.DefinitionDecl | ast.CaveatDecl | ast.PartialDecl,
        kind: str,
    ) -> None:
        if item.name in table:
            first, first_source = table[item.name][0].position, table[item.name][1]
            raise self.error(
                f"duplicate {kind} `{item.name}` (first defined at {first_source}:{first})", item.position
            )
        table[item.name] = (item, self.source)  # type: ignore[assignment]

    def _check_type_name(self, name: str, kind: str, position: SourcePosition) -> None:
        if not _TYPE_NAME.fullmatch(name):
            raise self.error(
                f"invalid {kind} name `{name}`: expected 3 to 64 lowercase letters, digits or `_`, "
                "starting with a letter and not ending with `_`, optionally prefixed like `tenant/name`",
                position,
            )

    def _expand_members(
        self, decl: ast.DefinitionDecl, source: str
    ) -> list[ast.RelationDecl | ast.PermissionDecl]:
        """The definition's members with partials spliced in; names checked and unique."""
        self.source = source
        members: list[ast.RelationDecl | ast.PermissionDecl] = []
        seen: dict[str, SourcePosition] = {}

        def splice(items: tuple[ast.MemberDecl, ...], stack: tuple[str, ...]) -> None:
            for member in items:
                if isinstance(member, ast.PartialReference):
                    if member.name not in self.partials:
                        raise self.error(f"partial `{member.name}` not found", member.position)
                    if member.name in stack:
                        raise self.error(f"partial `{member.name}` includes itself", member.position)
                    splice(self.partials[member.name][0].members, (*stack, member.name))
                    continue
                if not _MEMBER_NAME.fullmatch(member.name):
                    raise self.error(
                        f"invalid {_kind(member)} name `{member.name}` in definition `{decl.name}`: "
                        "expected 3 to 64 lowercase letters, digits or `_`, starting with a letter "
                        "and not ending with `_`",
                        member.position,
                    )
                if member.name in seen:
                    raise self.error(
                        f"duplicate relation/permission `{member.name}` in definition `{decl.name}` "
                        f"(first declared at {seen[member.name]})",
                        member.position,
                    )
                seen[member.name] = member.position
                members.append(member)

        splice(decl.members, ())
        return members

    def _compile_definition(
        self,
        decl: ast.DefinitionDecl,
        source: str,
        members_by_def: dict[str, list[ast.RelationDecl | ast.PermissionDecl]],
    ) -> Definition:
        self.source = source
        own = {member.name: member for member in members_by_def[decl.name]}
        compiled: list[Member] = []
        for member in members_by_def[decl.name]:
            if isinstance(member, ast.RelationDecl):
                compiled.append(self._compile_relation(decl.name, member, members_by_def))
            else:
                rewrite = self._compile_expression(decl.name, member, member.expression, own, members_by_def)
                if rewrite_depth(rewrite) > MAX_REWRITE_DEPTH:
                    raise self.error(
                        f"permission `{member.name}` nests deeper than {MAX_REWRITE_DEPTH} levels",
                        member.position,
                    )
                compiled.append(Permission(member.name, rewrite, member.doc, member.position))
        return Definition(decl.name, tuple(compiled), decl.doc, decl.position)

    def _compile_relation(
        self,
        definition: str,
        decl: ast.RelationDecl,
        members_by_def: dict[str, list[ast.RelationDecl | ast.PermissionDecl]],
    ) -> Relation:
        allowed: list[AllowedSubject] = []
        for item in decl.allowed:
            where = f"in relation `{definition}#{decl.name}`"
            if item.type not in self.definitions:
                raise self.error(f"object definition `{item.type}` not found ({where})", item.position)
            if item.relation is not None and not any(
                m.name == item.relation for m in members_by_def[item.type]
            ):
                raise self.error(
                    f"relation/permission `{item.relation}` not found under definition `{item.type}` "
                    f"({where})",
                    item.position,
                )
            if item.caveat is not None and item.caveat not in self.caveats:
                hint = (
                    "; to let relationships expire, put `use expiration` at the top of the schema"
                    if item.caveat == "expiration"
                    else ""
                )
                raise self.error(f"caveat `{item.caveat}` not found ({where}){hint}", item.position)
            subject = AllowedSubject(
                item.type, item.relation, item.wildcard, item.caveat, item.expiration, item.position
            )
            if subject in allowed:
                raise self.error(
                    f"duplicate allowed subject type `{_allowed_text(item)}` {where}", item.position
                )
            allowed.append(subject)
        return Relation(decl.name, tuple(allowed), decl.doc, decl.position)

    def _compile_expression(
        self,
        definition: str,
        permission: ast.PermissionDecl,
        expression: ast.Expression,
        own: dict[str, ast.RelationDecl | ast.PermissionDecl],
        members_by_def: dict[str, list[ast.RelationDecl | ast.PermissionDecl]],
    ) -> Rewrite:
        where = f"in permission `{definition}#{permission.name}`"
        match expression:
            case ast.Identifier(name=name, position=position):
                if name not in own:
                    raise self.error(
                        f"relation/permission `{name}` not found under definition `{definition}` ({where})",
                        position,
                    )
                return ComputedUserset(name, position)
            case ast.NilExpr(position=position):
                return Nil(position)
            case ast.SelfExpr(position=position):
                raise self.error(f"`self` is not supported yet ({where})", position)
            case ast.Arrow():
                return self._compile_arrow(definition, where, expression, own, members_by_def)
            case ast.BinaryChain(operator=operator, operands=operands, position=position):
                children = [
                    self._compile_expression(definition, permission, operand, own, members_by_def)
                    for operand in operands
                ]
                if operator is ast.Operator.EXCLUSION:
                    result = children[0]
                    for child in children[1:]:
                        result = Exclusion(result, child, position)
                    return result
                kind = Union if operator is ast.Operator.UNION else Intersection
                flat: list[Rewrite] = []
                for child in children:
                    flat.extend(child.children if isinstance(child, kind) else (child,))
                return kind(tuple(flat), position)
        raise AssertionError(expression)  # pragma: no cover - the match is exhaustive

    def _compile_arrow(
        self,
        definition: str,
        where: str,
        arrow: ast.Arrow,
        own: dict[str, ast.RelationDecl | ast.PermissionDecl],
        members_by_def: dict[str, list[ast.RelationDecl | ast.PermissionDecl]],
    ) -> TupleToUserset:
        if len(arrow.steps) > 1:
            raise self.error(f"nested arrows are not supported ({where})", arrow.steps[1].position)
        if not isinstance(arrow.left, ast.Identifier):
            raise self.error(f"the left side of an arrow must be a relation name ({where})", arrow.position)
        left = arrow.left.name
        step = arrow.steps[0]
        tupleset = own.get(left)
        if tupleset is None:
            raise self.error(
                f"relation `{left}` not found under definition `{definition}` ({where})", arrow.position
            )
        if isinstance(tupleset, ast.PermissionDecl):
            raise self.error(
                f"`{left}` is a permission, and permissions cannot be used on the left side of an "
                f"arrow; use a relation ({where})",
                arrow.position,
            )
        subject_types = {item.type for item in tupleset.allowed}
        if not any(
            any(m.name == step.target for m in members_by_def.get(type_name, ()))
            for type_name in subject_types
        ):
            types = ", ".join(f"`{t}`" for t in sorted(subject_types))
            raise self.error(
                f"arrow target `{step.target}` not found on any subject type of relation "
                f"`{definition}#{left}` ({types}) ({where})",
                step.position,
            )
        function = ArrowFunction.ALL if step.function == "all" else ArrowFunction.ANY
        return TupleToUserset(left, step.target, function, arrow.position)

    def _compile_caveat(self, decl: ast.CaveatDecl, source: str) -> CaveatDefinition:
        self.source = source
        names: set[str] = set()
        parameters: list[CaveatParameter] = []
        for param in decl.parameters:
            if param.name in names:
                raise self.error(
                    f"duplicate parameter `{param.name}` in caveat `{decl.name}`", param.position
                )
            names.add(param.name)
            problem = _type_problem(param.type)
            if problem:
                raise self.error(
                    f"invalid type `{param.type}` for parameter `{param.name}` of caveat `{decl.name}`: "
                    f"{problem}",
                    param.position,
                )
            parameters.append(CaveatParameter(param.name, param.type, param.position))
        return CaveatDefinition(decl.name, tuple(parameters), decl.expression, decl.doc, decl.position)


def _kind(member: ast.RelationDecl | ast.PermissionDecl) -> str:
    return "relation" if isinstance(member, ast.RelationDecl) else "permission"


def _allowed_text(item: ast.AllowedType) -> str:
    text = item.type + (":*" if item.wildcard else "") + (f"#{item.relation}" if item.relation else "")
    traits = [t for t in (item.caveat, "expiration" if item.expiration else None) if t]
    return text + (" with " + " and ".join(traits) if traits else "")


def _type_problem(type_text: str) -> str | None:
    """Why a caveat parameter type is invalid, or None. Types look like `int` or `map<list<int>>`."""
    base, _, rest = type_text.partition("<")
    if not rest:
        if base in _GENERIC_TYPES:
            return f"`{base}` needs a type argument, like `{base}<string>`"
        return None if base in _SCALAR_TYPES else f"unknown type `{base}`"
    if base not in _GENERIC_TYPES:
        return f"`{base}` takes no type arguments"
    args = _split_args(rest[:-1])
    if len(args) != _GENERIC_TYPES[base]:
        return f"`{base}` takes exactly {_GENERIC_TYPES[base]} type argument"
    for arg in args:
        problem = _type_problem(arg)
        if problem:
            return problem
    return None


def _split_args(text: str) -> list[str]:
    """Split `a, b<c, d>` at top-level commas."""
    args: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "," and depth == 0:
            args.append(current.strip())
            current = ""
            continue
        depth += (char == "<") - (char == ">")
        current += char
    args.append(current.strip())
    return args


_ = This  # re-exported for `match` users; the language never writes it
