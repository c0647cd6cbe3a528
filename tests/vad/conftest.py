"""Real speech clips for the endpointer tests (from the ``speech_data`` fixture; skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_assistant.audio.io import read_audio
from edge_assistant.vad.silero import SileroVad

from ._reference import speech_reference

SR = 16000


@pytest.fixture(scope="session")
def vad() -> SileroVad:
    """One Silero session shared by the tests (the endpointer resets its state on construction)."""
    return SileroVad()


@pytest.fixture(scope="session")
def short_clips(speech_data: Path) -> list[np.ndarray]:
    """Three short read sentences (LibriSpeech, LibriVox), float32 16 kHz, trimmed to 100 ms before the
    first word and after the last (energy reference), 1 to 3 s each."""
    names = ["1089-134691-0000.flac", "1089-134686-0001.flac", "sense_and_sensibility_01_austen_64kb-0880.wav"]
    out = []
    for name in names:
        x = read_audio(speech_data / "asr" / "read_speech" / name, "float32")
        ref = speech_reference(x)
        a, b = max(0, round((ref.first_word_s - 0.1) * SR)), round((ref.last_word_s + 0.1) * SR)
        out.append(np.ascontiguousarray(x[a:b]))
    return out


@pytest.fixture(scope="session")
def long_clip(speech_data: Path) -> np.ndarray:
    """10.4 s of continuous read speech (LibriSpeech 1089-134686-0000)."""
    return read_audio(speech_data / "asr" / "read_speech" / "1089-134686-0000.flac", "float32")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SR)), dtype=np.float32)
