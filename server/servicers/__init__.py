"""gRPC servicers: thin adapters from the rebac.v1 services to the engine and `rebac.writes`.

Each method converts the request, resolves the revision, makes one engine or
`rebac.writes` call, audits the decision, and converts the result back.
"""
