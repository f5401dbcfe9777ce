"""The README against the command (after sqlite-utils' tests/test_docs.py): every command and option `--help` shows
is in README.md, and every `stormwatch ...` line the README shows parses as written (parsed only, never run)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import click
import pytest

from stormwatch.cli import main

from .conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def commands(command: click.Command = main, path: tuple[str, ...] = ("stormwatch",)
             ) -> Iterator[tuple[str, click.Command]]:
    """Every command the CLI has, groups and their subcommands included, as `stormwatch alerts list`."""
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            if not sub.hidden:
                yield from commands(sub, (*path, name))


COMMANDS = dict(commands())
OPTIONS = sorted({(name, option) for name, command in COMMANDS.items() for param in command.params
                  if isinstance(param, click.Option) and not param.hidden
                  for option in param.opts if option.startswith("--")})


def mentioned(text: str) -> bool:
    """Whether the README names `text` as a word of its own (`--json` is not found in `--json-lines`)."""
    return re.search(rf"(?<![\w-]){re.escape(text)}(?![\w-])", README) is not None


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_in_the_readme(name: str) -> None:
    assert mentioned(name), f"README.md never shows `{name}`"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str) -> None:
    assert COMMANDS[name].help, f"`{name}` has no help text"


@pytest.mark.parametrize(("name", "option"), OPTIONS, ids=[" ".join(pair) for pair in OPTIONS])
def test_every_option_is_in_the_readme(name: str, option: str) -> None:
    assert mentioned(option), f"README.md never mentions {option} (of `{name}`)"


def readme_command_lines() -> list[str]:
    """The `stormwatch ...` command lines of README.md: in its shell blocks (comments and `&&` chains split off)
    and in its inline code (where a command's bare name is a reference, not a line)."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL):
        for line in block.splitlines():
            for part in line.split("#", 1)[0].split("&&"):
                if part.strip().startswith("stormwatch"):
                    lines.append(part.strip())
    # In the text, `stormwatch import` alone names the command; anything longer is a command line.
    lines += [span for span in re.findall(r"`(stormwatch(?: [^`]*)?)`", README) if span not in COMMANDS]
    return sorted(set(lines))


def as_arguments(line: str) -> list[str]:
    """A README command line as the shell would pass it: optional parts `[...]` written out, `FILE...` as one file."""
    return [word.removesuffix("...") for word in shlex.split(re.sub(r"\[([^]]*)\]", r"\1", line))[1:]]


def parse(arguments: list[str]) -> click.Context:
    """Parse a command line as `stormwatch` would, down to its subcommand, without running anything."""
    command: click.Command = main
    context = main.make_context("stormwatch", list(arguments))
    while isinstance(command, click.Group):
        # click 8.2 renamed `protected_args` (the subcommand's name) to `_protected_args`, deprecating the old name
        protected = vars(context).get("_protected_args")
        rest = [*(context.protected_args if protected is None else protected), *context.args]
        name, sub, rest = command.resolve_command(context, rest)
        assert name is not None and sub is not None, arguments
        command, context = sub, sub.make_context(name, rest, parent=context)
    return context


LINES = readme_command_lines()


def test_the_readme_shows_command_lines() -> None:
    assert len(LINES) >= 10 and "stormwatch collect --once" in LINES


@pytest.mark.parametrize("line", LINES)
def test_every_command_line_in_the_readme_parses(line: str) -> None:
    arguments = as_arguments(line)
    if arguments == ["--version"]:  # answered while parsing, as --help would be
        with pytest.raises(click.exceptions.Exit) as done:
            parse(arguments)
        assert done.value.exit_code == 0
        return
    try:
        parse(arguments)
    except click.ClickException as exc:
        pytest.fail(f"README.md shows `{line}`, which stormwatch refuses: {exc.format_message()}")


def test_a_wrong_line_would_be_caught() -> None:
    with pytest.raises(click.NoSuchOption):
        parse(["summary", "--jsn"])
    with pytest.raises(click.BadParameter):
        parse(["report", "--names", "everyone"])
    with pytest.raises(click.UsageError):
        parse(["nonsense"])
