"""Print a compiled schema as canonical schema text.

`generate_schema(schema)` is deterministic and `compile_schema(generate_schema(s)) == s` for
every schema the compiler produced. Layout: `use expiration` first when any relation needs it,
then caveats, then definitions, one blank line between items, tabs for indentation, `/** */`
doc comments, and parentheses only where SpiceDB's precedence needs them.
"""

from __future__ import annotations

from rebac.errors import SchemaError
from rebac.schema.definitions import (
    AllowedSubject,
    ArrowFunction,
    CaveatDefinition,
    CompiledSchema,
    ComputedUserset,
    Definition,
    Exclusion,
    Intersection,
    Nil,
    Permission,
    Relation,
    Rewrite,
    This,
    TupleToUserset,
    Union,
)

__all__ = ["generate_expression", "generate_schema"]

# Binding strength: `-` loosest, then `&`, then `+`; leaves bind tightest.
_EXCLUSION, _INTERSECTION, _UNION, _LEAF = 1, 2, 3, 4


def generate_schema(schema: CompiledSchema) -> str:
    """The canonical text of `schema`, ending with one newline (empty schema: empty string)."""
    blocks: list[str] = []
    if any(subject.expiration for d in schema.definitions for r in d.relations for subject in r.allowed):
        blocks.append("use expiration")
    blocks.extend(_caveat(caveat) for caveat in schema.caveats)
    blocks.extend(_definition(definition) for definition in schema.definitions)
    return "\n\n".join(blocks) + "\n" if blocks else ""


def generate_expression(rewrite: Rewrite) -> str:
    """The text of one permission expression."""
    return _expression(rewrite)


def _doc(doc: str | None, indent: str) -> str:
    if doc is None:
        return ""
    lines = doc.replace("*/", "* /").split("\n")
    if len(lines) == 1:
        return f"{indent}/** {lines[0]} */\n"
    body = "".join(f"{indent} *{' ' + line if line else ''}\n" for line in lines)
    return f"{indent}/**\n{body}{indent} */\n"


def _caveat(caveat: CaveatDefinition) -> str:
    params = ", ".join(f"{p.name} {p.type}" for p in caveat.parameters)
    return f"{_doc(caveat.doc, '')}caveat {caveat.name}({params}) {{\n\t{caveat.expression}\n}}"


def _definition(definition: Definition) -> str:
    head = f"{_doc(definition.doc, '')}definition {definition.name} {{"
    if not definition.members:
        return head + "}"
    lines = [head, *(_doc(member.doc, "\t") + "\t" + _member(member) for member in definition.members)]
    return "\n".join(lines) + "\n}"


def _member(member: Relation | Permission) -> str:
    if isinstance(member, Relation):
        return f"relation {member.name}: {' | '.join(_allowed(a) for a in member.allowed)}"
    return f"permission {member.name} = {_expression(member.rewrite)}"


def _allowed(subject: AllowedSubject) -> str:
    text = subject.type
    if subject.wildcard:
        text += ":*"
    elif subject.relation is not None:
        text += f"#{subject.relation}"
    traits = [t for t in (subject.caveat, "expiration" if subject.expiration else None) if t]
    return text + (" with " + " and ".join(traits) if traits else "")


def _strength(rewrite: Rewrite) -> int:
    match rewrite:
        case Exclusion():
            return _EXCLUSION
        case Intersection():
            return _INTERSECTION
        case Union():
            return _UNION
        case _:
            return _LEAF


def _expression(rewrite: Rewrite) -> str:
    match rewrite:
        case ComputedUserset(relation=relation):
            return relation
        case Nil():
            return "nil"
        case TupleToUserset(tupleset_relation=left, computed_relation=right, function=function):
            return f"{left}->{right}" if function is ArrowFunction.ANY else f"{left}.all({right})"
        case Union(children=children):
            return " + ".join(_operand(child, _UNION, strict=True) for child in children)
        case Intersection(children=children):
            return " & ".join(_operand(child, _INTERSECTION, strict=True) for child in children)
        case Exclusion(base=base, subtracted=subtracted):
            left = _operand(base, _EXCLUSION, strict=False)
            return f"{left} - {_operand(subtracted, _EXCLUSION, strict=True)}"
        case This():
            raise SchemaError("`This` has no text form in the schema language")
    raise AssertionError(rewrite)  # pragma: no cover - the match is exhaustive


def _operand(child: Rewrite, parent: int, *, strict: bool) -> str:
    """Parenthesize `child` if it binds looser than `parent` (or equally, when `strict`)."""
    text = _expression(child)
    strength = _strength(child)
    needs = strength < parent or (strict and strength == parent)
    return f"({text})" if needs else text
