"""Synthesised speech from espeak-ng, for the demo and for tests that need spoken commands.

espeak-ng is a Debian package (the Makefile installs it); it is driven as a subprocess and its
22.05 kHz output is brought to 16 kHz by the C resampler. Nothing here is used on the device's
audio path.
"""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np

from edge_assistant.core.errors import EdgeAssistantError

ESPEAK = "espeak-ng"


class SpeechSynthError(EdgeAssistantError):
    """espeak-ng is missing or failed."""


def available() -> bool:
    """True when the espeak-ng binary is on PATH."""
    return shutil.which(ESPEAK) is not None


def synthesize(text: str, voice: str = "en-gb", words_per_minute: int = 150, pitch: int = 50) -> np.ndarray:
    """Speak ``text``; returns float32 mono 16 kHz samples in [-1, 1]."""
    import soundfile as sf

    from edge_assistant.audio.frontend import resample

    if not available():
        raise SpeechSynthError(f"{ESPEAK} not found on PATH: install the Debian package espeak-ng (make does this)")
    cmd = [ESPEAK, "-v", voice, "-s", str(int(words_per_minute)), "-p", str(int(pitch)), "--stdout", text]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        raise SpeechSynthError(f"{ESPEAK} failed for voice {voice!r}: {exc.stderr.decode(errors='replace')}") from exc
    data, rate_hz = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if data.ndim > 1:
        data = data.mean(axis=1)
    return np.asarray(resample(data, rate_hz, 16000), dtype=np.float32)
