"""Where the shared conformance data lives (SpiceDB-format cases kept beside the repository).

Looked up once: `$REBAC_CONFORMANCE_DIR`, else `../shared/conformance` next to the checkout
(how CI lays it out), else `/work/shared/conformance`. Missing data is an error, not an
empty parameter list: a conformance test that silently collects nothing proves nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def _find() -> Path:
    explicit = os.environ.get("REBAC_CONFORMANCE_DIR")
    candidates = [Path(explicit)] if explicit else [_ROOT.parent / "shared" / "conformance", Path("/work/shared/conformance")]
    for candidate in candidates:
        if (candidate / "cases.jsonl").is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    msg = f"conformance data not found (tried {tried}); set REBAC_CONFORMANCE_DIR to the folder holding cases.jsonl"
    raise FileNotFoundError(msg)


CONFORMANCE_DIR = _find()
CASES_FILE = CONFORMANCE_DIR / "cases.jsonl"
PARSER_CASES_FILE = CONFORMANCE_DIR / "parser_cases.jsonl"
VALIDATION_DIR = CONFORMANCE_DIR / "validation"
