"""SpiceDB's schema language: text → tokens → AST → compiled, validated IR."""
