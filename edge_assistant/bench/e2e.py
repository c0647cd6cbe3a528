"""``bench e2e``: from the end of the driver's words to the reply, over the whole assistant.

The scene is the demo's: commands spoken by espeak-ng after the wake word in generated car-cabin noise
(:mod:`edge_assistant.pipeline.scene`), so the last voiced sample of every command is known. Two runs:

* **fast**: the stream goes through the assistant as fast as it takes it (inline answers, 16 kHz, one
  thread). End of speech to reply = the stream time from the last voiced sample to the end-of-utterance
  decision (the endpointing wait, which includes the VAD's own lag) plus the processing after it (ASR,
  intent, agent; for a command ended at a pause, the speculative ASR that decided it);
* **realtime**: the device as the service runs it (:class:`~edge_assistant.app.runtime.App`): the scene is
  spoken into an ALSA ``file`` PCM at 48 kHz in real time, each 80 ms block written when its last sample
  has been "spoken"; the demo car drives on the virtual bus and its comfort ECU confirms commands. End of
  speech to reply = wall time of the reply event minus the wall time at which the last voiced sample was
  spoken. A block of 80 ms delays a sample by 40 ms on average where the device's 20 ms period delays it by
  10 ms, so this figure is up to 60 ms pessimistic (fed in 20 ms blocks, ALSA's file plugin read the FIFO
  short and the wake word was never heard). The inline assistant is then fed the very samples the device
  captured (``inline_on_device_audio``): the same answers mean that what real time gets wrong is in the audio
  (the 48 kHz round trip band-limits it and delays it by 46 samples), not in the device's threads.

Correct means the intent and its slots from the audio equal what the matcher makes of the words that were
spoken (the reference text), so the labels follow the grammar. Reported per stage (p50/p95): the endpointing
wait, ASR, intent matching, agent; and end of speech to reply for all commands and for those of at most 4 s.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: The commands of the scene: questions, comfort commands, a place, and one with a pause mid-sentence.
COMMANDS = (
    "Why is the tyre light on?",
    "How much range do I have left?",
    "Set the temperature to twenty one degrees",
    "Turn on the seat heating",
    "What does the warning light mean?",
    "Can I make it to Munich?",
    "Navigate to the nearest charger",
    "Set the charge limit to eighty percent",
    "When is the next service due?",
    "Set the fan to … level three",
)
#: eSpeak NG voices whose synthetic "Alexa" the shipped head wakes on.
VOICES = ("en-gb", "en-gb-x-rp")
SHORT_COMMAND_S = 4.0
#: Repeated at the top of ``bench e2e``'s JSON from the headline run.
HEADLINE_KEYS = ("exchanges", "correct_intents", "stage_ms", "end_of_speech_to_reply_ms",
                 "end_of_speech_to_reply_ms_short")
RATE = 16000


@dataclass(frozen=True)
class E2eConfig:
    commands: tuple[str, ...] = COMMANDS
    voices: tuple[str, ...] = VOICES
    snr_db: float | None = 15.0
    seed: int = 0
    silence_after_s: float = 3.0


def build_e2e_scene(cfg: E2eConfig) -> Any:
    """Every command in every voice, one after another (voices interleaved), as one cabin scene."""
    from edge_assistant.pipeline.scene import SceneTurn, build_scene

    turns = [SceneTurn(c, voice=v, silence_after_s=cfg.silence_after_s) for v in cfg.voices for c in cfg.commands]
    return build_scene(turns, snr_db=cfg.snr_db, seed=cfg.seed)


def _pct(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    return {"p50": round(float(np.percentile(values, 50)), 1), "p95": round(float(np.percentile(values, 95)), 1),
            "max": round(float(max(values)), 1), "n": len(values)}


def _segment_of(scene: Any, speech_start_s: float, speech_end_s: float) -> int | None:
    """The scene turn whose command overlaps the heard speech the most."""
    best, overlap = None, 0.0
    for i, seg in enumerate(scene.segments):
        o = min(seg.command_end_s, speech_end_s) - max(seg.command_start_s, speech_start_s)
        if o > overlap:
            best, overlap = i, o
    return best


def summarise(scene: Any, replies: list[dict], matcher: Any,
              end_to_reply_ms: Callable[[dict, Any], float]) -> dict[str, Any]:
    """Exchanges scored against the reference text. ``replies``: reply events (as dicts); ``end_to_reply_ms``:
    (reply, the scene segment it answers) → milliseconds from the segment's last voiced sample to the reply."""
    expected = [matcher.match(seg.command) for seg in scene.segments]
    rows: list[dict[str, Any]] = []
    answered: set[int] = set()
    for r in replies:
        i = _segment_of(scene, r["speech_start_s"], r["speech_end_s"])
        if i is None:
            continue
        seg, want = scene.segments[i], expected[i]
        answered.add(i)
        rows.append({
            "exchange": i, "command": seg.command, "heard": r["heard"], "intent": r["intent"], "slots": r["slots"],
            "expected_intent": want.name, "expected_slots": want.slots,
            "correct": r["intent"] == want.name and r["slots"] == want.slots,
            "command_s": round(seg.command_end_s - seg.command_start_s, 2), "end_reason": r.get("end_reason"),
            "endpoint_wait_ms": round((r["detected_s"] - seg.command_end_s) * 1e3, 1),
            "asr_ms": r["asr_ms"], "match_ms": r.get("match_ms"), "agent_ms": r.get("agent_ms"),
            "end_to_reply_ms": round(end_to_reply_ms(r, seg), 1),
        })
    short = [x for x in rows if x["command_s"] <= SHORT_COMMAND_S]
    reasons: dict[str, int] = {}
    for x in rows:
        reasons[x["end_reason"]] = reasons.get(x["end_reason"], 0) + 1
    return {
        "exchanges": len(scene.segments), "answered": len(rows),
        "correct_intents": sum(x["correct"] for x in rows),
        "unanswered": [scene.segments[i].command for i in range(len(scene.segments)) if i not in answered],
        "wrong": [{k: x[k] for k in ("command", "heard", "intent", "slots", "expected_intent", "expected_slots")}
                  for x in rows if not x["correct"]],
        "cut_off": [{"command": x["command"], "heard": x["heard"], "before_end_ms": -x["endpoint_wait_ms"]}
                    for x in rows if x["endpoint_wait_ms"] < 0],
        "end_reasons": reasons,
        "stage_ms": {
            "endpoint_wait": _pct([x["endpoint_wait_ms"] for x in rows]),
            "asr": _pct([x["asr_ms"] for x in rows]),
            "intent": _pct([x["match_ms"] for x in rows if x["match_ms"] is not None]),
            "agent": _pct([x["agent_ms"] for x in rows if x["agent_ms"] is not None]),
        },
        "end_of_speech_to_reply_ms": _pct([x["end_to_reply_ms"] for x in rows]),
        "end_of_speech_to_reply_ms_short": _pct([x["end_to_reply_ms"] for x in short]),
        "per_exchange": rows,
    }


