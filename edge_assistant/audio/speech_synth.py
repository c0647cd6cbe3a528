"""Synthesised speech from espeak-ng (and Flite), for the demo, tests that need spoken commands and the
synthetic training speech of wake-word heads.

espeak-ng and flite are Debian packages (the Makefile installs them); each is driven as a subprocess and its
output (espeak-ng 22.05 kHz; flite 16 kHz, or 8 kHz for ``kal``) is brought to 16 kHz by the C resampler. A
voice named ``flite:NAME`` is one of Flite's built-in voices (:data:`FLITE_VOICES`: voices made from recordings
of four real speakers, diphone or statistical parametric); any other name is an espeak-ng voice. Nothing here is
used on the device's audio path.
"""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np

from edge_assistant.core.errors import EdgeAssistantError

ESPEAK = "espeak-ng"
FLITE = "flite"
FLITE_PREFIX = "flite:"
#: Flite's built-in voices and each one's natural mean F0 in Hz (what ``pitch`` 50 keeps): kal/kal16 (diphone,
#: US male; kal at 8 kHz), awb (Scottish male), rms (US male), slt (US female), all three statistical parametric.
FLITE_VOICES = {"kal": 105.0, "kal16": 105.0, "awb": 110.0, "rms": 105.0, "slt": 170.0}
#: The words per minute Flite speaks at a duration stretch of 1.
FLITE_WORDS_PER_MINUTE = 165.0


class SpeechSynthError(EdgeAssistantError):
    """espeak-ng or flite is missing or failed."""


def available(engine: str = ESPEAK) -> bool:
    """True when the synthesiser's binary (``espeak-ng`` or ``flite``) is on PATH."""
    return shutil.which(engine) is not None


def require(engine: str = ESPEAK) -> None:
    """Raise :class:`SpeechSynthError` naming the Debian package when the synthesiser is not on PATH."""
    if not available(engine):
        raise SpeechSynthError(f"{engine} not found on PATH: install the Debian package {engine} (make does this)")


def _command(text: str, voice: str, words_per_minute: int, pitch: int) -> tuple[str, list[str]]:
    if not voice.startswith(FLITE_PREFIX):
        return ESPEAK, [ESPEAK, "-v", voice, "-s", str(int(words_per_minute)), "-p", str(int(pitch)), "--stdout",
                        text]
    name = voice[len(FLITE_PREFIX):]
    if name not in FLITE_VOICES:
        raise SpeechSynthError(f"voice {voice!r}: flite has no voice {name!r}; expected one of "
                               f"{', '.join(FLITE_PREFIX + v for v in FLITE_VOICES)}")
    # espeak-ng's scales mapped onto flite's: words per minute to a duration stretch, pitch 0..100 to a mean F0
    # from 0.65x the voice's own (pitch 0) to 1.54x (pitch 100), five eighths of an octave either way
    stretch = FLITE_WORDS_PER_MINUTE / max(int(words_per_minute), 1)
    f0 = FLITE_VOICES[name] * 2.0 ** ((int(pitch) - 50) / 80.0)
    return FLITE, [FLITE, "-voice", name, "--setf", f"duration_stretch={stretch:.4f}", "--setf",
                   f"int_f0_target_mean={f0:.1f}", "-o", "/dev/stdout", "-t", text]


def synthesize(text: str, voice: str = "en-gb", words_per_minute: int = 150, pitch: int = 50) -> np.ndarray:
    """Speak ``text`` in an espeak-ng voice or ``flite:NAME``; returns float32 mono 16 kHz samples in [-1, 1].

    ``words_per_minute`` and ``pitch`` (0-100, 50 the voice's own) are espeak-ng's scales; for Flite they set
    the duration stretch and the mean F0."""
    import soundfile as sf

    from edge_assistant.audio.frontend import resample

    engine, cmd = _command(text, voice, words_per_minute, pitch)
    require(engine)
    try:
        proc = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        raise SpeechSynthError(f"{engine} failed for voice {voice!r}: {exc.stderr.decode(errors='replace')}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SpeechSynthError(f"{engine} took more than 60 s for voice {voice!r}") from exc
    try:
        data, rate_hz = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    except (RuntimeError, ValueError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        raise SpeechSynthError(f"{engine} gave no readable WAV for voice {voice!r}: {exc}") from exc
    if data.ndim > 1:
        data = data.mean(axis=1)
    return np.asarray(resample(data, rate_hz, 16000), dtype=np.float32)
