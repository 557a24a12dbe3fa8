"""SpiceDB's schema language: text → tokens → AST → compiled, validated IR.

schema = compile_schema(text)          # SchemaParseError / SchemaCompileError with line:column
text = generate_schema(schema)         # canonical text; compile(generate(s)) == s
TypeSystem(schema).validate_relationship(rel)
SchemaGraph(schema).can_reach("user", None, "document", "view")
"""

from rebac.schema.compiler import ImportLoader, compile_schema
from rebac.schema.generator import generate_schema
from rebac.schema.graph import Edge, EdgeKind, LookupPlan, SchemaGraph, SchemaWarning
from rebac.schema.parser import parse
from rebac.schema.typesystem import TypeSystem

__all__ = [
    "Edge",
    "EdgeKind",
    "ImportLoader",
    "LookupPlan",
    "SchemaGraph",
    "SchemaWarning",
    "TypeSystem",
    "compile_schema",
    "generate_schema",
    "parse",
]
