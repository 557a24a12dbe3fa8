"""The graph evaluator: check, expand, lookups and bulk check over a Reader."""
