"""The running assistant's health: what it writes once a second, and how ``edge-assistant health`` judges it.

The service writes ``health.json`` atomically (write, fsync-free rename) into its runtime directory: systemd's
``$RUNTIME_DIRECTORY`` (a tmpfs, so a once-a-second write does not wear the SD card), else
``$XDG_RUNTIME_DIR/edge-assistant``, else the state directory. Another process (the firmware's mark-good
check, an installer at the console) reads it with :func:`read_health`.

Verdicts:

* ``ok``: models loaded and audio flowing, no warning;
* ``degraded``: the assistant works but something it reads is missing or old (CAN silent, no GNSS fix,
  an ECU not answering, capture overruns or failed pause judgements since the last report); answers say so;
* ``failing``: no fresh report (the process is dead or hung), models not loaded, or no audio for
  :data:`AUDIO_STALL_S` seconds (microphone gone). Only this fails the mark-good check.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_assistant.core.errors import DataFormatError

HEALTH_FILE = "health.json"
SCHEMA_VERSION = 1
AUDIO_STALL_S = 2.0  #: no captured chunk for this long: audio is not flowing
CAN_STALE_S = 5.0  #: no frame for this long: the bus is silent (car asleep, harness unplugged)
GNSS_STALE_S = 10.0  #: no fix for this long: the position is stale (tunnel, antenna)
REPORT_STALE_S = 10.0  #: a report older than this means the writer is dead or hung


def runtime_dir(state_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where ``health.json`` lives (see the module docstring)."""
    env = os.environ if environ is None else environ
    systemd = (env.get("RUNTIME_DIRECTORY") or "").split(":")[0]
    if systemd:
        return Path(systemd)
    xdg = env.get("XDG_RUNTIME_DIR") or ""
    if os.path.isabs(xdg):
        return Path(xdg) / "edge-assistant"
    return state_dir


@dataclass(frozen=True)
class HealthReport:
    """One report: the verdict, the reasons, and the figures behind them."""

    status: str  # "ok", "degraded", "failing"
    problems: tuple[str, ...]
    written_at_s: float  # wall clock
    uptime_s: float
    audio: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    vehicle: dict[str, Any] = field(default_factory=dict)
    uplink: dict[str, Any] = field(default_factory=dict)
    pipeline: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, "status": self.status, "problems": list(self.problems),
                "written_at_s": round(self.written_at_s, 3), "uptime_s": round(self.uptime_s, 1),
                "audio": self.audio, "models": self.models, "vehicle": self.vehicle, "uplink": self.uplink,
                "pipeline": self.pipeline}


def judge(audio: Mapping[str, Any], models_loaded: bool, vehicle: Mapping[str, Any] | None,
          new_overruns: int = 0, new_judge_errors: int = 0) -> tuple[str, tuple[str, ...]]:
    """The verdict and its reasons from the figures (pure, so the rules are tested on their own)."""
    failing: list[str] = []
    warnings: list[str] = []
    if not models_loaded:
        failing.append("models not loaded")
    age = audio.get("last_chunk_age_s")
    if audio.get("state") != "running" or age is None or age > AUDIO_STALL_S:
        state = audio.get("state", "unknown")
        last = "never" if age is None else f"{age:.1f} s ago"
        failing.append(f"audio not flowing (capture {state}, last chunk {last})")
    if new_overruns:
        warnings.append(f"{new_overruns} capture overrun(s) since the last report")
    if new_judge_errors:
        warnings.append(f"{new_judge_errors} pause judgement(s) failed since the last report "
                        "(those commands waited for the trailing silence)")
    if vehicle is not None:
        frame_age = vehicle.get("last_frame_age_s")
        if not vehicle.get("connected"):
            warnings.append(f"CAN bus {vehicle.get('bus')} not connected ({vehicle.get('last_error') or 'opening'})")
        elif frame_age is None or frame_age > CAN_STALE_S:
            warnings.append("CAN bus silent" + ("" if frame_age is None else f" for {frame_age:.0f} s"))
        if vehicle.get("gnss_enabled"):
            fix_age = vehicle.get("gnss_fix_age_s")
            if fix_age is None or fix_age > GNSS_STALE_S:
                warnings.append("no GNSS fix" + ("" if fix_age is None else f" for {fix_age:.0f} s"))
    status = "failing" if failing else "degraded" if warnings else "ok"
    return status, tuple(failing + warnings)


def write_health(path: Path, report: HealthReport) -> None:
    """Replace ``path`` atomically with ``report`` (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report.to_dict(), sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_health(path: Path, now_s: float | None = None) -> dict[str, Any]:
    """The last report at ``path`` with its verdict re-judged for age: a report older than
    :data:`REPORT_STALE_S` is ``failing`` whatever it said. Raises :class:`DataFormatError` naming the
    file when it is missing or not a report (``edge-assistant health`` then exits 1, as for failing)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataFormatError(str(path), "no health report; expected the running assistant to write one "
                                         "(is edge-assistant run running with the same paths?)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(str(path), f"unreadable health report: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION or not isinstance(
            data.get("written_at_s"), (int, float)):
        raise DataFormatError(str(path), f"not a health report of schema {SCHEMA_VERSION}")
    now = time.time() if now_s is None else now_s
    age = now - float(data["written_at_s"])
    data["report_age_s"] = round(age, 3)
    if age > REPORT_STALE_S:
        data["status"] = "failing"
        data["problems"] = [f"last report {age:.0f} s old: the assistant is not running or hangs",
                            *data.get("problems", [])]
    return data
