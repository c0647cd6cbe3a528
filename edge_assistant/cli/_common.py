"""Helpers shared by the subcommands: JSON output, assistant events for people."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def write_json(data: Any, path: str | None) -> None:
    """Write ``data`` as indented JSON to ``path`` (``-`` for stdout); nothing when ``path`` is None."""
    if path is None:
        return
    text = json.dumps(data, indent=2, default=_default)
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")


def _default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


_END_HOW = {"complete": "a complete command at the first pause", "silence": "after the trailing silence",
            "max_length": "the longest command", "end_of_stream": "end of the audio"}


def print_event(out, ev) -> None:
    """One pipeline event (wake, listen time-out, reply) as lines for a person."""
    if ev.kind == "wake":
        out.write(f"[{ev.time_s:6.2f} s] wake word '{ev.model}' (score {ev.score:.2f}): listening\n")
    elif ev.kind == "listen_timeout":
        out.write(f"[{ev.time_s:6.2f} s] no command followed; back to waiting for the wake word\n")
    elif ev.kind == "reply":
        out.write(f"[{ev.speech_end_s:6.2f} s] heard: \"{ev.text}\"  -> intent {ev.intent.name}"
                  f" (ASR {ev.asr_ms:.0f} ms; answered {1000 * ev.endpoint_delay_s + ev.reply_latency_ms:.0f} ms"
                  f" after the speech ended: {_END_HOW.get(ev.end_reason, ev.end_reason)})\n")
        print_answer(out, ev.answer, indent="           ", prefix=f"{ev.answer.agent}: ", most=6)
    out.flush()


def print_answer(out, answer, indent: str = "", prefix: str = "", most: int | None = None) -> None:
    """An agent's answer, then the values it used with their ages and what it was missing."""
    out.write(f"{indent}{prefix}{answer.text}\n")
    used = [v for v in answer.values if v.age_s is not None]
    if used:
        out.write(f"{indent}  values used: " + "; ".join(
            f"{v.label}={v.value}{' ' + v.unit if v.unit else ''} ({v.age_s:.1f} s old{', stale' if v.stale else ''})"
            for v in used[:most]) + "\n")
    if answer.missing:
        out.write(f"{indent}  missing: " + ", ".join(answer.missing) + "\n")
