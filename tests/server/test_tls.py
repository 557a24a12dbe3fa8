"""TLS and mutual TLS on a real channel, with certificates made by the openssl CLI."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc import aio

from rebac.datastore.memory import MemoryDatastore
from rebac_server._gen.rebac.v1 import schema_pb2, schema_pb2_grpc
from tests.server.server_helpers import serve
from tests.tls_helpers import make_certs, requires_openssl

pytestmark = requires_openssl


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for localhost, and a client certificate, all signed by the CA."""
    return make_certs(tmp_path_factory.mktemp("certs"))


async def _read_schema(port: int, credentials: grpc.ChannelCredentials) -> str:
    async with aio.secure_channel(f"localhost:{port}", credentials) as channel:
        response = await schema_pb2_grpc.SchemaServiceStub(channel).ReadSchema(
            schema_pb2.ReadSchemaRequest(), timeout=10
        )
        return response.schema_text


class TestTls:
    async def test_tls_server_accepts_a_client_trusting_its_ca(self, certs, tmp_path):
        """With --tls-cert/--tls-key a client that trusts the CA is served."""
        async with (
            MemoryDatastore() as ds,
            serve(ds, tmp_path, tls_cert=certs / "server.pem", tls_key=certs / "server.key") as served,
        ):
            credentials = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes())
            assert "definition user" in await _read_schema(served.running.port, credentials)

    async def test_mtls_refuses_a_client_without_a_certificate(self, certs, tmp_path):
        """With --tls-client-ca a client without a certificate is refused; one with a signed certificate is served."""
        async with (
            MemoryDatastore() as ds,
            serve(
                ds,
                tmp_path,
                tls_cert=certs / "server.pem",
                tls_key=certs / "server.key",
                tls_client_ca=certs / "ca.pem",
            ) as served,
        ):
            anonymous = grpc.ssl_channel_credentials((certs / "ca.pem").read_bytes())
            with pytest.raises(aio.AioRpcError) as info:
                await _read_schema(served.running.port, anonymous)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
            client = grpc.ssl_channel_credentials(
                (certs / "ca.pem").read_bytes(),
                (certs / "client.key").read_bytes(),
                (certs / "client.pem").read_bytes(),
            )
            assert "definition user" in await _read_schema(served.running.port, client)
