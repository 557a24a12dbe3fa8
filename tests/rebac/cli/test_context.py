"""Connection settings and `rebac context`: precedence, the contexts file, connection errors."""

from __future__ import annotations

import argparse
import json
import stat

import pytest

from rebac.cli import CliError
from rebac.cli.connection import (
    ConnectionSettings,
    ContextStore,
    config_path,
    error_to_cli,
    resolve_settings,
)
from rebac.errors import CaveatEvaluationError, InvalidRequestError
from tests.rebac.cli.cli_helpers import ADMIN_KEY, cli_against_server, free_port
from tests.tls_helpers import make_certs, requires_openssl


@pytest.fixture(scope="module")
def rebac(tmp_path_factory):
    with cli_against_server(tmp_path_factory.mktemp("context")) as runner:
        yield runner


def _args(**flags: object) -> argparse.Namespace:
    base = {
        "endpoint": None,
        "token": None,
        "insecure": None,
        "ca": None,
        "cert": None,
        "key": None,
        "context_name": None,
    }
    base.update(flags)
    return argparse.Namespace(**base)


class TestResolveSettings:
    def test_defaults(self, tmp_path):
        """With nothing configured: localhost:50051, no token, plaintext on loopback."""
        settings = resolve_settings(_args(), {"REBAC_CLI_CONFIG": str(tmp_path / "none.json")})
        assert settings == ConnectionSettings()
        assert settings.uses_tls is False

    def test_flag_beats_env_beats_context(self, tmp_path):
        """Each layer overrides the one below it, field by field."""
        path = tmp_path / "c.json"
        store = ContextStore(path, "ctx", {"ctx": ConnectionSettings("ctx:1", "ctx-token", insecure=True)})
        store.save()
        env = {"REBAC_CLI_CONFIG": str(path), "REBAC_ENDPOINT": "env:2"}
        assert resolve_settings(_args(), env) == ConnectionSettings("env:2", "ctx-token", insecure=True)
        assert resolve_settings(_args(endpoint="flag:3"), env).endpoint == "flag:3"
        assert resolve_settings(_args(), {**env, "REBAC_TOKEN": "env-token"}).token == "env-token"

    def test_insecure_env_values(self, tmp_path):
        """REBAC_INSECURE=1 forces plaintext; a non-boolean value is a usage error."""
        env = {"REBAC_CLI_CONFIG": str(tmp_path / "none.json"), "REBAC_ENDPOINT": "example.com:443"}
        assert resolve_settings(_args(), env).uses_tls is True
        assert resolve_settings(_args(), {**env, "REBAC_INSECURE": "1"}).uses_tls is False
        with pytest.raises(CliError, match="REBAC_INSECURE"):
            resolve_settings(_args(), {**env, "REBAC_INSECURE": "maybe"})

    def test_unknown_named_context_lists_the_known_ones(self, tmp_path):
        """`--use-context nope` fails naming the saved contexts."""
        path = tmp_path / "c.json"
        ContextStore(path, None, {"prod": ConnectionSettings("p:1")}).save()
        with pytest.raises(CliError, match="known: prod"):
            resolve_settings(_args(context_name="nope"), {"REBAC_CLI_CONFIG": str(path)})

    def test_cert_without_key_is_refused(self, tmp_path):
        """A client certificate needs its key."""
        with pytest.raises(CliError, match="--cert and --key"):
            resolve_settings(_args(cert="c.pem"), {"REBAC_CLI_CONFIG": str(tmp_path / "x.json")})

    def test_config_path_follows_xdg(self, tmp_path):
        """Without REBAC_CLI_CONFIG the file is under XDG_CONFIG_HOME/rebac."""
        assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "rebac" / "contexts.json"

    def test_corrupt_file_is_reported_with_its_path(self, tmp_path):
        """A contexts file that is not JSON names the file and the fix."""
        path = tmp_path / "c.json"
        path.write_text("{not json")
        with pytest.raises(CliError, match="fix or delete it"):
            ContextStore.load(path)


