"""rebac's benchmark harness: deterministic datasets, a reference evaluator and the SpiceDB peer.

Run ``python -m benchmarks --help``. Nothing in ``rebac`` imports this package.
"""