def run_fast(cfg: E2eConfig, scene: Any | None = None, device: Any = None) -> dict[str, Any]:
    """The scene through the inline assistant as fast as it goes (see the module docstring); ``device``: the
    device configuration (None: the built-in demo's)."""
    from edge_assistant.app.assemble import build_assistant, build_stages, demo_router
    from edge_assistant.core.config import default_config
    from edge_assistant.intents import car_matcher

    scene = scene if scene is not None else build_e2e_scene(cfg)
    config = device if device is not None else default_config()
    stages = build_stages(config)
    router, _car = demo_router(config)
    assistant = build_assistant(config, stages, router)
    replies: list[dict] = []
    chunk_ms: list[float] = []
    t_start = time.perf_counter()
    for i in range(0, scene.pcm.size, 1280):
        t0 = time.perf_counter()
        events = assistant.feed(scene.pcm[i : i + 1280])
        dt = (time.perf_counter() - t0) * 1e3
        if not events:
            chunk_ms.append(dt)
        replies += [ev.to_dict() for ev in events if ev.kind == "reply"]
    wall = time.perf_counter() - t_start

    def end_to_reply_ms(r: dict, seg: Any) -> float:  # the endpointing wait in stream time, then the processing
        return (r["detected_s"] - seg.command_end_s) * 1e3 + r["reply_latency_ms"]

    out = summarise(scene, replies, car_matcher(), end_to_reply_ms)
    judge = assistant.end_of_turn
    out["stage_ms"]["wake_and_endpoint_per_80ms_chunk"] = _pct(chunk_ms)
    out |= {"mode": "fast", "audio_s": round(scene.duration_s, 1), "wall_s": round(wall, 1),
            "pauses_judged": judge.judged if judge else 0,
            "pause_decisions": {"end": judge.ended, "end_later": judge.ended_later, "hold": judge.held,
                                "end_after_hold": judge.unheard} if judge
            else {}}
    return out


