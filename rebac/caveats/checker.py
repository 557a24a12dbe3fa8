"""Static type checking of a caveat's CEL expression against its declared parameters.

Works on the parse tree of cel-python's grammar (lark, with 1-based line:column on every
node). `check_expression` returns the expression's type or raises `CaveatTypeError` with the
position of the offending node, relative to the expression text. Only the functions the
evaluator implements are accepted, so a caveat that compiles can run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lark import Token, Tree

from rebac.caveats.types import (
    ANY,
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    INT,
    IPADDRESS,
    NULL,
    STRING,
    TIMESTAMP,
    TYPE,
    CelType,
    list_of,
    map_of,
)
from rebac.errors import SourcePosition

__all__ = ["COMPREHENSIONS", "CaveatTypeError", "check_expression", "position_of"]

COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_NUMERIC = frozenset({"int", "uint", "double"})
_ORDERED = _NUMERIC | {"string", "bytes", "bool", "timestamp", "duration"}
_TIME_GETTERS = frozenset(
    {
        "getFullYear",
        "getMonth",
        "getDayOfYear",
        "getDayOfMonth",
        "getDate",
        "getDayOfWeek",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)
_DURATION_GETTERS = frozenset({"getHours", "getMinutes", "getSeconds", "getMilliseconds"})
_CONVERSIONS: Mapping[str, CelType] = {
    "int": INT,
    "uint": CelType("uint"),
    "double": DOUBLE,
    "string": STRING,
    "bytes": BYTES,
    "timestamp": TIMESTAMP,
    "duration": DURATION,
    "dyn": ANY,
}
_TYPE_NAMES = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type"})


class CaveatTypeError(Exception):
    """A type error in a caveat expression; `position` is relative to the expression text."""

    def __init__(self, message: str, position: SourcePosition | None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def position_of(node: Tree[Token] | Token) -> SourcePosition | None:
    """The 1-based line:column where `node` starts, if the parser recorded it."""
    if isinstance(node, Token):
        return SourcePosition(node.line or 1, node.column or 1)
    meta = node.meta
    if getattr(meta, "empty", True):
        for child in node.children:
            if isinstance(child, Tree | Token):
                return position_of(child)
        return None
    return SourcePosition(meta.line, meta.column)


def _same(a: CelType, b: CelType) -> bool:
    """Assignable both ways: equal, or either side dyn (recursively for containers)."""
    if a.is_dyn or b.is_dyn:
        return True
    if a.kind != b.kind:
        return False
    for x, y in ((a.element, b.element), (a.key, b.key)):
        if x is not None and y is not None and not _same(x, y):
            return False
    return True


def _join(a: CelType, b: CelType) -> CelType:
    return b if a.is_dyn else a


@dataclass
class _Checker:
    params: Mapping[str, CelType]
    scopes: list[dict[str, CelType]]

    def fail(self, node: Tree[Token] | Token, message: str) -> CaveatTypeError:
        return CaveatTypeError(message, position_of(node))

    def check(self, node: Tree[Token]) -> CelType:
        handler: Callable[[Tree[Token]], CelType] | None = getattr(self, f"_{node.data}", None)
        if handler is None:
            raise self.fail(node, f"unsupported expression `{node.data}`")
        return handler(node)

    def _trees(self, node: Tree[Token]) -> list[Tree[Token]]:
        return [c for c in node.children if isinstance(c, Tree)]

    def _passthrough(self, node: Tree[Token]) -> CelType:
        return self.check(self._trees(node)[0])

    _member = _passthrough
    _primary = _passthrough
    _paren_expr = _passthrough

    def _expr(self, node: Tree[Token]) -> CelType:
        parts = self._trees(node)
        if len(parts) == 1:
            return self.check(parts[0])
        condition, then, otherwise = parts
        self._require(condition, BOOL, "the condition of `? :`")
        then_type, else_type = self.check(then), self.check(otherwise)
        if not _same(then_type, else_type):
            raise self.fail(otherwise, f"`? :` branches differ: {then_type} and {else_type}")
        return _join(then_type, else_type)

    def _require(self, node: Tree[Token], wanted: CelType, what: str) -> None:
        found = self.check(node)
        if not _same(found, wanted):
            raise self.fail(node, f"{what} must be {wanted}, found {found}")

    def _logical(self, node: Tree[Token], operator: str) -> CelType:
        parts = self._trees(node)
        if len(parts) == 1:
            return self.check(parts[0])
        for part in parts:
            self._require(part, BOOL, f"each operand of `{operator}`")
        return BOOL

    def _conditionalor(self, node: Tree[Token]) -> CelType:
        return self._logical(node, "||")

    def _conditionaland(self, node: Tree[Token]) -> CelType:
        return self._logical(node, "&&")

    def _binary(self, node: Tree[Token]) -> tuple[str, CelType, CelType] | None:
        parts = self._trees(node)
        if len(parts) == 1:
            return None
        operator_node, right = parts
        left = self._trees(operator_node)[0]
        return operator_node.data.split("_", 1)[1], self.check(left), self.check(right)

    def _relation(self, node: Tree[Token]) -> CelType:
        binary = self._binary(node)
        if binary is None:
            return self.check(self._trees(node)[0])
        operator, left, right = binary
        if operator in {"eq", "ne"}:
            if _same(left, right) or NULL in (left, right):
                return BOOL
        elif operator == "in":
            if right.is_dyn or (right.kind in {"list", "map"} and _same(left, _in_key(right))):
                return BOOL
        elif _comparable(left, right):
            return BOOL
        raise self.fail(node, f"no `{_SYMBOLS[operator]}` for {left} and {right}")

    def _arithmetic(self, node: Tree[Token]) -> CelType:
        binary = self._binary(node)
        if binary is None:
            return self.check(self._trees(node)[0])
        operator, left, right = binary
        result = _arithmetic_result(operator, left, right)
        if result is None:
            raise self.fail(node, f"no `{_SYMBOLS[operator]}` for {left} and {right}")
        return result

    _addition = _arithmetic
    _multiplication = _arithmetic

    def _unary(self, node: Tree[Token]) -> CelType:
        parts = self._trees(node)
        if len(parts) == 1:
            return self.check(parts[0])
        operator, operand = parts
        found = self.check(operand)
        if operator.data == "unary_not" and _same(found, BOOL):
            return BOOL
        if operator.data == "unary_neg" and (found.is_dyn or found.kind in {"int", "double", "duration"}):
            return found
        raise self.fail(node, f"no `{'!' if operator.data == 'unary_not' else '-'}` for {found}")

    def _literal(self, node: Tree[Token]) -> CelType:
        token = node.children[0]
        assert isinstance(token, Token)  # noqa: S101 - the grammar guarantees it
        return {
            "UINT_LIT": CelType("uint"),
            "INT_LIT": INT,
            "FLOAT_LIT": DOUBLE,
            "STRING_LIT": STRING,
            "MLSTRING_LIT": STRING,
            "BYTES_LIT": BYTES,
            "BOOL_LIT": BOOL,
            "NULL_LIT": NULL,
        }[token.type]

    def _lookup(self, name: str, node: Tree[Token] | Token) -> CelType:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        if name in self.params:
            return self.params[name]
        if name in _TYPE_NAMES:
            return TYPE
        raise self.fail(node, f"undeclared reference to `{name}` (not a parameter of this caveat)")

    def _ident(self, node: Tree[Token]) -> CelType:
        token = node.children[0]
        return self._lookup(str(token), token)

    _dot_ident = _ident

    def _list_lit(self, node: Tree[Token]) -> CelType:
        items = [self.check(c) for c in self._exprs(node)]
        element = ANY
        for item in items:
            if not _same(element, item):
                return list_of(ANY)
            element = _join(element, item)
        return list_of(element)

    def _map_lit(self, node: Tree[Token]) -> CelType:
        entries = self._exprs(node)
        keys = [self.check(k) for k in entries[0::2]]
        values = [self.check(v) for v in entries[1::2]]
        key = keys[0] if keys and all(k == keys[0] for k in keys) else ANY
        value = values[0] if values and all(v == values[0] for v in values) else ANY
        return map_of(value, key)

    def _exprs(self, node: Tree[Token]) -> list[Tree[Token]]:
        """The expressions of an optional exprlist/mapinits child."""
        lists = self._trees(node)
        return self._trees(lists[0]) if lists else []

    def _member_dot(self, node: Tree[Token]) -> CelType:
        target, name = node.children
        assert isinstance(target, Tree)  # noqa: S101 - the grammar guarantees it
        found = self.check(target)
        if found.is_dyn:
            return ANY
        if found.kind == "map" and found.element is not None:
            return found.element
        raise self.fail(name, f"`{found}` has no field `{name}`")

    def _member_index(self, node: Tree[Token]) -> CelType:
        target, index = self._trees(node)
        container, key = self.check(target), self.check(index)
        if container.is_dyn:
            return ANY
        if container.kind == "list" and container.element is not None and _same(key, INT):
            return container.element
        if container.kind == "map" and container.element is not None and _same(key, _in_key(container)):
            return container.element
        raise self.fail(index, f"cannot index {container} with {key}")

    def _member_object(self, node: Tree[Token]) -> CelType:
        raise self.fail(node, "message construction is not supported in caveats")

    def _ident_arg(self, node: Tree[Token]) -> CelType:
        name = str(node.children[0])
        args = self._exprs(node)
        if name == "has":
            if len(args) != 1 or _field_select(args[0]) is None:
                raise self.fail(node, "has() takes one field selection, e.g. has(m.key)")
            self.check(args[0])
            return BOOL
        arg_types = [self.check(a) for a in args]
        if name in _CONVERSIONS and len(arg_types) == 1:
            return _CONVERSIONS[name] if name != "uint" else INT
        if name == "size" and len(arg_types) == 1 and _sized(arg_types[0]):
            return INT
        if name == "matches" and len(arg_types) == 2 and all(_same(t, STRING) for t in arg_types):
            return BOOL
        raise self.fail(node, f"unknown function `{name}` for ({', '.join(map(str, arg_types))})")

    def _dot_ident_arg(self, node: Tree[Token]) -> CelType:
        return self._ident_arg(node)

    def _member_dot_arg(self, node: Tree[Token]) -> CelType:
        target = node.children[0]
        name_token = node.children[1]
        assert isinstance(target, Tree)  # noqa: S101 - the grammar guarantees it
        name = str(name_token)
        arglist = node.children[2] if len(node.children) > 2 else None
        args = self._trees(arglist) if isinstance(arglist, Tree) else []
        receiver = self.check(target)
        if name in COMPREHENSIONS:
            return self._comprehension(node, name, receiver, args)
        arg_types = [self.check(a) for a in args]
        result = _method_result(name, receiver, arg_types)
        if result is None:
            shown = ", ".join(map(str, arg_types))
            raise self.fail(name_token, f"unknown method `{name}` on {receiver} for ({shown})")
        return result

    def _comprehension(
        self, node: Tree[Token], name: str, range_type: CelType, args: list[Tree[Token]]
    ) -> CelType:
        wanted = 3 if name == "map" and len(args) == 3 else 2
        variable = _field_select(args[0]) if args else None
        if len(args) != wanted or variable is None or "." in variable:
            example = f"l.{name}(x, x > 0)"
            raise self.fail(node, f"`{name}` takes a variable name and an expression, e.g. {example}")
        if range_type.is_dyn:
            element = ANY
        elif range_type.kind == "list" and range_type.element is not None:
            element = range_type.element
        elif range_type.kind == "map":
            element = _in_key(range_type)
        else:
            raise self.fail(node, f"`{name}` needs a list or map, found {range_type}")
        self.scopes.append({variable: element})
        try:
            body = [self.check(a) for a in args[1:]]
        finally:
            self.scopes.pop()
        predicates = body if name != "map" else body[:-1]
        for predicate, tree in zip(predicates, args[1:], strict=False):
            if not _same(predicate, BOOL):
                raise self.fail(tree, f"the predicate of `{name}` must be bool, found {predicate}")
        if name == "map":
            return list_of(body[-1])
        if name == "filter":
            return list_of(element)
        return BOOL


_SYMBOLS = {
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "in": "in",
    "add": "+",
    "sub": "-",
    "mul": "*",
    "div": "/",
    "mod": "%",
}


def _in_key(container: CelType) -> CelType:
    if container.kind == "map":
        return container.key or STRING
    return container.element or ANY


def _comparable(left: CelType, right: CelType) -> bool:
    """`<` and friends: same ordered kind, or numbers of any kind (CEL compares across)."""
    if left.is_dyn or right.is_dyn:
        return True
    if left.kind == right.kind and left.kind in _ORDERED:
        return True
    return left.kind in _NUMERIC and right.kind in _NUMERIC


def _sized(found: CelType) -> bool:
    return found.is_dyn or found.kind in {"string", "bytes", "list", "map"}


def _field_select(node: Tree[Token]) -> str | None:
    """`a` or `a.b.c` when `node` is nothing but identifiers and field selections."""
    current: Tree[Token] | Token = node
    while isinstance(current, Tree) and current.data in {"expr", "conditionalor", "conditionaland",
                                                          "relation", "addition", "multiplication",
                                                          "unary", "member", "primary"}:
        if len(current.children) != 1:
            return None
        current = current.children[0]
    if isinstance(current, Tree) and current.data == "ident":
        return str(current.children[0])
    if isinstance(current, Tree) and current.data == "member_dot":
        target, name = current.children
        assert isinstance(target, Tree)  # noqa: S101 - the grammar guarantees it
        base = _field_select(target)
        return f"{base}.{name}" if base is not None else None
    return None


def _arithmetic_result(  # noqa: C901, PLR0911 - one rule per CEL overload reads best
    operator: str, left: CelType, right: CelType
) -> CelType | None:
    if left.is_dyn or right.is_dyn:
        return ANY if left.is_dyn and right.is_dyn else (right if left.is_dyn else left)
    kinds = (left.kind, right.kind)
    if operator == "add":
        if left.kind == right.kind and left.kind in {"int", "uint", "double", "string", "bytes", "duration"}:
            return left
        if left.kind == right.kind == "list":
            return left if _same(left, right) else list_of(ANY)
        if kinds in {("timestamp", "duration"), ("duration", "timestamp")}:
            return TIMESTAMP
        return None
    if operator == "sub":
        if left.kind == right.kind and left.kind in {"int", "uint", "double", "duration"}:
            return left
        if kinds == ("timestamp", "timestamp"):
            return DURATION
        if kinds == ("timestamp", "duration"):
            return TIMESTAMP
        return None
    if operator in {"mul", "div"} and left.kind == right.kind and left.kind in _NUMERIC:
        return left
    if operator == "mod" and left.kind == right.kind and left.kind in {"int", "uint"}:
        return left
    return None


def _method_result(name: str, receiver: CelType, args: list[CelType]) -> CelType | None:
    if name == "in_cidr":
        return BOOL if _same(receiver, IPADDRESS) and len(args) == 1 and _same(args[0], STRING) else None
    if name in {"contains", "startsWith", "endsWith", "matches"}:
        ok = _same(receiver, STRING) and len(args) == 1 and _same(args[0], STRING)
        return BOOL if ok else None
    if name == "size" and not args and _sized(receiver):
        return INT
    if name in _TIME_GETTERS and not args:
        if _same(receiver, TIMESTAMP):
            return INT
        if receiver.kind == "duration" and name in _DURATION_GETTERS:
            return INT
    return None


def check_expression(tree: Tree[Token], params: Mapping[str, CelType]) -> CelType:
    """The static type of `tree` given the parameter types; raises CaveatTypeError."""
    return _Checker(params, []).check(tree)
