from rebac.cli import main


def write(tmp_path, text, name="schema.zed"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


class TestSchemaCli:
    def test_validate_ok_prints_warnings(self, tmp_path, capsys):
        """A valid schema exits 0 and prints warnings."""
        path = write(tmp_path, "definition user {}\ndefinition doc {\n relation viewer: user\n}\n")
        assert main(["schema", "validate", path]) == 0
        assert "doc#viewer" in capsys.readouterr().out

    def test_validate_error_file_line_column(self, tmp_path, capsys):
        """An invalid schema exits 1 with `file:line:column: message`."""
        path = write(tmp_path, "definition doc {\n relation viewer: usr\n}\n")
        assert main(["schema", "check", path]) == 1
        assert f"{path}:2:19: object definition `usr` not found" in capsys.readouterr().err

    def test_binary_file(self, tmp_path, capsys):
        """Binary junk exits 1 with a clear message, no traceback."""
        path = tmp_path / "junk.zed"
        path.write_bytes(b"\xff\xfe\x00junk")
        assert main(["schema", "validate", str(path)]) == 1
        assert "not UTF-8" in capsys.readouterr().err

    def test_missing_file(self, tmp_path, capsys):
        """A missing file is a usage error naming the file."""
        assert main(["schema", "validate", str(tmp_path / "nope.zed")]) == 2
        assert "no such file" in capsys.readouterr().err

    def test_format_and_graph(self, tmp_path, capsys):
        """format prints canonical text; graph prints DOT or Mermaid."""
        path = write(tmp_path, "definition user {}\ndefinition doc { relation viewer: user }\n")
        assert main(["schema", "format", path]) == 0
        assert "\trelation viewer: user" in capsys.readouterr().out
        assert main(["schema", "graph", path]) == 0
        assert "digraph" in capsys.readouterr().out
        assert main(["schema", "graph", path, "--mermaid"]) == 0
        assert "flowchart" in capsys.readouterr().out

    def test_imports_resolve_relative_to_file(self, tmp_path, capsys):
        """Imports are read relative to the schema file."""
        (tmp_path / "sub").mkdir()
        write(tmp_path, "definition user {}\n", "sub/user.zed")
        path = write(
            tmp_path, 'use import\nimport "sub/user.zed"\ndefinition doc {\n relation viewer: user\n}\n'
        )
        assert main(["schema", "format", path]) == 0
        assert "definition user" in capsys.readouterr().out


VALIDATION_YAML = """\
schema: |-
  definition user {}

  definition doc {
      relation viewer: user
      permission view = viewer + editr
  }
relationships: |-
  doc:1#viewer@user:ann
"""


class TestSchemaCommandsOnValidationFiles:
    def test_format_reads_the_schema_of_a_validation_file(self, tmp_path, capsys):
        """`schema format FILE.yaml` prints the canonical form of the file's schema."""
        path = write(tmp_path, VALIDATION_YAML.replace(" + editr", ""), "file.yaml")
        assert main(["schema", "format", path]) == 0
        out = capsys.readouterr().out
        assert out.startswith("definition user {}")
        assert "\tpermission view = viewer" in out

    def test_schema_error_points_into_the_yaml_file(self, tmp_path, capsys):
        """A schema error in a validation file exits 1 with the YAML file's own line:column."""
        path = write(tmp_path, VALIDATION_YAML, "file.yml")
        assert main(["schema", "validate", path]) == 1
        err = capsys.readouterr().err
        assert f"{path}:6:34:" in err
        assert "`editr` not found" in err

    def test_other_problems_of_the_validation_file_are_named(self, tmp_path, capsys):
        """A relationship the schema forbids fails `schema validate` with its YAML line."""
        text = VALIDATION_YAML.replace(" + editr", "").replace("doc:1#viewer", "doc:1#owner")
        path = write(tmp_path, text, "file.yaml")
        assert main(["schema", "graph", path]) == 1
        assert f"{path}:9: relationship `doc:1#owner@user:ann`" in capsys.readouterr().err

    def test_missing_validation_file(self, tmp_path, capsys):
        """A missing .yaml file is a usage error naming the file."""
        assert main(["schema", "format", str(tmp_path / "nope.yaml")]) == 2
        assert "nope.yaml: no such file" in capsys.readouterr().err
