"""Hypothesis strategies: small random SpiceDB schemas and relationship sets.

Shape (kept small so a brute-force oracle can enumerate every question):

- `user` plus three object types `aaa`, `bbb`, `ccc`, each with the same members so every
  arrow target exists: relation `par` (a "parent": plain object types only), relation `mem`
  (users, `user:*`, other types, and subject sets `X#mem`: recursion and cycles), and
  permissions `pva`, `pvb` (`pvb` may use `pva`; `pva` never uses `pvb`).
- Permission expressions use union, intersection, exclusion, nil, computed usersets and
  arrows (`par->pva`, `par->mem`, `par.all(pva)`...). The subtracted side of an exclusion only
  uses `mem` (a lower stratum), so the whole program is stratified and a least fixpoint
  is the one right answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

OBJECT_TYPES = ("aaa", "bbb", "ccc")
OBJECT_IDS = ("1", "2", "3")
USER_IDS = ("u1", "u2", "u3")


@dataclass(frozen=True)
class World:
    """A schema text, its relationship texts, and what each relation allows."""

    schema: str
    relationships: tuple[str, ...]


def _leaf(bare: tuple[str, ...]) -> st.SearchStrategy[str]:
    arrow_targets = ("mem", "pva")
    return st.one_of(
        st.just("mem"),
        st.just("nil"),
        st.sampled_from(("mem", *bare)),
        st.sampled_from(arrow_targets).map(lambda t: f"par->{t}"),
        st.sampled_from(arrow_targets).map(lambda t: f"par.all({t})"),
    )


def expressions(bare: tuple[str, ...]) -> st.SearchStrategy[str]:
    """A permission expression; `bare` names permissions it may use as computed usersets.

    Arrows may always walk to `mem` or `pva` of the parent (data recursion and cycles).
    """

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map(lambda p: f"({p[0]} + {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} & {p[1]})"),
            inner.map(lambda p: f"({p} - mem)"),
        )

    return st.recursive(_leaf(bare), extend, max_leaves=4)


@st.composite
def definitions(draw: st.DrawFn, name: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """One object definition: its text, the `par` subject types and the `mem` subject entries."""
    rp_types = tuple(draw(st.lists(st.sampled_from(OBJECT_TYPES), min_size=1, max_size=2, unique=True)))
    rm_options = ["user", "user:*", *OBJECT_TYPES, *(f"{t}#mem" for t in OBJECT_TYPES)]
    rm_types = tuple(draw(st.lists(st.sampled_from(rm_options), min_size=1, max_size=4, unique=True)))
    if "user" not in rm_types:
        rm_types = ("user", *rm_types)
    pva = draw(expressions(()))  # pva reaches pva only through arrows (`par->pva`)
    pvb = draw(expressions(("pva",)))
    text = (
        f"definition {name} {{\n"
        f"  relation par: {' | '.join(rp_types)}\n"
        f"  relation mem: {' | '.join(rm_types)}\n"
        f"  permission pva = {pva}\n"
        f"  permission pvb = {pvb}\n"
        "}\n"
    )
    return text, rp_types, rm_types


@st.composite
def worlds(draw: st.DrawFn, max_relationships: int = 12) -> World:
    """A random schema and a random set of relationships it allows."""
    parts = ["definition user {}\n"]
    allowed: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for name in OBJECT_TYPES:
        text, rp_types, rm_types = draw(definitions(name))
        parts.append(text)
        allowed[name] = (rp_types, rm_types)
    rels: set[str] = set()
    count = draw(st.integers(0, max_relationships))
    for _ in range(count):
        otype = draw(st.sampled_from(OBJECT_TYPES))
        oid = draw(st.sampled_from(OBJECT_IDS))
        rp_types, rm_types = allowed[otype]
        if draw(st.booleans()):
            subject = f"{draw(st.sampled_from(rp_types))}:{draw(st.sampled_from(OBJECT_IDS))}"
            rels.add(f"{otype}:{oid}#par@{subject}")
            continue
        entry = draw(st.sampled_from(rm_types))
        if entry == "user":
            subject = f"user:{draw(st.sampled_from(USER_IDS))}"
        elif entry == "user:*":
            subject = "user:*"
        elif "#" in entry:
            stype, srel = entry.split("#")
            subject = f"{stype}:{draw(st.sampled_from(OBJECT_IDS))}#{srel}"
        else:
            subject = f"{entry}:{draw(st.sampled_from(OBJECT_IDS))}"
        rels.add(f"{otype}:{oid}#mem@{subject}")
    return World("".join(parts), tuple(sorted(rels)))
