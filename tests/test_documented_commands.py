"""Every ``zslkit`` command written for users (README, docs/, the comments of params/, the package's docstrings)
parses with the real command line, and every params file it names exists: a renamed flag or file cannot leave
a command in the docs that fails when pasted."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from zslkit.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("run", "sweep", "params", "train", "transfer", "tag")
# a command runs to the end of its line or a closing backtick; a comment, a pipe or a redirection ends it
COMMAND = re.compile(r"\bzslkit (?:%s)\b[^`\n]*" % "|".join(SUBCOMMANDS))
# placeholders in synopses (``zslkit run PARAMS.yaml``) and the page's own templates are not commands
PLACEHOLDER = re.compile(r"\b(PARAMS|SWEEP|RUN|FILE_OR_FOLDER|P)\b|<|\{|\*")


def _sources() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "params").glob("*.yaml"))]
    return files + sorted((ROOT / "zslkit").rglob("*.py"))


def _commands() -> list[tuple[str, str]]:
    found = []
    for path in _sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in COMMAND.finditer(line):
                text = re.split(r" #|  | [>|] ", match.group(0))[0].rstrip(" .,;:)")
                # prose names a subcommand or a flag (`zslkit run --from auto`); a command names a file or folder
                if PLACEHOLDER.search(text) or "/" not in text:
                    continue
                found.append((f"{path.relative_to(ROOT)}:{number}", text))
    return found


COMMANDS = _commands()


def test_commands_are_found():
    # the extraction itself: the README's first steps are among them
    texts = {text for _, text in COMMANDS}
    assert "zslkit run params/demo.yaml" in texts
    assert any(t.startswith("zslkit sweep params/") for t in texts)
    assert len(COMMANDS) > 30


@pytest.mark.parametrize("where,text", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_parses(where, text, capsys):
    argv = shlex.split(text)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: `{text}` does not parse: {capsys.readouterr().err.strip()}")
    for arg in argv:
        if arg.startswith("params/") and arg.endswith(".yaml"):
            assert (ROOT / arg).is_file(), f"{where}: `{text}` names {arg}, which does not exist"
