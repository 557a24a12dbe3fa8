"""The CLI's TLS options (--ca, --cert, --key) against a real mutual-TLS `rebac serve`."""

from __future__ import annotations

import pytest

from tests.rebac.cli.cli_helpers import ADMIN_KEY, Rebac, serve_memory
from tests.tls_helpers import make_certs, requires_openssl

pytestmark = requires_openssl


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    d = make_certs(tmp_path_factory.mktemp("tls"))
    flags = (
        "--tls-cert",
        str(d / "server.pem"),
        "--tls-key",
        str(d / "server.key"),
        "--tls-client-ca",
        str(d / "ca.pem"),
    )
    with serve_memory(d, *flags) as server:
        yield Rebac(server.endpoint.replace("127.0.0.1", "localhost"), d / "contexts.json"), d


def _run(rebac: Rebac, *args: str):
    """Run with endpoint and token from the environment but no REBAC_INSECURE."""
    return rebac(*args, env={"REBAC_ENDPOINT": rebac.endpoint, "REBAC_TOKEN": ADMIN_KEY}, connect=False)


class TestTls:
    def test_mutual_tls_with_ca_cert_and_key(self, tls):
        """With the CA and a client certificate the schema read reaches the server (no schema yet: exit 1)."""
        rebac, d = tls
        result = _run(
            rebac,
            "schema",
            "read",
            "--ca",
            str(d / "ca.pem"),
            "--cert",
            str(d / "client.pem"),
            "--key",
            str(d / "client.key"),
        )
        assert result.code == 1, result.err
        assert "schema" in result.err.lower()
        assert "rebac schema write FILE" in result.err

    def test_without_a_client_certificate_the_server_refuses(self, tls):
        """mTLS: trusting the CA is not enough without a client certificate (exit 3)."""
        rebac, d = tls
        result = _run(rebac, "schema", "read", "--ca", str(d / "ca.pem"))
        assert result.code == 3
        assert rebac.endpoint in result.err

    def test_plaintext_against_tls_fails_cleanly(self, tls):
        """--insecure against a TLS server exits 3 with one line, never a traceback."""
        rebac, _ = tls
        result = _run(rebac, "schema", "read", "--insecure")
        assert result.code == 3
        assert result.err.count("\n") == 1

    def test_missing_ca_file_is_a_usage_error(self, tls):
        """An unreadable --ca file names the flag and path (exit 2)."""
        rebac, d = tls
        result = _run(rebac, "schema", "read", "--ca", str(d / "nope.pem"))
        assert result.code == 2
        assert "--ca" in result.err
