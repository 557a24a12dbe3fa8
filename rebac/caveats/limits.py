"""Bounds that keep a hostile caveat from stalling a worker.

Two kinds of bound:

- static, at compile time: the expression's length and the nesting depth of its parse tree
  (every walker over the tree, ours and the evaluator's, recurses; a bounded depth keeps them
  far from any stack limit);
- dynamic, before each evaluation: a worst-case cost computed from the expression and the
  sizes of the actual context values. Only comprehensions (`all`, `exists`, `exists_one`,
  `map`, `filter`) multiply work; CEL has no loops, recursion or string repetition, so a
  bound that multiplies each comprehension body's cost by its range's size is an upper
  bound on the steps the evaluation takes. Exceeding `max_cost` raises
  `CaveatLimitExceededError` *before* evaluating, so the check costs microseconds, never a hang.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree

__all__ = [
    "DEFAULT_LIMITS",
    "CaveatLimits",
    "cost_bound",
    "tree_depth",
]


@dataclass(frozen=True, slots=True)
class CaveatLimits:
    """Configurable bounds; the defaults allow any realistic caveat.

    `max_cost` counts expression nodes visited, with comprehension bodies counted once per
    element of their range.
    """

    max_expression_length: int = 100_000
    max_tree_depth: int = 400
    max_cost: int = 1_000_000


DEFAULT_LIMITS = CaveatLimits()

_COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "map", "filter"})


def tree_depth(tree: Tree[Token]) -> int:
    """The depth of `tree` (iterative, so any depth is safe to measure)."""
    deepest = 0
    stack: list[tuple[Tree[Token], int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))
    return deepest


def has_comprehension(tree: Tree[Token]) -> bool:
    """True if any `x.all(...)`-style macro occurs in `tree`."""
    return any(
        node.data == "member_dot_arg" and str(node.children[1]) in _COMPREHENSIONS
        for node in tree.iter_subtrees()
    )


def count_nodes(tree: Tree[Token]) -> int:
    """The number of nodes in `tree`: its cost when it has no comprehension."""
    return sum(1 for _ in tree.iter_subtrees())


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0


def _deep_size(value: Any) -> int:
    """The largest collection size anywhere inside `value` (itself included)."""
    best = _size(value)
    stack = [value]
    while stack:
        current = stack.pop()
        children = current.values() if isinstance(current, dict) else current
        if isinstance(current, list | tuple | dict):
            for child in children:
                best = max(best, _size(child))
                stack.append(child)
    return best


@dataclass
class _Bound:
    sizes: Mapping[str, int]
    fallback: int

    def size(self, node: Tree[Token] | Token, element_sizes: Mapping[str, int]) -> int:
        """An upper bound on the size of the collection `node` evaluates to."""
        current: Tree[Token] | Token = node
        while isinstance(current, Tree) and len(current.children) == 1 and current.data not in {
            "ident",
            "list_lit",
        }:
            current = current.children[0]
        if isinstance(current, Tree):
            if current.data == "ident":
                name = str(current.children[0])
                if name in element_sizes:
                    return element_sizes[name]
                return self.sizes.get(name, 0)
            if current.data == "list_lit":
                items = [c for c in current.children if isinstance(c, Tree)]
                return len([c for c in items[0].children if isinstance(c, Tree)]) if items else 0
            if current.data == "member_dot_arg" and str(current.children[1]) in {"map", "filter"}:
                return self.size(current.children[0], element_sizes)
        return self.fallback

    def cost(self, node: Tree[Token], element_sizes: Mapping[str, int]) -> int:
        if node.data == "member_dot_arg" and str(node.children[1]) in _COMPREHENSIONS:
            target = node.children[0]
            assert isinstance(target, Tree)  # noqa: S101 - the grammar guarantees it
            range_size = self.size(target, element_sizes)
            arglist = node.children[2] if len(node.children) > 2 else None
            args = [c for c in arglist.children if isinstance(c, Tree)] if isinstance(arglist, Tree) else []
            variable = _variable(args[0]) if args else None
            inner = dict(element_sizes)
            if variable is not None:
                inner[variable] = self.fallback
            body = sum(self.cost(a, inner) for a in args[1:]) + 1
            return 1 + self.cost(target, element_sizes) + range_size * body
        return 1 + sum(self.cost(c, element_sizes) for c in node.children if isinstance(c, Tree))


def _variable(node: Tree[Token]) -> str | None:
    names = list(node.scan_values(lambda v: isinstance(v, Token) and v.type == "IDENT"))
    return str(names[0]) if len(names) == 1 else None


def cost_bound(tree: Tree[Token], context: Mapping[str, Any]) -> int:
    """An upper bound on the evaluation steps of `tree` with `context` bound.

    Ranges are sized from the context values themselves; an element of a nested collection,
    or a collection built inside the expression, is bounded by the largest collection
    anywhere in the context or the expression, times the number of `+` that could grow it.
    """
    sizes = {name: _size(value) for name, value in context.items()}
    literal_sizes = [
        len(node.children[0].children) if node.children and isinstance(node.children[0], Tree) else 0
        for node in tree.iter_subtrees()
        if node.data == "list_lit"
    ]
    largest = max([_deep_size(v) for v in context.values()] + literal_sizes + [1])
    additions = sum(1 for node in tree.iter_subtrees() if node.data == "addition_add")
    return _Bound(sizes, largest * (additions + 1)).cost(tree, {})
