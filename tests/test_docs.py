"""Docs that cannot rot: every `selfdepth ...` command in README.md and docs/*.md parses, every relative
link and image exists, every results file the README names exists, and the README stays a front door."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import re
import shlex
from pathlib import Path

import pytest

from selfdepth.cli import build_parser
from selfdepth.config import Config

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 150
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_INLINE = re.compile(r"`(selfdepth [^`]+)`")


def _commands(text: str) -> list[tuple[str, bool]]:
    """``(command, complete)`` for every selfdepth command line: fenced blocks' lines (continuations joined,
    comments dropped) are complete commands; inline code spans may be fragments (verb and flags only)."""
    found: list[tuple[str, bool]] = []
    fenced = False
    pending = ""
    for line in text.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            line = pending + line.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if line.startswith("selfdepth "):
                found.append((line.split(" #")[0].strip(), True))
        else:
            found += [(m.group(1), False) for m in _INLINE.finditer(line)]
    return found


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _config_keys() -> set[str]:
    config = Config()
    return {f"{group.name}.{f.name}" for group in dataclasses.fields(config)
            for f in dataclasses.fields(getattr(config, group.name))}


def command_problems(command: str, complete: bool) -> list[str]:
    """What is wrong with one command line: an unknown verb, flag or --set key, or (complete) a parse error."""
    argv = shlex.split(command)[1:]
    if not argv or argv[0].startswith("-"):
        return [] if argv[:1] == ["--version"] or not argv else [f"{command}: unknown flag {argv[0]}"]
    verbs = _subparsers(build_parser())
    if argv[0] not in verbs:
        return [f"{command}: unknown command {argv[0]!r}"]
    sub = verbs[argv[0]]
    problems = []
    for i, word in enumerate(argv[1:], 1):
        flag = word.split("=")[0]
        if flag.startswith("--") and flag not in sub._option_string_actions:
            problems.append(f"{command}: {argv[0]} has no flag {flag}")
        if word == "--set" and i + 1 < len(argv):
            key = argv[i + 1].split("=")[0]
            if key not in _config_keys():
                problems.append(f"{command}: no config key {key}")
    if complete and not problems:
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            try:
                build_parser().parse_args(argv)
            except SystemExit:
                problems.append(f"{command}: does not parse: {stderr.getvalue().strip().splitlines()[-1]}")
    return problems


def link_problems(text: str, where: Path) -> list[str]:
    """Relative links and images of a Markdown file that point at nothing."""
    problems = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor in the same page
        path = (where.parent / target.split("#")[0]).resolve()
        if not path.exists():
            problems.append(f"{where.name}: link to {target} points at nothing")
    return problems


def doc_problems(path: Path) -> list[str]:
    text = path.read_text()
    return [p for c, complete in _commands(text) for p in command_problems(c, complete)] + link_problems(text, path)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_commands_and_links_in_the_docs_are_real(path):
    assert _commands(path.read_text()) or path.name != "README.md"  # the README shows commands
    assert doc_problems(path) == []


def test_a_broken_command_or_link_in_a_scratch_copy_fails(tmp_path):
    """The check above can fail: a scratch copy of the README with one bad flag, one bad key, one bad verb
    and one dead link is caught four times, and the unbroken copy not at all."""
    copy = tmp_path / "README.md"
    copy.write_text((ROOT / "README.md").read_text())
    (tmp_path / "DEVELOPERS.md").write_text("")
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    (tmp_path / "benchmarks").symlink_to(ROOT / "benchmarks")
    assert doc_problems(copy) == []
    broken = copy.read_text() + (
        "\n```\nselfdepth train --config configs/stereo.yaml --no-such-flag 3\n"
        "selfdepth train --set train.no_such_key=1\nselfdepth tranin --config x.yaml\n```\n"
        "See [the missing page](docs/no_such_page.md).\n"
    )
    copy.write_text(broken)
    problems = doc_problems(copy)
    assert len(problems) == 4, problems
    assert any("has no flag --no-such-flag" in p for p in problems)
    assert any("no config key train.no_such_key" in p for p in problems)
    assert any("unknown command 'tranin'" in p for p in problems)
    assert any("no_such_page.md points at nothing" in p for p in problems)
    # A complete command with a bad value is caught by the full parse.
    assert command_problems("selfdepth synth --out x --scenes many", True)


def test_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    for heading in ("## Install and the two commands", "## Use it", "## Train it", "## Which photometric loss?",
                    "## Results"):
        assert heading in text, heading
    section = text.split("## Which photometric loss?")[1].split("\n## ")[0].strip().splitlines()
    assert len(section) <= 6  # the answer in at most six lines
    # Every results file the README names exists (a results table cell names one file).
    for name in re.findall(r"`(benchmarks/results/[^`]+)`", text):
        assert list(ROOT.glob(name)), name
    assert "docs/results.md" in text
