"""Deterministic synthetic signals for the native front-end tests (seeded; rerun gives the same data)."""

from __future__ import annotations

import numpy as np

SR = 16000


def speechlike(n: int, seed: int = 0, sr: int = SR) -> np.ndarray:
    """Voiced bursts (gliding pitch, 24 harmonics, syllable-rate envelope with pauses) plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f0 = 120.0 + 50.0 * np.sin(2 * np.pi * 0.9 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = np.zeros(n)
    for k in range(1, 25):
        if k * 170.0 < sr / 2:
            voiced += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k
    env = np.clip(np.sin(2 * np.pi * 2.5 * t), 0.0, None) ** 1.5  # syllables with pauses
    x = 0.3 * env * voiced + 0.002 * rng.standard_normal(n)
    return x.astype(np.float32)


def carlike_noise(n: int, seed: int = 1, sr: int = SR) -> np.ndarray:
    """Car-cabin-like stationary noise: brown rumble < 500 Hz, broadband wind/HVAC hiss, 2 motor-whine tones."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    shape = 1.0 / np.maximum(f, 20.0)  # brown below ...
    shape = np.where(f < 500, shape * 20.0, shape * 20.0 * (500 / np.maximum(f, 500)) ** 0.5)
    shape += 0.02 * np.exp(-((f - 1500) / 800) ** 2)  # HVAC fan hump
    x = np.fft.irfft(spec * shape, n)
    x /= np.std(x)
    t = np.arange(n) / sr
    x += 0.3 * np.sin(2 * np.pi * 1130.0 * t) + 0.15 * np.sin(2 * np.pi * 2260.0 * t)  # EV whine
    return (x / np.std(x)).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, float]:
    """speech + g * noise with the gain g that gives snr_db over the whole signal; returns (mix, g)."""
    g = np.sqrt(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2) / 10 ** (snr_db / 10))
    return (speech + g * noise).astype(np.float32), float(g)