class TestContextCommands:
    def test_set_list_use_remove(self, rebac, tmp_path):
        """A context round-trips through the file (mode 0600) and tokens are never printed."""
        config = {"REBAC_CLI_CONFIG": str(tmp_path / "ctx.json")}
        assert rebac("context", "set", "a", "--endpoint", "h1:1", "--token", "secret-a", env=config).code == 0
        second = rebac("context", "set", "b", "--endpoint", "h2:2", "--insecure", env=config)
        assert second.code == 0
        assert second.out == (
            f"saved context b in {tmp_path / 'ctx.json'}; switch to it with `rebac context use b`\n"
        )
        assert stat.S_IMODE((tmp_path / "ctx.json").stat().st_mode) == 0o600
        listing = rebac("context", "list", env=config)
        assert "secret-a" not in listing.out
        assert listing.lines[1].startswith("*")
        assert " a " in listing.lines[1]
        assert rebac("context", "use", "b", env=config).code == 0
        document = json.loads(rebac("context", "list", "--json", env=config).out)
        assert document["current"] == "b"
        assert [c["name"] for c in document["contexts"]] == ["a", "b"]
        assert all(c["token"] in {None, "set"} for c in document["contexts"])
        assert rebac("context", "remove", "b", env=config).code == 0
        assert json.loads(rebac("context", "list", "--json", env=config).out)["current"] is None

    def test_use_of_an_unknown_context_fails(self, rebac, tmp_path):
        """`use nope` exits 2 and leaves the file alone."""
        config = {"REBAC_CLI_CONFIG": str(tmp_path / "ctx.json")}
        result = rebac("context", "use", "nope", env=config)
        assert result.code == 2
        assert "no context named 'nope'" in result.err

    def test_saved_context_connects_and_flags_override_it(self, rebac, tmp_path):
        """The current context reaches the server; an env endpoint overrides it; a flag beats env."""
        config = str(tmp_path / "ctx.json")
        dead = f"127.0.0.1:{free_port()}"
        base = {"REBAC_CLI_CONFIG": config}
        set_result = rebac(
            "context",
            "set",
            "live",
            "--endpoint",
            rebac.endpoint,
            "--token",
            ADMIN_KEY,
            "--insecure",
            env=base,
            connect=False,
        )
        assert set_result.code == 0
        assert rebac("rel", "read", "document:none", env=base, connect=False).code == 0
        down = rebac("rel", "read", "document:none", env={**base, "REBAC_ENDPOINT": dead}, connect=False)
        assert down.code == 3
        assert dead in down.err
        back = rebac(
            "rel",
            "read",
            "document:none",
            "--endpoint",
            rebac.endpoint,
            env={**base, "REBAC_ENDPOINT": dead},
            connect=False,
        )
        assert back.code == 0


class TestConnectionErrors:
    def test_server_down_is_one_line_exit_3(self, rebac):
        """A dead endpoint: exit 3, one line naming it and asking whether the server runs."""
        dead = f"127.0.0.1:{free_port()}"
        result = rebac("check", "document:1", "view", "user:ann", env={"REBAC_ENDPOINT": dead})
        assert result.code == 3
        assert result.err.startswith(f"rebac: error: cannot reach rebac at {dead}: ")
        assert "(is `rebac serve` running?)" in result.err
        assert result.err.count("\n") == 1

    @requires_openssl
    def test_tls_against_a_plaintext_server_is_one_line(self, rebac, tmp_path):
        """A TLS handshake failure exits 3 with rebac's one line only: gRPC's own log stays silent."""
        ca = make_certs(tmp_path) / "ca.pem"
        result = rebac("schema", "read", "--ca", str(ca), env={"REBAC_INSECURE": ""})
        assert result.code == 3
        assert result.err.startswith(f"rebac: error: cannot reach rebac at {rebac.endpoint}: ")
        assert result.err.count("\n") == 1

    def test_bad_token_is_exit_3_with_the_fix(self, rebac):
        """A wrong key: exit 3, says the credentials were rejected and how to pass a key."""
        result = rebac("check", "document:1", "view", "user:ann", env={"REBAC_TOKEN": "wrong"})
        assert result.code == 3
        assert "rejected the credentials" in result.err
        assert "--token" in result.err

    def test_missing_token_is_refused(self, rebac):
        """No key at all is refused the same way; nothing is answered."""
        result = rebac("rel", "read", "document:1", env={"REBAC_TOKEN": ""})
        assert result.code == 3
        assert result.out == ""


class TestErrorToCli:
    def test_request_field_paths_become_the_flag_or_argument(self):
        """A server error about `optional_cursor.token` or `subject.object_id` names --cursor or SUBJECT."""
        settings = ConnectionSettings()
        cursor = InvalidRequestError("optional_cursor.token: malformed cursor", field="optional_cursor.token")
        assert str(error_to_cli(cursor, settings)) == "--cursor: malformed cursor"
        wildcard = InvalidRequestError("subject.object_id: no wildcard", field="subject.object_id")
        assert str(error_to_cli(wildcard, settings)) == "SUBJECT: no wildcard"
        assert error_to_cli(wildcard, settings).exit_code == 2

    def test_other_fields_are_left_as_they_are(self):
        """A field the CLI does not fill from one flag keeps its path, so nothing is misnamed."""
        other = InvalidRequestError("updates[0].operation: bad", field="updates[0].operation")
        assert str(error_to_cli(other, ConnectionSettings())) == "updates[0].operation: bad"

    def test_unusable_caveat_context_is_an_input_error(self):
        """A caveat that cannot use the given context exits 2, like other bad input."""
        err = CaveatEvaluationError("context parameter `day`: a string is required", caveat="on_day")
        assert error_to_cli(err, ConnectionSettings()).exit_code == 2
