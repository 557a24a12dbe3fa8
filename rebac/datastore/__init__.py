"""Relationship storage: the Datastore protocol, filters and the implementations."""

from rebac.datastore.filters import ANY_RELATION, RelationshipFilter, SubjectFilter
from rebac.datastore.protocol import Datastore, Reader, RevisionChanges, Transaction, TxFn

__all__ = [
    "ANY_RELATION",
    "Datastore",
    "Reader",
    "RelationshipFilter",
    "RevisionChanges",
    "SubjectFilter",
    "Transaction",
    "TxFn",
]
