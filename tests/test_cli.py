"""The command line: every subcommand answers --help."""

from __future__ import annotations

import pytest

from edge_assistant.cli import build_parser, main


def _subcommands() -> list[list[str]]:
    parser = build_parser()
    out: list[list[str]] = []
    for action in parser._subparsers._group_actions:  # noqa: SLF001 - argparse has no public walk
        for name, sub in action.choices.items():
            out.append([name])
            if sub._subparsers is not None:  # noqa: SLF001
                for sub_action in sub._subparsers._group_actions:  # noqa: SLF001
                    out.extend([name, n] for n in sub_action.choices)
    return out


@pytest.mark.parametrize("argv", _subcommands(), ids=lambda a: " ".join(a))
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().out
