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
        """Cycles and unused relations are reported with positions."""
        messages = [str(w) for w in G.warnings()]
        assert any("cycle" in m and "group#member" in m for m in messages)
        assert any("9:3" in m and "folder#unused" in m for m in messages)

    def test_drawings(self):
        """DOT and Mermaid output name nodes and edges."""
        assert '"folder#view" -> "doc#view" [label="arrow via parent"]' in G.to_dot()
        assert G.to_mermaid().startswith("flowchart LR")
