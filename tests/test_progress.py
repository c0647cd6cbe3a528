"""Long steps report progress: plain lines without a terminal, and always what they did and how long."""

from __future__ import annotations

import io
import re

from edge_assistant.cli._progress import Progress


def test_plain_lines_without_a_terminal() -> None:
    out = io.StringIO()
    p = Progress("alexa_car synthesis", total=4, unit="utt", stream=out, every_s=0.0)
    for i in range(1, 5):
        p.update(i)
    p.finish("built /cache/alexa_car.onnx")
    lines = out.getvalue().splitlines()
    assert lines[0] == "alexa_car synthesis: started"
    assert lines[1].startswith("alexa_car synthesis: 1/4 utt (25 %), ")
    assert lines[4].startswith("alexa_car synthesis: 4/4 utt (100 %), ")
    assert re.fullmatch(r"alexa_car synthesis: built /cache/alexa_car\.onnx in \d+\.\d s", lines[-1])


def test_lines_are_rate_limited_but_the_end_is_always_said() -> None:
    out = io.StringIO()
    p = Progress("whisper", total=1000, unit="step", stream=out, every_s=3600.0)
    for i in range(1, 1001):
        p.update(i)
    assert out.getvalue().splitlines() == ["whisper: started", out.getvalue().splitlines()[1]]
    assert out.getvalue().splitlines()[1].startswith("whisper: 1000/1000 step (100 %)")


def test_a_terminal_gets_a_bar_and_the_summary(monkeypatch) -> None:
    out = io.StringIO()
    p = Progress("wake int8 embedding", unit="file", stream=out, tty=True)
    p.update(3, 10)
    p.finish("up to date")
    assert "wake int8 embedding" in out.getvalue() and "3/10" in out.getvalue()
    assert out.getvalue().rstrip().endswith("s") and "up to date in " in out.getvalue()
