"""The command line: every subcommand answers --help."""

from __future__ import annotations

import subprocess
import sys

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


def test_streaming_output_to_a_closed_pipe_exits_quietly(tmp_path) -> None:
    """`edge-assistant vehicle watch --json | head -1`: exit 141 (128 + SIGPIPE), no traceback."""
    from edge_assistant.vehicle import DEMO_DBC

    err = tmp_path / "stderr.txt"
    with open(err, "wb") as err_fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_assistant", "vehicle", "watch", "--dbc", str(DEMO_DBC),
             "--bus", "virtual:broken-pipe-test", "--json", "--refresh-s", "0.01", "--duration", "60"],
            stdout=subprocess.PIPE, stderr=err_fh)
        first = proc.stdout.readline()  # the reader takes one line, then goes away like `head -1`
        proc.stdout.close()
        try:
            rc = proc.wait(timeout=60)
        finally:
            proc.kill()
    assert first.startswith(b"{")
    assert rc == 141, err.read_text()
    assert "Traceback" not in err.read_text() and "BrokenPipe" not in err.read_text()


@pytest.mark.parametrize("command", [["wake", "x.wav"], ["bench", "wake", "--positives", "x"]])
def test_wake_verifier_flag_names_a_known_verifier(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`--verifier NAME|off` on `wake` and `bench wake`: an unknown name is the project's error, naming the key."""
    assert main([*command, "--verifier", "bogus"]) == 1
    err = capsys.readouterr().err
    assert "verifier" in err and "'bogus'" in err and "whisper" in err
