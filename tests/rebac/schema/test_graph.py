from rebac.schema import SchemaGraph, compile_schema

SCHEMA = compile_schema("""definition user {}
definition robot {}
definition group {
  relation member: user | group#member
}
definition folder {
  relation parent: folder
  relation viewer: user | group#member
  relation unused: user
  permission view = viewer + parent->view
}
definition doc {
  relation parent: folder
  relation banned: user
  relation owner: robot
  permission view = parent->view - banned
}
""")
G = SchemaGraph(SCHEMA)


class TestSchemaGraph:
    def test_reachability(self):
        """Users reach doc#view through folders and nested groups; robots never do."""
        assert G.can_reach("user", None, "doc", "view")
        assert G.can_reach("group", "member", "doc", "view")
        assert not G.can_reach("robot", None, "doc", "view")

    def test_subtracted_side_grants_nothing(self):
        """The subtracted side of an exclusion is not a path."""
        assert not G.can_reach("doc", "banned", "doc", "view")

    def test_subject_set_reaches_itself(self):
        """A subject set is a member of itself."""
        assert G.can_reach("group", "member", "group", "member")

    def test_lookup_plan(self):
        """The plan holds only nodes on user → doc#view paths, and is empty for robots."""
        plan = G.lookup_plan("user", None, "doc", "view")
        assert ("folder", "view") in plan.nodes
        assert ("doc", "banned") not in plan.nodes
        assert G.lookup_plan("robot", None, "doc", "view").edges == ()

    def test_warnings(self):
        """Unused relations are reported with positions; recursion through data is not a warning."""
        messages = [str(w) for w in G.warnings()]
        assert not any("cycle" in m for m in messages)
        assert any("9:3" in m and "folder#unused" in m for m in messages)

    def test_computed_only_cycle_is_a_warning(self):
        """A loop of computed usersets, which no relationship can end, is reported where it starts."""
        graph = SchemaGraph(
            compile_schema(
                "definition user {}\ndefinition doc {\n  relation owner: user\n"
                "  permission aaa = bbb + owner\n  permission bbb = aaa\n}"
            )
        )
        cycles = [w for w in graph.warnings() if w.kind == "cycle"]
        assert len(cycles) == 1
        assert "`doc#aaa`, `doc#bbb`" in cycles[0].message
        assert str(cycles[0].position) == "4:3"

    def test_drawings(self):
        """DOT and Mermaid output name nodes and edges."""
        assert '"folder#view" -> "doc#view" [label="arrow via parent"]' in G.to_dot()
        assert G.to_mermaid().startswith("flowchart LR")
