"""A networkx view of a compiled schema: who can reach what, lookup plans, warnings, drawings.

Nodes are ``(type, relation)`` pairs; ``(type, None)`` stands for plain objects of the type
(``user:ann``). An edge ``u → v`` means "a member of u can be a member of v":

- DIRECT / WILDCARD: ``(user, None) → (doc, viewer)`` for ``relation viewer: user`` / ``user:*``
- SUBJECT_SET: ``(group, member) → (doc, viewer)`` for ``relation viewer: group#member``
- COMPUTED: ``(doc, viewer) → (doc, view)`` for ``permission view = viewer``
- ARROW: ``(folder, view) → (doc, view)`` for ``permission view = parent->view`` when
  ``parent`` allows ``folder`` (every subject type of the tupleset that has the target).

Subtracted sides of an exclusion add no edges (they can only take membership away), so
`can_reach` stays conservative: False only when no relationship path can exist.
The graph is for planning and analysis, not the hot path; answers are cached per instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import networkx as nx

from rebac.errors import SourcePosition
from rebac.schema.definitions import (
    CompiledSchema,
    ComputedUserset,
    Definition,
    Exclusion,
    Intersection,
    Permission,
    Relation,
    Rewrite,
    TupleToUserset,
    Union,
)

__all__ = ["Edge", "EdgeKind", "LookupPlan", "Node", "SchemaGraph", "SchemaWarning"]

Node = tuple[str, str | None]
"""``(type, relation)``; relation None means plain objects of the type."""


class EdgeKind(Enum):
    """How membership flows along an edge."""

    DIRECT = "direct"
    WILDCARD = "wildcard"
    SUBJECT_SET = "subject set"
    COMPUTED = "computed"
    ARROW = "arrow"


@dataclass(frozen=True, slots=True)
class Edge:
    """Members of `source` can be members of `target`, by `kind` (`via`: an arrow's tupleset relation)."""

    source: Node
    target: Node
    kind: EdgeKind
    via: str | None = None


@dataclass(frozen=True, slots=True)
class LookupPlan:
    """The part of the graph on some path from a subject node to a resource permission node.

    `edges` are in breadth-first order from the subject. A reverse walk (LookupResources)
    follows them forward from the subject; a forward walk (LookupSubjects) follows them
    backward from the permission. An empty plan means no resource can ever match.
    """

    subject: Node
    resource: Node
    nodes: frozenset[Node]
    edges: tuple[Edge, ...]


@dataclass(frozen=True, slots=True)
class SchemaWarning:
    """Something valid but suspicious: `kind` is "cycle" or "unused-relation"."""

    kind: str
    message: str
    position: SourcePosition | None = None

    def __str__(self) -> str:
        return f"{self.position}: warning: {self.message}" if self.position else f"warning: {self.message}"


def _label(node: Node) -> str:
    return f"{node[0]}#{node[1]}" if node[1] is not None else node[0]


class SchemaGraph:
    """The reachability graph of one compiled schema (immutable after construction)."""

    def __init__(self, schema: CompiledSchema) -> None:
        self.schema = schema
        self.graph: Any = nx.MultiDiGraph()
        self._descendants: dict[Node, frozenset[Node]] = {}
        for definition in schema.definitions:
            for member in definition.members:
                self.graph.add_node((definition.name, member.name))
                if isinstance(member, Relation):
                    self._add_relation_edges(definition.name, member)
                else:
                    self._add_permission_edges(definition, member)

    def _add_edge(self, edge: Edge) -> None:
        self.graph.add_edge(edge.source, edge.target, key=(edge.kind, edge.via), edge=edge)

    def _add_relation_edges(self, type_name: str, relation: Relation) -> None:
        target = (type_name, relation.name)
        for subject in relation.allowed:
            if subject.wildcard:
                self._add_edge(Edge((subject.type, None), target, EdgeKind.WILDCARD))
            elif subject.relation is None:
                self._add_edge(Edge((subject.type, None), target, EdgeKind.DIRECT))
            else:
                self._add_edge(Edge((subject.type, subject.relation), target, EdgeKind.SUBJECT_SET))

    def _add_permission_edges(self, definition: Definition, permission: Permission) -> None:
        target = (definition.name, permission.name)
        stack: list[Rewrite] = [permission.rewrite]
        while stack:
            match stack.pop():
                case ComputedUserset(relation=name):
                    self._add_edge(Edge((definition.name, name), target, EdgeKind.COMPUTED))
                case TupleToUserset(tupleset_relation=tupleset, computed_relation=computed):
                    for source in self._arrow_sources(definition, tupleset, computed):
                        self._add_edge(Edge(source, target, EdgeKind.ARROW, via=tupleset))
                case Union(children=children) | Intersection(children=children):
                    stack.extend(children)
                case Exclusion(base=base):
                    stack.append(base)
                case _:
                    pass

    def _arrow_sources(self, definition: Definition, tupleset: str, computed: str) -> list[Node]:
        relation = definition.member(tupleset)
        if not isinstance(relation, Relation):
            return []
        sources: list[Node] = []
        for subject in relation.allowed:
            subject_def = self.schema.definition(subject.type)
            if subject_def is not None and subject_def.member(computed) is not None:
                node = (subject.type, computed)
                if node not in sources:
                    sources.append(node)
        return sources

    # --- queries ---------------------------------------------------------------------------

    def reachable_from(self, subject_type: str, subject_relation: str | None) -> frozenset[Node]:
        """Every node a subject of this kind may be a member of (including its own node)."""
        source: Node = (subject_type, subject_relation)
        cached = self._descendants.get(source)
        if cached is None:
            found = nx.descendants(self.graph, source) if source in self.graph else set()
            cached = frozenset(found | {source})
            self._descendants[source] = cached
        return cached

    def can_reach(
        self, subject_type: str, subject_relation: str | None, resource_type: str, permission: str
    ) -> bool:
        """Whether a subject `subject_type[#subject_relation]` could ever be in `resource_type#permission`.

        Conservative: True whenever some chain of relationships could connect them.
        """
        return (resource_type, permission) in self.reachable_from(subject_type, subject_relation)

    def lookup_plan(
        self, subject_type: str, subject_relation: str | None, resource_type: str, permission: str
    ) -> LookupPlan:
        """The nodes and edges on every path from the subject node to `resource_type#permission`."""
        source: Node = (subject_type, subject_relation)
        target: Node = (resource_type, permission)
        forward = self.reachable_from(subject_type, subject_relation)
        if target not in forward:
            return LookupPlan(source, target, frozenset(), ())
        backward = frozenset(nx.ancestors(self.graph, target)) | {target}
        nodes = forward & backward
        edges: list[Edge] = []
        for u, v in nx.bfs_edges(self.graph.subgraph(nodes), source):
            edges.extend(data["edge"] for data in self.graph.get_edge_data(u, v).values())
        seen = set(edges)
        edges.extend(
            data["edge"]
            for u, v, data in sorted(self.graph.subgraph(nodes).edges(data=True), key=_edge_sort_key)
            if data["edge"] not in seen
        )
        return LookupPlan(source, target, frozenset(nodes), tuple(edges))

    def edges(self) -> list[Edge]:
        """Every edge, sorted by (source, target, kind)."""
        return sorted((data["edge"] for _, _, data in self.graph.edges(data=True)), key=_edge_key)

    def warnings(self) -> list[SchemaWarning]:
        """Cycles and unused relations, in source order."""
        found: list[SchemaWarning] = []
        # Recursion through stored data (nested groups via `group#member`, folder chains via
        # `parent->view`) is the point of the model and ends where the data ends. A loop made
        # only of computed usersets (`permission a = b`, `permission b = a`) reads no data on
        # the way round, so it can only end at the depth limit: that is what deserves a warning.
        computed_only = nx.DiGraph(
            (source, target)
            for source, target, data in self.graph.edges(data=True)
            if data["edge"].kind is EdgeKind.COMPUTED
        )
        for component in nx.strongly_connected_components(computed_only):
            nodes = sorted(component, key=_node_key)
            if len(nodes) == 1 and not computed_only.has_edge(nodes[0], nodes[0]):
                continue
            names = ", ".join(f"`{_label(node)}`" for node in nodes)
            found.append(
                SchemaWarning(
                    "cycle",
                    f"cycle through {names} made only of computed usersets: no relationship can "
                    "end it, so every check through it fails at the depth limit",
                    self._position(nodes[0]),
                )
            )
        used = self._used_relations()
        found.extend(
            SchemaWarning(
                "unused-relation",
                f"relation `{definition.name}#{relation.name}` is not used by any permission or subject type",
                relation.position,
            )
            for definition in self.schema.definitions
            for relation in definition.relations
            if (definition.name, relation.name) not in used
        )
        return sorted(found, key=lambda w: (w.position or SourcePosition(0, 0), w.kind, w.message))

    def _position(self, node: Node) -> SourcePosition | None:
        definition = self.schema.definition(node[0])
        member = definition.member(node[1]) if definition is not None and node[1] is not None else None
        return member.position if member is not None else None

    def _used_relations(self) -> set[Node]:
        used: set[Node] = set()
        for definition in self.schema.definitions:
            for relation in definition.relations:
                used.update((s.type, s.relation) for s in relation.allowed if s.relation is not None)
            for permission in definition.permissions:
                stack: list[Rewrite] = [permission.rewrite]
                while stack:
                    match stack.pop():
                        case ComputedUserset(relation=name):
                            used.add((definition.name, name))
                        case TupleToUserset(tupleset_relation=tupleset, computed_relation=computed):
                            used.add((definition.name, tupleset))
                            used.update(self._arrow_sources(definition, tupleset, computed))
                        case Union(children=children) | Intersection(children=children):
                            stack.extend(children)
                        case Exclusion(base=base, subtracted=subtracted):
                            stack.extend((base, subtracted))
                        case _:
                            pass
        return used

    # --- drawings --------------------------------------------------------------------------

    def _sorted_nodes(self) -> list[Node]:
        return sorted(self.graph.nodes, key=_node_key)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT: one node per type#relation, edges labelled by kind."""
        lines = ["digraph schema {", "  rankdir=LR;"]
        lines.extend(f'  "{_label(node)}";' for node in self._sorted_nodes())
        for edge in self.edges():
            label = edge.kind.value + (f" via {edge.via}" if edge.via else "")
            lines.append(f'  "{_label(edge.source)}" -> "{_label(edge.target)}" [label="{label}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        ids = {node: f"n{index}" for index, node in enumerate(self._sorted_nodes())}
        lines = ["flowchart LR"]
        lines.extend(f'  {ids[node]}["{_label(node)}"]' for node in ids)
        for edge in self.edges():
            label = edge.kind.value + (f" via {edge.via}" if edge.via else "")
            lines.append(f"  {ids[edge.source]} -->|{label}| {ids[edge.target]}")
        return "\n".join(lines) + "\n"


def _node_key(node: Node) -> tuple[str, str]:
    return (node[0], node[1] or "")


def _edge_key(edge: Edge) -> tuple[tuple[str, str], tuple[str, str], str, str]:
    return (_node_key(edge.source), _node_key(edge.target), edge.kind.value, edge.via or "")


def _edge_sort_key(
    item: tuple[Node, Node, dict[str, Edge]],
) -> tuple[tuple[str, str], tuple[str, str], str, str]:
    return _edge_key(item[2]["edge"])
