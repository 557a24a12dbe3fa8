"""Output helpers shared by the client commands: colour, JSON, tables and trees.

People get aligned tables and box-drawn trees; machines get `--json`. Colour is used only
when the stream is a terminal and ``NO_COLOR`` is unset (https://no-color.org), so piped
output is always plain text. Nothing here talks to the server.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rebac.engine.requests import ExpandOperation, ExpandTree, Permissionship
from rebac.tuples import SubjectRef

__all__ = [
    "Palette",
    "TreeNode",
    "expand_tree_json",
    "expand_tree_node",
    "palette_for",
    "permissionship_word",
    "print_json",
    "render_table",
    "render_tree",
]

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}


@dataclass(frozen=True, slots=True)
class Palette:
    """Wraps text in ANSI colour codes when `enabled`, else returns it unchanged."""

    enabled: bool = False

    def paint(self, text: str, *styles: str) -> str:
        """`text` in the named styles (``bold``, ``dim``, ``red``, ``green``, ...)."""
        if not self.enabled or not styles:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


def palette_for(stream: TextIO, env: Mapping[str, str] | None = None) -> Palette:
    """Colour on only if `stream` is a TTY and ``NO_COLOR`` is unset (or empty)."""
    env = os.environ if env is None else env
    isatty = getattr(stream, "isatty", None)
    tty = bool(isatty()) if callable(isatty) else False
    return Palette(enabled=tty and not env.get("NO_COLOR"))


def print_json(value: Any, *, stream: TextIO | None = None) -> None:
    """One JSON document, indented, keys in insertion order, UTF-8 kept readable."""
    print(json.dumps(value, indent=2, ensure_ascii=False), file=stream or sys.stdout)


def permissionship_word(value: Permissionship) -> str:
    """``true``, ``false`` or ``caveated``: the CLI's one-word answer to a check."""
    if value is Permissionship.HAS_PERMISSION:
        return "true"
    if value is Permissionship.CONDITIONAL:
        return "caveated"
    return "false"


def render_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, palette: Palette = Palette()
) -> str:
    """Left-aligned columns separated by two spaces, with a bold header; no trailing spaces."""
    materialized = [list(map(str, row)) for row in rows]
    widths = [len(h) for h in headers]
    for row in materialized:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str], styles: tuple[str, ...] = ()) -> str:
        padded = [palette.paint(c.ljust(w), *styles) for c, w in zip(cells, widths, strict=True)]
        return "  ".join(padded).rstrip()

    out = [line(list(headers), ("bold",))]
    out.extend(line(row) for row in materialized)
    return "\n".join(out)


@dataclass(frozen=True, slots=True)
class TreeNode:
    """A labelled tree for drawing; `label` is already styled."""

    label: str
    children: tuple[TreeNode, ...] = ()


def render_tree(root: TreeNode) -> str:
    """Draw `root` with box characters, one node per line, children in order."""
    lines = [root.label]

    def walk(node: TreeNode, prefix: str) -> None:
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{child.label}")
            walk(child, prefix + ("    " if last else "│   "))

    walk(root, "")
    return "\n".join(lines)


# Set-algebra symbols read at a glance in a tree; the word follows for anyone who does not know them.
_OPERATION_SYMBOL = {
    ExpandOperation.UNION: "\u222a union",
    ExpandOperation.INTERSECTION: "\u2229 intersection",
    ExpandOperation.EXCLUSION: "\u2212 exclusion",
}


def expand_tree_node(
    tree: ExpandTree,
    *,
    palette: Palette = Palette(),
    highlight: frozenset[SubjectRef] = frozenset(),
    conditional: bool = False,
) -> TreeNode:
    """A drawable tree of an expand result; subjects in `highlight` are marked.

    Each node reads ``resource#relation`` (``resource#parent->edit`` for an arrow) and its
    operation; a leaf lists its direct subjects as children; a leaf or operation without
    any shows ``(none)``. A caveated subject or node says ``[caveat NAME]``. A highlighted
    subject is marked ``✓`` (green) when its path is unconditional, and ``?`` (yellow) when
    it, or a node above it, is caveated (`conditional`): it qualifies only if the caveat
    holds.
    """
    title = palette.paint(f"{tree.resource}#{tree.label or tree.relation}", "bold", "blue")
    if tree.caveat:
        title = f"{title} {_caveat_note(tree.caveat, palette)}"
        conditional = True
    if tree.operation is ExpandOperation.LEAF:
        caveats = tree.subject_caveats or ("",) * len(tree.subjects)
        subjects = tuple(
            TreeNode(_subject_label(subject, caveat, palette, subject in highlight, conditional=conditional))
            for subject, caveat in zip(tree.subjects, caveats, strict=True)
        )
        return TreeNode(title, subjects or (TreeNode(palette.paint("(none)", "dim")),))
    op = palette.paint(_OPERATION_SYMBOL[tree.operation], "cyan")
    children = tuple(
        expand_tree_node(c, palette=palette, highlight=highlight, conditional=conditional)
        for c in tree.children
    )
    # An operation over nothing (e.g. an arrow whose relation is empty) says so, like a leaf.
    return TreeNode(f"{title} {op}", children or (TreeNode(palette.paint("(none)", "dim")),))


def _caveat_note(caveat: str, palette: Palette) -> str:
    return palette.paint(f"[caveat {caveat}]", "yellow")


def _subject_label(
    subject: SubjectRef, caveat: str, palette: Palette, highlighted: bool, *, conditional: bool
) -> str:
    """One leaf subject: its text, its caveat if any, and its mark if highlighted."""
    text = str(subject)
    note = f" {_caveat_note(caveat, palette)}" if caveat else ""
    if not highlighted:
        return text + note
    if caveat or conditional:
        return f"{palette.paint(text, 'yellow', 'bold')}{note}  {palette.paint('?', 'yellow', 'bold')}"
    return palette.paint(f"{text}  ✓", "green", "bold")


def expand_tree_json(tree: ExpandTree) -> dict[str, Any]:
    """The JSON shape of an expand tree (documented in `rebac expand --help`).

    Every node has resource, relation and operation; ``label`` (the arrow or computed
    userset) and ``caveat`` (the caveat on the relationship that led here) appear when set;
    a leaf has ``subjects`` and, if any is caveated, ``subject_caveats`` mapping each
    caveated subject to its caveat name.
    """
    node: dict[str, Any] = {
        "resource": str(tree.resource),
        "relation": tree.relation,
        "operation": tree.operation.value,
    }
    if tree.label:
        node["label"] = tree.label
    if tree.caveat:
        node["caveat"] = tree.caveat
    if tree.operation is ExpandOperation.LEAF:
        node["subjects"] = [str(s) for s in tree.subjects]
        caveated = {str(s): c for s, c in zip(tree.subjects, tree.subject_caveats, strict=False) if c}
        if caveated:
            node["subject_caveats"] = caveated
    else:
        node["children"] = [expand_tree_json(c) for c in tree.children]
    return node
