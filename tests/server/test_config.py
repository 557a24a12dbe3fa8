"""ServerConfig: flags, env vars, config files, and the refusal to listen unprotected."""

from __future__ import annotations

import argparse
from dataclasses import replace

import grpc
import pytest
from grpc import aio

from rebac.client import RebacClient
from rebac.datastore.memory import MemoryDatastore
from rebac.errors import InvalidRequestError, LimitExceededError
from rebac.writes import write_schema
from rebac_server.app import start_server
from rebac_server.auth import Scope
from rebac_server.config import ServerConfig, add_arguments, config_from_args, is_loopback
from tests.server.server_helpers import SCHEMA


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


class TestConfig:
    def test_defaults(self):
        """No flags: loopback 50051, embedded PostgreSQL, audit to stderr."""
        config = config_from_args(_args(), env={})
        assert config.listen == "127.0.0.1:50051"
        assert config.datastore == "embedded"
        assert config.audit_log == "-"
        assert config.workers >= 1

    def test_flag_beats_env_beats_file(self, tmp_path):
        """A flag wins over REBAC_* which wins over the config file."""
        path = tmp_path / "rebac.toml"
        path.write_text('listen = "127.0.0.1:1111"\nmax_depth = 7\nworkers = 3\n')
        env = {"REBAC_CONFIG": str(path), "REBAC_MAX_DEPTH": "9"}
        config = config_from_args(_args("--workers", "2"), env=env)
        assert (config.listen, config.max_depth, config.workers) == ("127.0.0.1:1111", 9, 2)

    def test_yaml_file(self, tmp_path):
        """A .yaml config file is read as YAML."""
        path = tmp_path / "rebac.yaml"
        path.write_text("datastore: memory\naudit-log: off\n")
        config = config_from_args(_args("--config", str(path)), env={})
        assert config.datastore == "memory"
        assert config.audit_log is None

    def test_unknown_file_option_is_refused(self, tmp_path):
        """A typo in the config file is an error naming the option."""
        path = tmp_path / "rebac.toml"
        path.write_text("listne = '1'\n")
        with pytest.raises(InvalidRequestError, match="listne"):
            config_from_args(_args("--config", str(path)), env={})

    def test_datastore_uri_selects_postgres(self):
        """--datastore-uri alone means the postgres datastore."""
        config = config_from_args(_args("--datastore-uri", "postgresql://x@y/z"), env={})
        assert config.datastore == "postgres"

    def test_memory_serves_from_one_process(self):
        """--datastore memory forces one worker whatever --workers says."""
        config = config_from_args(_args("--datastore", "memory", "--workers", "4"), env={})
        assert config.effective_workers == 1

    def test_non_loopback_without_keys_is_refused(self):
        """0.0.0.0 without keys refuses to start, naming the escape hatch."""
        with pytest.raises(InvalidRequestError, match="--insecure-no-auth"):
            config_from_args(_args("--listen", "0.0.0.0:50051"), env={})

    def test_non_loopback_with_a_key_or_explicit_insecure_is_allowed(self):
        """A key, or --insecure-no-auth, allows a public address."""
        keyed = config_from_args(_args("--listen", "0.0.0.0:1", "--preshared-key", "k"), env={})
        assert keyed.keys[0].scopes == frozenset(Scope)
        assert config_from_args(_args("--listen", "[::]:1", "--insecure-no-auth"), env={}).insecure_no_auth

    def test_key_file_and_preshared_keys_combine(self, tmp_path):
        """Preshared keys get ids preshared-N; key file ids are kept."""
        path = tmp_path / "keys"
        path.write_text("ci secret1 write\n")
        config = config_from_args(
            _args("--preshared-key", "a", "--preshared-key", "b", "--key-file", str(path)), env={}
        )
        assert [k.id for k in config.keys] == ["preshared-1", "preshared-2", "ci"]

    def test_tls_key_without_cert_is_refused(self):
        """--tls-key alone is a config error."""
        with pytest.raises(InvalidRequestError, match="tls"):
            config_from_args(_args("--tls-key", "k.pem"), env={})

    def test_operations_options_from_env(self, tmp_path):
        """Log level, tracing, GC interval and the key file path come from REBAC_* too."""
        keys = tmp_path / "keys"
        keys.write_text("ci secret1 write\n")
        env = {
            "REBAC_LOG_LEVEL": "debug",
            "REBAC_TRACING": "otel",
            "REBAC_GC_INTERVAL": "0",
            "REBAC_KEY_FILE": str(keys),
        }
        config = config_from_args(_args(), env=env)
        assert (config.log_level, config.tracing, config.gc_interval) == ("debug", "otel", 0.0)
        assert config.key_file == keys
        assert [k.id for k in config.keys] == ["ci"]

    @pytest.mark.parametrize(
        ("option", "value"), [("log_level", "loud"), ("gc_interval", -1.0), ("tracing", "zipkin")]
    )
    def test_bad_operations_options_are_refused(self, option, value):
        """A bad log level, negative GC interval or unknown tracing mode names the option."""
        with pytest.raises(InvalidRequestError, match=option):
            ServerConfig(**{option: value}).validate()

    @pytest.mark.parametrize("bad", ["nohost", "host:notaport", "host:99999"])
    def test_malformed_listen(self, bad):
        """A malformed --listen is an error naming it."""
        with pytest.raises(InvalidRequestError, match="listen"):
            ServerConfig(listen=bad).validate()

    @pytest.mark.parametrize(
        ("host", "loopback"),
        [
            ("127.0.0.1", True),
            ("::1", True),
            ("localhost", True),
            ("0.0.0.0", False),
            ("10.0.0.1", False),
            ("example.com", False),
        ],
    )
    def test_is_loopback(self, host, loopback):
        """Only loopback addresses count as safe without keys."""
        assert is_loopback(host) is loopback


