"""A synthetic cabin scene: spoken commands (espeak-ng) in car-cabin noise, as one 16 kHz stream.

Used by ``edge-assistant demo`` and the pipeline tests, so the whole assistant can be exercised on a
machine with no microphone and no recordings. Deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_assistant.audio.noise import CarNoiseConfig, car_cabin_noise, mix_at_snr
from edge_assistant.audio.speech_synth import synthesize

SAMPLE_RATE_HZ = 16000


@dataclass(frozen=True)
class SceneTurn:
    """One spoken turn: wake word, a pause, then the command (empty command: wake word alone). A "…" in the
    command is a pause of ``mid_pause_s`` in the middle of it ("Set the temperature to … twenty one")."""

    command: str
    wake_word: str = "Alexa"
    voice: str = "en-gb"
    pause_after_wake_s: float = 0.5
    silence_after_s: float = 3.0
    mid_pause_s: float = 0.9

    @property
    def words(self) -> str:
        """The command as said, without the pause marks."""
        return " ".join(self.command.replace(PAUSE_MARK, " ").split())


PAUSE_MARK = "…"


@dataclass(frozen=True)
class SceneSegment:
    """Where a turn's parts lie in the stream (seconds)."""

    command: str
    wake_start_s: float
    wake_end_s: float
    command_start_s: float
    command_end_s: float


@dataclass(frozen=True)
class CabinScene:
    pcm: np.ndarray  # int16, 16 kHz mono
    segments: tuple[SceneSegment, ...]
    snr_db: float | None

    @property
    def duration_s(self) -> float:
        return self.pcm.size / SAMPLE_RATE_HZ


def _trim(x: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x) > floor)
    return x[idx[0] : idx[-1] + 1] if idx.size else x[:0]


def build_scene(turns: list[SceneTurn], snr_db: float | None = 15.0, lead_in_s: float = 1.5,
                noise: CarNoiseConfig | None = None, seed: int = 0) -> CabinScene:
    """Speak ``turns`` one after another after ``lead_in_s`` of cabin noise; ``snr_db`` None = no noise."""
    parts: list[np.ndarray] = [np.zeros(int(lead_in_s * SAMPLE_RATE_HZ), np.float32)]
    segments: list[SceneSegment] = []
    pos = parts[0].size
    for turn in turns:
        wake = _trim(synthesize(turn.wake_word, voice=turn.voice))
        pause = np.zeros(int(turn.pause_after_wake_s * SAMPLE_RATE_HZ), np.float32)
        cmd = np.zeros(0, np.float32)
        gap = np.zeros(int(turn.mid_pause_s * SAMPLE_RATE_HZ), np.float32)
        for i, part in enumerate(p for p in turn.command.split(PAUSE_MARK) if p.strip()):
            cmd = np.concatenate([cmd, gap, _trim(synthesize(part.strip(), voice=turn.voice))] if i else
                                 [_trim(synthesize(part.strip(), voice=turn.voice))])
        tail = np.zeros(int(turn.silence_after_s * SAMPLE_RATE_HZ), np.float32)
        w0 = pos
        c0 = w0 + wake.size + pause.size
        segments.append(SceneSegment(turn.words, w0 / SAMPLE_RATE_HZ, (w0 + wake.size) / SAMPLE_RATE_HZ,
                                     c0 / SAMPLE_RATE_HZ, (c0 + cmd.size) / SAMPLE_RATE_HZ))
        parts += [wake, pause, cmd, tail]
        pos = c0 + cmd.size + tail.size
    clean = np.concatenate(parts).astype(np.float32)
    clean *= 0.5 / max(1e-6, float(np.abs(clean).max()))  # speech peaks at -6 dBFS
    if snr_db is None:
        mixed = clean
    else:
        cabin = car_cabin_noise(clean.size / SAMPLE_RATE_HZ, noise or CarNoiseConfig(speed_kmh=80.0), seed=seed)
        mixed = mix_at_snr(clean, cabin[: clean.size], snr_db)
    pcm = np.clip(np.round(mixed * 32767.0), -32768, 32767).astype(np.int16)
    return CabinScene(pcm, tuple(segments), snr_db)
