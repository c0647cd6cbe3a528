"""Resampler: stated pass-band flatness and stop-band rejection, delay, length, chunk invariance."""

from __future__ import annotations

import numpy as np
import pytest

from edge_assistant.audio.frontend import Resampler, resample

RATES = [8000, 22050, 44100, 48000]
#: The figures stated in native/include/ea/frontend.h.
STOPBAND_REJECTION_DB = 88.0
PASSBAND_RIPPLE_DB = 0.001


def _amp(y: np.ndarray, f: float, sr: float, *others: float) -> float:
    """Least-squares amplitude of a sine of frequency f in y (fitted jointly with the `others`)."""
    t = np.arange(y.size) / sr
    cols = []
    for g in (f, *others):
        cols += [np.sin(2 * np.pi * g * t), np.cos(2 * np.pi * g * t)]
    coef, *_ = np.linalg.lstsq(np.stack(cols, axis=1), y.astype(np.float64), rcond=None)
    return float(np.hypot(coef[0], coef[1]))


@pytest.mark.parametrize("rate", RATES)
def test_passband_flat(rate: int) -> None:
    edge = 0.875 * min(rate, 16000) / 2
    t = np.arange(rate // 2) / rate
    for f in np.linspace(30.0, edge, 12):
        y = resample(0.5 * np.sin(2 * np.pi * f * t), rate)
        gain_db = 20 * np.log10(_amp(y[200:-200], f, 16000) / 0.5)
        assert abs(gain_db) <= PASSBAND_RIPPLE_DB, f"{rate} Hz: {f:.0f} Hz off by {gain_db:.4f} dB"


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_stopband_rejection_downsampling(rate: int) -> None:
    """Sine sweep across the band that would alias (8 kHz .. in/2): every alias >= 88 dB down."""
    t = np.arange(rate // 2) / rate
    worst = -np.inf
    for f in np.linspace(8000.0, 0.499 * rate, 40):
        y = resample(np.sin(2 * np.pi * f * t), rate)
        worst = max(worst, 20 * np.log10(np.abs(y[300:-300]).max() + 1e-30))
    assert worst <= -STOPBAND_REJECTION_DB, f"{rate} Hz: alias at {worst:.1f} dB"


def test_image_rejection_upsampling_8k() -> None:
    """8 kHz -> 16 kHz: the image of a tone at f appears at 8000 - f; it must be >= 88 dB down."""
    t = np.arange(4000) / 8000
    worst = -np.inf
    for f in np.linspace(100.0, 3500.0, 15):
        y = resample(np.sin(2 * np.pi * f * t), 8000)[300:-300]
        worst = max(worst, 20 * np.log10(_amp(y, 8000 - f, 16000, f) + 1e-30))
    assert worst <= -STOPBAND_REJECTION_DB, f"image at {worst:.1f} dB"


@pytest.mark.parametrize("rate", RATES)
def test_length_and_delay(rate: int) -> None:
    n = rate // 3 + 17
    y = resample(np.zeros(n, np.float32), rate)
    assert y.size == -(-n * 16000 // rate)
    # An impulse lands where time says it should: input sample k -> output k * 16000 / rate.
    x = np.zeros(n, np.float32)
    k = n // 2
    x[k] = 1.0
    y = resample(x, rate)
    assert abs(int(np.argmax(y)) - k * 16000 / rate) <= 1.0
    with Resampler(rate) as rs:
        total = sum(rs.process(np.zeros(n // 3, np.float32)).size for _ in range(3))
        assert total == -(-(n // 3 * 3) * 16000 // rate)
        assert rs.flush().size == rs.delay_samples > 0


@pytest.mark.parametrize("rate", RATES)
def test_chunk_size_invariance(rate: int) -> None:
    rng = np.random.default_rng(rate)
    x = rng.standard_normal(rate // 2).astype(np.float32)
    with Resampler(rate) as rs:
        whole = np.concatenate([rs.process(x), rs.flush()])
    for sizes in ([1], [7], [160], [1280], None):
        with Resampler(rate) as rs:
            parts, pos, i = [], 0, 0
            while pos < x.size:
                n = int(rng.integers(1, 3000)) if sizes is None else sizes[i % len(sizes)]
                parts.append(rs.process(x[pos : pos + n]))
                pos += n
                i += 1
            parts.append(rs.flush())
        np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_identity_and_int16() -> None:
    x = np.arange(100, dtype=np.int16)
    np.testing.assert_allclose(resample(x, 16000), x / 32768.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="12345 Hz -> 16000 Hz not supported"):
        Resampler(12345)
    with pytest.raises(ValueError, match="not supported"):
        Resampler(100)
    with Resampler(48000) as rs:
        with pytest.raises(ValueError, match="float"):
            rs.process(np.zeros(10, np.int32))
        x = np.zeros(50, np.float32)
        x[7] = np.inf
        with pytest.raises(ValueError, match="NaN/Inf at sample 7"):
            rs.process(x)
        assert rs.process(np.ones(3, np.float32)).size == 1  # the failed call consumed nothing
