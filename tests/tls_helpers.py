"""Test certificates made by the openssl CLI: a CA, and server and client certificates it signs.

Shared by the server's and the CLI's TLS tests. `requires_openssl` is the skip marker for
modules that need it (the reason names the missing tool). Keys are EC P-256: generating
them takes milliseconds, where RSA-2048 takes a noticeable fraction of a second each.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["make_certs", "requires_openssl"]

requires_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the openssl CLI is needed to make test certificates"
)

_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(directory: Path) -> Path:
    """Write ca.pem/ca.key, server.pem/server.key and client.pem/client.key into `directory`.

    The server and client certificates name DNS:localhost and IP:127.0.0.1 and are valid
    for two days; returns `directory`.
    """
    _openssl(
        "req", "-x509", *_KEY, "-days", "2", "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.pem",
        cwd=directory,
    )  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl(
            "req", *_KEY, "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            cwd=directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.cnf", "-out", f"{name}.pem",
            cwd=directory,
        )  # fmt: skip
    return directory
