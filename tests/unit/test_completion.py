"""cli/completion.py: the completion scripts come from the parser, so every subcommand, flag and choice of
`maestro` is completed; bash accepts the script and completes with it."""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess

import pytest

from maestro.cli import completion
from maestro.cli import main as cli

BASH = shutil.which("bash") or "/bin/bash"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def complete(*words: str) -> list[str]:
    """What bash offers for the last word of `words` (the word being typed), with the generated script."""
    script = completion.bash_script(cli.build_parser())
    line = " ".join(shlex.quote(word) for word in words)
    driver = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
        f'{completion.FUNCTION}; printf "%s\\n" "${{COMPREPLY[@]}}"'
    )
    result = subprocess.run([BASH, "-c", driver], capture_output=True, text=True, timeout=30, check=True)
    return [word for word in result.stdout.splitlines() if word]


def test_the_script_names_every_subcommand_and_flag() -> None:
    script = completion.bash_script(cli.build_parser())
    assert {"render", "validate", "crd", "run", "status", "completion"} <= set(subcommands())
    for name, parser in subcommands().items():
        assert f"        {name})" in script, name
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in script, f"{name} {flag}"
    assert "complete -o default -F _maestro_complete maestro" in script


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_bash_accepts_the_script(shell: str) -> None:
    parser = cli.build_parser()
    script = completion.bash_script(parser) if shell == "bash" else completion.zsh_script(parser)
    if shell == "zsh":
        assert script.startswith("#compdef maestro\n") and "bashcompinit" in script
        script = script.replace("autoload -U +X bashcompinit && bashcompinit", "")  # zsh's, not bash's
    result = subprocess.run([BASH, "-n"], input=script, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_bash_completes_subcommands_flags_and_choices() -> None:
    assert set(complete("maestro", "")) >= set(subcommands()) | {"--version", "--help"}
    assert complete("maestro", "st") == ["status"]
    assert set(complete("maestro", "status", "shop", "--")) >= {
        "--watch",
        "--timeout",
        "--output",
        "--context",
    }
    assert complete("maestro", "status", "shop", "-o", "") == ["json", "yaml"]
    assert complete("maestro", "completion", "z") == ["zsh"]
    assert complete("maestro", "status", "shop", "--kubeconfig", "") == []  # the shell's file names


def test_a_new_subcommand_and_flag_are_completed_without_a_change() -> None:
    parser = argparse.ArgumentParser(prog="maestro")
    subparsers = parser.add_subparsers()
    new = subparsers.add_parser("frobnicate")
    new.add_argument("--level", choices=["low", "high"])
    new.add_argument("--hidden", help=argparse.SUPPRESS)
    table = completion.commands(parser)
    assert "frobnicate" in table[""].words
    assert table["frobnicate"].flag_choices == {"--level": ["low", "high"]}
    assert "--hidden" not in completion.bash_script(parser)


def test_the_completion_subcommand_prints_the_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["completion", "bash"]) == 0
    assert capsys.readouterr().out == completion.bash_script(cli.build_parser())
    assert cli.main(["completion", "zsh"]) == 0
    assert capsys.readouterr().out.startswith("#compdef maestro")


def test_program_name_as_a_kubectl_plugin() -> None:
    assert cli.program_name("/usr/local/bin/kubectl-maestro") == "kubectl maestro"
    assert cli.program_name("/venv/bin/maestro") == "maestro"
    assert cli.build_parser("kubectl maestro").format_usage().startswith("usage: kubectl maestro ")
