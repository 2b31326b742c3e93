"""`maestro completion bash|zsh`: a shell completion script generated from the argument parser itself, so a
new subcommand, flag or choice is completed without a change here. zsh runs the bash script through its
bashcompinit.

The script completes the subcommands, each one's flags, and the choices of a flag (`-o json|yaml`) or of a
positional argument (`completion bash|zsh`); the value of any other flag falls back to the shell's default
completion (file names).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

FUNCTION = "_maestro_complete"
SHELLS = ("bash", "zsh")


@dataclass
class Command:
    """What can follow one (sub)command: its words (flags, choices of positionals), the choices of each flag
    that has some, and the flags that take a value."""

    words: list[str] = field(default_factory=list)
    flag_choices: dict[str, list[str]] = field(default_factory=dict)
    value_flags: list[str] = field(default_factory=list)


def commands(parser: argparse.ArgumentParser) -> dict[str, Command]:
    """The parser's commands: "" (the top level, whose words include the subcommands) and each subcommand."""
    result = {"": Command()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                result[""].words.append(name)
                result[name] = _command(subparser)
        else:
            _add(result[""], action)
    return result


def _command(parser: argparse.ArgumentParser) -> Command:
    command = Command()
    for action in parser._actions:
        _add(command, action)
    return command


def _add(command: Command, action: argparse.Action) -> None:
    if action.help == argparse.SUPPRESS:
        return
    choices = [str(choice) for choice in action.choices or ()]
    if not action.option_strings:  # a positional: its choices are words
        command.words += choices
        return
    command.words += action.option_strings
    if action.nargs != 0:
        for flag in action.option_strings:
            if choices:
                command.flag_choices[flag] = choices
            else:
                command.value_flags.append(flag)


def bash_script(parser: argparse.ArgumentParser, program: str = "maestro") -> str:
    """The bash completion script of the parser's program (`eval "$(maestro completion bash)"`)."""
    return "\n".join(
        [
            f"# bash completion for {program}, generated from its argument parser:",
            f'#   eval "$({program} completion bash)"',
            f"{FUNCTION}() {{",
            '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" command="" words="" i',
            "    # the subcommand: the first word after the program that is not a flag",
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            '        case "${COMP_WORDS[i]}" in -*) ;; *) command="${COMP_WORDS[i]}"; break ;; esac',
            "    done",
            '    case "$command" in',
            *_cases(commands(parser)),
            "    esac",
            '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
            "}",
            f"complete -o default -F {FUNCTION} {program}",
            "",
        ]
    )


def _cases(table: dict[str, Command]) -> Iterator[str]:
    for name, command in table.items():
        yield f"        {shlex.quote(name)})"
        if command.flag_choices or command.value_flags:
            yield '            case "$prev" in'
            for flag, choices in command.flag_choices.items():
                words = shlex.quote(" ".join(choices))
                yield f'                {shlex.quote(flag)}) COMPREPLY=($(compgen -W {words} -- "$cur")); return ;;'
            if command.value_flags:
                # an empty answer: the shell's default completion (complete -o default) offers file names
                flags = "|".join(shlex.quote(flag) for flag in command.value_flags)
                yield f"                {flags}) COMPREPLY=(); return ;;"
            yield "            esac"
        yield f"            words={shlex.quote(' '.join(command.words))}"
        yield "            ;;"


def zsh_script(parser: argparse.ArgumentParser, program: str = "maestro") -> str:
    """The zsh completion script: the bash one, run by zsh's bashcompinit (`source <(maestro completion zsh)`)."""
    return "\n".join(
        [
            f"#compdef {program}",
            f"# zsh completion for {program}: source <({program} completion zsh)",
            "autoload -U +X bashcompinit && bashcompinit",
            bash_script(parser, program),
        ]
    )


def add_completion(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description='Print a completion script for bash (eval "$(maestro completion bash)", e.g. in '
        "~/.bashrc) or zsh (source <(maestro completion zsh), e.g. in ~/.zshrc).",
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell")
    parser.set_defaults(handler=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    from maestro.cli import main  # the whole parser, which registers this very subcommand

    parser = main.build_parser()
    script = bash_script(parser) if args.shell == "bash" else zsh_script(parser)
    sys.stdout.write(script)
    return 0