def run_realtime(cfg: E2eConfig, work_dir: Path, scene: Any | None = None, progress: Any = None,
                 device: Any = None) -> dict[str, Any]:
    """The device (``App``) on the scene spoken in real time into ALSA at 48 kHz (see the module docstring);
    ``device``: the device configuration whose microphone, bus and files the bench replaces (None: the demo's)."""
    from edge_assistant.app.runtime import App
    from edge_assistant.bench.device import (
        DEVICE_RATE_HZ,
        DeviceBenchConfig,
        Microphone,
        bench_config,
        device_input,
        fifo_microphone,
        resample_to_device,
    )
    from edge_assistant.intents import car_matcher

    work_dir.mkdir(parents=True, exist_ok=True)
    scene = scene if scene is not None else build_e2e_scene(cfg)
    pcm48 = resample_to_device(scene.pcm)
    fifo = fifo_microphone(work_dir)
    bus = f"virtual:bench-e2e-{os.getpid()}"
    config = bench_config(work_dir, bus, base=device)
    seconds = scene.duration_s
    events: list[tuple[float, dict]] = []
    lock = threading.Lock()

    def emit(ev: dict) -> None:
        now = time.monotonic()
        with lock:
            events.append((now, ev))
        if progress is not None and ev.get("event") == "reply":
            progress(ev)

    app = App(config, emit=emit, environ={"RUNTIME_DIRECTORY": str(work_dir / "run")})
    mic = Microphone(fifo, pcm48, DeviceBenchConfig(seconds=seconds, speed=1.0), app,
                     round(config.audio.ring_buffer_s * RATE), chunk_ms=80, loop=False)
    try:
        mic.start()  # the FIFO must exist before ALSA opens the PCM
        app.load()
        mic.go.set()
        app.run(for_s=seconds)
        audio = app.health().audio
    finally:
        mic.stop_event.set()
        app.close()
        mic.join(5.0)
    if mic.t0 is None:
        raise RuntimeError("the microphone never started")
    t0 = mic.t0
    replies = [dict(ev, wall_s=wall) for wall, ev in events if ev.get("event") == "reply"]

    def end_to_reply_ms(r: dict, seg: Any) -> float:  # the writer keeps stream time = wall time since t0
        return (r["wall_s"] - (t0 + seg.command_end_s)) * 1e3

    out = summarise(scene, replies, car_matcher(), end_to_reply_ms)
    out |= {"mode": "realtime", "audio_s": round(seconds, 1), "device_rate_hz": DEVICE_RATE_HZ,
            "capture": {k: audio.get(k) for k in ("overruns", "xruns")},
            "inline_on_device_audio": same_answers(out, run_fast(cfg, replace(scene, pcm=device_input(scene.pcm)),
                                                                 device))}
    return out


def same_answers(realtime: dict[str, Any], inline: dict[str, Any]) -> dict[str, Any]:
    """The real-time run's answers against the inline assistant's on the samples the device captured: per
    exchange, what was heard and understood (None: not answered)."""
    def answers(r: dict[str, Any]) -> dict[int, dict[str, Any]]:
        return {x["exchange"]: {k: x[k] for k in ("heard", "intent", "slots")} for x in r["per_exchange"]}

    rt, il = answers(realtime), answers(inline)
    differences = [{"exchange": i, "realtime": rt.get(i), "inline": il.get(i)}
                   for i in sorted(set(rt) | set(il)) if rt.get(i) != il.get(i)]
    return {"answered": inline["answered"], "correct_intents": inline["correct_intents"],
            "same_answers": not differences, "differences": differences}


def run_e2e(cfg: E2eConfig, modes: tuple[str, ...], work_dir: Path, progress: Any = None,
            device: Any = None) -> dict[str, Any]:
    """Both runs (``modes``) on one scene; ``device``: the device configuration (None: the built-in demo's).

    Each run's figures are under its mode; the headline keys (``exchanges``, ``correct_intents``, ``stage_ms``,
    ``end_of_speech_to_reply_ms`` and its ``_short`` form) are repeated at the top from the real-time run when
    there is one (the device as the driver meets it), else from the fast one (``headline`` says which)."""
    scene = build_e2e_scene(cfg)
    result: dict[str, Any] = {"config": {"commands": list(cfg.commands), "voices": list(cfg.voices),
                                         "snr_db": cfg.snr_db, "seed": cfg.seed,
                                         "scene_s": round(scene.duration_s, 1),
                                         "device_config": str(device.source) if device is not None and device.source
                                         else "built-in demo"}}
    for mode in modes:
        if mode == "fast":
            result["fast"] = run_fast(cfg, scene, device)
        else:
            result["realtime"] = run_realtime(cfg, work_dir / "realtime", scene, progress, device)
    top = "realtime" if "realtime" in result else "fast"
    if top in result:
        result["headline"] = top
        result |= {k: result[top][k] for k in HEADLINE_KEYS}
    return result


__all__ = ["COMMANDS", "VOICES", "E2eConfig", "build_e2e_scene", "run_e2e", "run_fast", "run_realtime", "same_answers"]
