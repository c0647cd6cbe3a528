"""Noise suppressor: SNR gain on speech + car-like noise, speech kept, delay, chunk invariance, config."""

from __future__ import annotations

import numpy as np
import pytest

from edge_assistant.audio.frontend import NoiseSuppressor, NoiseSuppressorConfig
from edge_assistant.core.errors import ConfigError

from ._signals import carlike_noise, mix_at_snr, speechlike

D = NoiseSuppressor.delay_samples


def _measure(x: np.ndarray, s: np.ndarray, y: np.ndarray, settle: int = 32000) -> tuple[float, float, float]:
    """(snr_in, snr_out, speech_kept) after the noise estimate settles; distortion counts as noise."""
    y = y[D:].astype(np.float64)
    x, s = x[: y.size].astype(np.float64)[settle:], s[: y.size].astype(np.float64)[settle:]
    y = y[settle:]
    snr_in = 10 * np.log10(np.sum(s**2) / np.sum((x - s) ** 2))
    snr_out = 10 * np.log10(np.sum(s**2) / np.sum((y - s) ** 2))
    loud = np.abs(s) > 0.5 * np.abs(s).max()
    return snr_in, snr_out, float(np.dot(y[loud], s[loud]) / np.dot(s[loud], s[loud]))


def test_raises_snr_on_car_noise() -> None:
    n = 16000 * 6
    s = speechlike(n, seed=0)
    x, _ = mix_at_snr(s, carlike_noise(n, seed=1), 5.0)
    with NoiseSuppressor() as ns:
        y = ns.process(x)
    snr_in, snr_out, kept = _measure(x, s, y)
    assert abs(snr_in - 5.0) < 0.5
    assert snr_out - snr_in >= 5.0, f"SNR {snr_in:.1f} -> {snr_out:.1f} dB"
    assert kept > 0.8, f"speech peaks kept at {kept:.2f}"


def test_noise_only_is_attenuated_to_the_floor() -> None:
    x = 0.05 * carlike_noise(16000 * 5, seed=2)
    cfg = NoiseSuppressorConfig(max_attenuation_db=20.0)
    with NoiseSuppressor(cfg) as ns:
        y = ns.process(x)
    att = 10 * np.log10(np.mean(y[32000:].astype(np.float64) ** 2) / np.mean(x[32000 - D : -D].astype(np.float64) ** 2))
    assert -21.0 < att < -10.0, f"noise-only attenuation {att:.1f} dB"


def test_int16_and_delay() -> None:
    rng = np.random.default_rng(3)
    x = (3000 * rng.standard_normal(16000)).astype(np.int16)
    with NoiseSuppressor(NoiseSuppressorConfig(max_attenuation_db=0.0)) as ns:
        y = ns.process(x)
    assert y.dtype == np.int16 and y.size == x.size
    assert np.abs(y[:D]).max() <= 1
    assert np.abs(y[D:].astype(int) - x[:-D].astype(int)).max() <= 1  # unity gain: pure delay


@pytest.mark.parametrize("sizes", [[1], [7], [160], [1280], None])
def test_chunk_size_invariance(sizes: list[int] | None) -> None:
    n = 16000 * 2
    x, _ = mix_at_snr(speechlike(n, 4), carlike_noise(n, 5), 5.0)
    with NoiseSuppressor() as ns:
        whole = ns.process(x)
    rng = np.random.default_rng(9)
    with NoiseSuppressor() as ns:
        parts, pos, i = [], 0, 0
        while pos < x.size:
            k = int(rng.integers(1, 3000)) if sizes is None else sizes[i % len(sizes)]
            out = ns.process(x[pos : pos + k])
            assert out.size == min(k, x.size - pos)
            parts.append(out)
            pos += k
            i += 1
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_bad_config_and_input() -> None:
    with pytest.raises(ConfigError, match="noise_suppressor.dd_alpha"):
        NoiseSuppressorConfig(dd_alpha=1.5)
    with pytest.raises(ConfigError, match="noise_suppressor.max_attenuation_db"):
        NoiseSuppressorConfig(max_attenuation_db=-3)
    with NoiseSuppressor() as ns:
        x = np.zeros(100, np.float32)
        x[42] = np.nan
        with pytest.raises(ValueError, match="NaN/Inf at sample 42"):
            ns.process(x)
        with pytest.raises(ValueError, match="float"):
            ns.process(np.zeros(10, np.int32))
