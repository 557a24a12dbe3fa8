"""rebac: a Zanzibar-style relationship-based authorization engine.

It speaks SpiceDB's schema language. The engine library (this package) imports neither
gRPC nor protobuf, except `rebac.client` and `rebac.cli`, which are clients of the server.
"""

from rebac.errors import RebacError
from rebac.tuples import ObjectRef, Relationship, RelationshipUpdate, SubjectRef, rel

__all__ = ["ObjectRef", "RebacError", "Relationship", "RelationshipUpdate", "SubjectRef", "rel"]

__version__ = "0.1.0"