class TestContextualRelationshipLimit:
    def test_default_flag_env_and_file(self, tmp_path):
        """The bound defaults to 100 and comes from the flag, REBAC_MAX_CONTEXTUAL_RELATIONSHIPS or the file."""
        assert config_from_args(_args(), env={}).max_contextual_relationships == 100
        flag = _args("--max-contextual-relationships", "3")
        assert config_from_args(flag, env={}).max_contextual_relationships == 3
        env = {"REBAC_MAX_CONTEXTUAL_RELATIONSHIPS": "4"}
        assert config_from_args(_args(), env=env).max_contextual_relationships == 4
        path = tmp_path / "rebac.toml"
        path.write_text("max-contextual-relationships = 5\n")
        assert config_from_args(_args("--config", str(path)), env={}).max_contextual_relationships == 5

    def test_negative_is_refused(self):
        """A negative bound is an error naming the option."""
        with pytest.raises(InvalidRequestError, match="max_contextual_relationships"):
            config_from_args(_args("--max-contextual-relationships", "-1"), env={})

    async def test_one_over_the_bound_is_resource_exhausted_over_grpc(self, tmp_path):
        """N+1 contextual relationships get RESOURCE_EXHAUSTED and change nothing; N are evaluated."""
        config = replace(
            config_from_args(_args("--max-contextual-relationships", "2"), env={}),
            listen="127.0.0.1:0",
            audit_log=None,
        )
        extra = [f"document:ctx#viewer@user:u{i}" for i in range(3)]
        async with MemoryDatastore() as ds:
            await write_schema(ds, SCHEMA)
            running = await start_server(config, ds)
            try:
                async with RebacClient(f"127.0.0.1:{running.port}") as client:
                    allowed = await client.check("document:ctx", "view", "user:u1", contextual=extra[:2])
                    assert allowed.allowed
                    with pytest.raises(LimitExceededError, match="limit of 2") as info:
                        await client.check("document:ctx", "view", "user:u1", contextual=extra)
                    cause = info.value.__cause__
                    assert isinstance(cause, aio.AioRpcError)
                    assert cause.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                    alone = await client.check("document:ctx", "view", "user:u1")
                    assert not alone.allowed
            finally:
                await running.stop(0)


class TestMigrateOption:
    def test_off_by_default_and_on_from_flag_or_env(self):
        """`--migrate` or REBAC_MIGRATE=1 turns migration at start on; it is off otherwise."""
        assert config_from_args(_args(), env={}).migrate is False
        assert config_from_args(_args("--migrate"), env={}).migrate is True
        assert config_from_args(_args(), env={"REBAC_MIGRATE": "1"}).migrate is True
        assert config_from_args(_args(), env={"REBAC_MIGRATE": "0"}).migrate is False
