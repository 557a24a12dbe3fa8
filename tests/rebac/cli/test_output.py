"""Output helpers (colour rules, tables, trees) and shell completion scripts."""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import shutil
import subprocess

import pytest

from rebac.cli import build_parser, main
from rebac.cli.completion import command_specs, render_bash, render_fish, render_zsh
from rebac.cli.output import (
    Palette,
    TreeNode,
    expand_tree_node,
    palette_for,
    permissionship_word,
    render_table,
    render_tree,
)
from rebac.engine.requests import ExpandOperation, ExpandTree, Permissionship
from rebac.tuples import ObjectRef, SubjectRef
from tests.rebac.cli.cli_helpers import REBAC_BIN


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestOutput:
    def test_colour_only_on_a_terminal_without_no_color(self):
        """A TTY gets colour; NO_COLOR or a pipe turns it off."""
        assert palette_for(_Tty(), {}).enabled
        assert not palette_for(_Tty(), {"NO_COLOR": "1"}).enabled
        assert not palette_for(io.StringIO(), {}).enabled

    def test_paint(self):
        """Disabled palettes return text unchanged; enabled ones wrap it in ANSI codes."""
        assert Palette(enabled=False).paint("x", "red") == "x"
        assert Palette(enabled=True).paint("x", "red") == "\x1b[31mx\x1b[0m"

    def test_table_aligns_columns(self):
        """Columns are padded to the widest cell with no trailing spaces."""
        assert render_table(["A", "BB"], [["long", "x"], ["s", "y"]]) == "A     BB\nlong  x\ns     y"

    def test_tree(self):
        """Children are drawn with box characters, last child with └──."""
        tree = TreeNode("root", (TreeNode("a", (TreeNode("a1"),)), TreeNode("b")))
        assert render_tree(tree) == "root\n├── a\n│   └── a1\n└── b"

    def test_empty_operation_node_says_none(self):
        """A union over nothing (an arrow with no targets) draws `(none)` under it, like an empty leaf."""
        doc = ObjectRef("document", "1")
        tree = ExpandTree(
            doc,
            "view",
            ExpandOperation.UNION,
            (
                ExpandTree(doc, "viewer", ExpandOperation.LEAF, subjects=(SubjectRef("user", "ann"),)),
                ExpandTree(doc, "view", ExpandOperation.UNION),
            ),
        )
        assert render_tree(expand_tree_node(tree)) == (
            "document:1#view \u222a union\n"
            "├── document:1#viewer\n"
            "│   └── user:ann\n"
            "└── document:1#view \u222a union\n"
            "    └── (none)"
        )

    def test_permissionship_words(self):
        """HAS → true, NO → false, CONDITIONAL → caveated."""
        assert [permissionship_word(p) for p in Permissionship] == ["false", "true", "caveated"]


class TestCompletion:
    def test_specs_cover_every_command_and_option(self):
        """Every top-level command and nested sub-command has a spec with its options."""
        specs = {spec.path: spec for spec in command_specs(build_parser())}
        top = {name for name, _ in specs[()].subcommands}
        assert {"rel", "check", "expand", "lookup-resources", "import", "export", "context", "schema"} <= top
        assert ("rel", "create") in specs
        assert "--endpoint" in {opt for opt, _ in specs[("check",)].options}
        assert "--explain" in {opt for opt, _ in specs[("check",)].options}

    def test_scripts_mention_commands(self):
        """bash, zsh and fish scripts include the commands and the registration line."""
        specs = command_specs(build_parser())
        assert "complete -F _rebac rebac" in render_bash(specs)
        assert "bashcompinit" in render_zsh(specs)
        assert "__fish_seen_subcommand_from rel" in render_fish(specs)

    @pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
    def test_bash_script_completes_subcommands(self, capsys):
        """Sourced into bash, `rebac rel cr<TAB>` completes to `create`."""
        assert main(["completion", "bash"]) == 0
        script = capsys.readouterr().out
        probe = script + '\nCOMP_WORDS=(rebac rel cr); COMP_CWORD=2; _rebac; echo "${COMPREPLY[@]}"\n'
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
        assert done.stdout.split() == ["create"]

    def test_unknown_shell_is_a_usage_error(self, capsys):
        """`rebac completion tcsh` exits 2 naming the choices."""
        with pytest.raises(SystemExit) as info:
            main(["completion", "tcsh"])
        assert info.value.code == 2
        assert "bash" in capsys.readouterr().err


def _subparser(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    """The parser of `rebac PATH...` (e.g. ``("rel", "create")``)."""
    for name in path:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        assert actions, f"{name}: no sub-commands under {parser.prog}"
        parser = actions[0].choices[name]
    return parser


class TestHelp:
    @pytest.mark.parametrize(
        "command",
        [
            ("rel", "create"),
            ("rel", "delete"),
            ("rel", "read"),
            ("rel", "touch"),
            ("check",),
            ("expand",),
            ("lookup-resources",),
            ("lookup-subjects",),
            ("import",),
            ("export",),
            ("context",),
            ("context", "set"),
            ("completion",),
            ("schema", "write"),
            ("schema", "read"),
            ("schema", "diff"),
        ],
        ids=" ".join,
    )
    def test_every_command_has_an_example(self, command):
        """Every client command's help (the text `--help` prints) shows an `example` section."""
        help_text = _subparser(build_parser(), *command).format_help()
        assert "example" in help_text

    def test_caveat_flags_are_documented(self):
        """check and both lookups offer --context and --with, each with an example."""
        parser = build_parser()
        for command in ("check", "lookup-resources", "lookup-subjects"):
            help_text = _subparser(parser, command).format_help()
            assert "--context JSON" in help_text, command
            assert "--with REL" in help_text, command
            assert "--with " in help_text.split("example", 1)[1], command

    def test_version_prints_the_installed_version(self):
        """The real `rebac --version` exits 0 and prints `rebac` and the distribution's version."""
        done = subprocess.run([REBAC_BIN, "--version"], capture_output=True, text=True, check=False)
        assert (done.returncode, done.stdout) == (0, f"rebac {importlib.metadata.version('rebac')}\n")

    def test_top_level_help_documents_exit_codes(self):
        """The real `rebac --help` exits 0 and lists the exit codes."""
        done = subprocess.run([REBAC_BIN, "--help"], capture_output=True, text=True, check=False)
        assert done.returncode == 0
        assert "exit codes" in done.stdout.lower()
        assert "3" in done.stdout
