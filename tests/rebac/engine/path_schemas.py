"""Schemas shared by the path-search tests (plan compiler, datastore conformance, CheckBulk)."""

from __future__ import annotations

__all__ = ["COMBINED_ARROWS", "DRIVE"]

DRIVE = """
definition user {}
definition group { relation member: user | group#member }
definition folder {
  relation parent: folder
  relation owner: user
  relation editor: user | group#member
  relation viewer: user | user:* | group#member
  permission edit = owner + editor + parent->edit
  permission view = edit + viewer + parent->view
}
definition document {
  relation parent: folder
  relation owner: user
  relation editor: user | group#member
  relation viewer: user | user:* | group#member
  permission edit = owner + editor + parent->edit
  permission view = edit + viewer + parent->view
}
"""
"""The benchmark's drive shape: folder chains, nested groups, `view` including `edit`."""

COMBINED_ARROWS = """
definition user {}
definition folder {
  relation viewer: user
  relation commenter: user
  relation parent: folder
  permission view = viewer + parent->view
  permission comment = commenter + parent->comment
}
definition box {
  relation viewer: user
  relation parent: box
  permission view = viewer + parent->view
}
definition doc {
  relation parent: folder | box
  relation viewer: user
  permission view = viewer + parent->view + parent->comment
}
"""
"""Two arrows over one relation (`parent->view + parent->comment`): a combined node."""
