"""Car-cabin noise generator (determinism, documented spectrum) and SNR mixing accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge_assistant.audio.noise import (
    CarNoiseConfig,
    CarNoiseSource,
    active_speech_power,
    car_cabin_noise,
    load_noise,
    measured_snr_db,
    mix_at_snr,
    mix_components,
    motor_whine_hz,
)
from edge_assistant.core.errors import AudioFileError, ConfigError

RATE = 16000


def _psd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Averaged periodogram (Hann, 4096, 50 % overlap)."""
    n = 4096
    w = np.hanning(n)
    frames = [x[i : i + n] * w for i in range(0, len(x) - n, n // 2)]
    p = np.mean([np.abs(np.fft.rfft(f)) ** 2 for f in frames], axis=0)
    return np.fft.rfftfreq(n, 1 / RATE), p


def _band(f: np.ndarray, p: np.ndarray, lo: float, hi: float) -> float:
    return float(p[(f >= lo) & (f < hi)].sum())


def test_deterministic_per_seed() -> None:
    cfg = CarNoiseConfig(speed_kmh=90, hvac_level=0.4, ev=True)
    a = car_cabin_noise(2.0, cfg, seed=7)
    assert a.dtype == np.float32 and a.shape == (32000,)
    assert np.array_equal(a, car_cabin_noise(2.0, cfg, seed=7))
    assert not np.array_equal(a, car_cabin_noise(2.0, cfg, seed=8))


def test_road_rumble_concentrated_below_500_hz() -> None:
    f, p = _psd(car_cabin_noise(8.0, CarNoiseConfig(speed_kmh=80, hvac_level=0.0, ev=False), seed=1))
    assert _band(f, p, 0, 500) / p.sum() > 0.75
    assert _band(f, p, 150, 300) > _band(f, p, 300, 450)  # tyre-cavity region above the upper rumble


def test_wind_rises_with_speed() -> None:
    slow = car_cabin_noise(6.0, CarNoiseConfig(speed_kmh=50, hvac_level=0.0, ev=False), seed=2)
    fast = car_cabin_noise(6.0, CarNoiseConfig(speed_kmh=130, hvac_level=0.0, ev=False), seed=2)
    fs, ps = _psd(slow)
    ff, pf = _psd(fast)
    wind_gain_db = 10 * np.log10(_band(ff, pf, 1000, 2500) / _band(fs, ps, 1000, 2500))
    road_gain_db = 10 * np.log10(_band(ff, pf, 50, 300) / _band(fs, ps, 50, 300))
    assert wind_gain_db > 20.0  # ~60 dB/decade: 130 vs 50 km/h is +25 dB
    assert wind_gain_db > road_gain_db + 8.0  # wind rises faster than rumble
    assert np.sqrt(np.mean(fast**2)) > np.sqrt(np.mean(slow**2))


@pytest.mark.parametrize("speed", [60.0, 120.0])
def test_ev_whine_is_tonal_and_follows_speed(speed: float) -> None:
    x = car_cabin_noise(6.0, CarNoiseConfig(speed_kmh=speed, hvac_level=0.0, ev=True), seed=3)
    ice = car_cabin_noise(6.0, CarNoiseConfig(speed_kmh=speed, hvac_level=0.0, ev=False), seed=3)
    f, p = _psd(x)
    _, pi = _psd(ice)
    for tone in motor_whine_hz(speed):
        k = int(np.argmin(np.abs(f - tone)))
        local = p[k - 3 : k + 4].sum()
        around = np.median(p[k - 60 : k + 60]) * 7
        assert 10 * np.log10(local / around) > 10.0  # a clear line above the broadband floor
        assert 10 * np.log10(local / pi[k - 3 : k + 4].sum()) > 10.0  # absent from the combustion car
    assert motor_whine_hz(120.0)[0] == pytest.approx(2 * motor_whine_hz(60.0)[0])


def test_hvac_level_raises_fan_band() -> None:
    off = car_cabin_noise(6.0, CarNoiseConfig(speed_kmh=30, hvac_level=0.0), seed=4)
    full = car_cabin_noise(6.0, CarNoiseConfig(speed_kmh=30, hvac_level=1.0), seed=4)
    f0, p0 = _psd(off)
    f1, p1 = _psd(full)
    assert 10 * np.log10(_band(f1, p1, 500, 1500) / _band(f0, p0, 500, 1500)) > 6.0


def test_bad_settings_named() -> None:
    with pytest.raises(ConfigError, match="speed_kmh"):
        CarNoiseConfig(speed_kmh=-5)
    with pytest.raises(ConfigError, match="hvac_level"):
        CarNoiseConfig(hvac_level=2)


def _speech_like(seed: int = 0) -> np.ndarray:
    """1 s silence + 1.5 s of amplitude-modulated harmonics + 1 s silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(1.5 * RATE)) / RATE
    voiced = sum(np.sin(2 * np.pi * 150 * k * t + rng.uniform(0, 6)) / k for k in range(1, 12))
    voiced *= 0.2 * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) ** 2
    pad = np.zeros(RATE)
    return np.concatenate((pad, voiced, pad)).astype(np.float32)


@pytest.mark.parametrize("snr", [-5.0, 0.0, 5.0, 20.0])
def test_mix_at_snr_is_accurate_on_active_speech(snr: float) -> None:
    speech = _speech_like()
    noise = CarNoiseSource(CarNoiseConfig(speed_kmh=100), seed=1).segment(len(speech), "clip")
    mixed = mix_at_snr(speech, noise, snr)
    s_part, n_part = mix_components(speech, noise, snr)
    assert mixed.shape == speech.shape and np.allclose(mixed, s_part + n_part, atol=1e-6)
    assert np.allclose(s_part, speech)  # no clipping guard needed here: speech is untouched
    assert measured_snr_db(s_part, n_part) == pytest.approx(snr, abs=0.01)
    # silence around the speech does not count: the SNR is of the active part only
    assert active_speech_power(speech) == pytest.approx(active_speech_power(speech[RATE : -RATE]), rel=0.02)


def test_mix_is_deterministic_per_key_and_never_clips() -> None:
    speech = _speech_like() * 4.0  # peaks near full scale
    src = load_noise("car", seed=5)
    a = src.mix(speech, 0.0, key="a.flac")
    assert np.array_equal(a, src.mix(speech, 0.0, key="a.flac"))
    assert not np.array_equal(a, src.mix(speech, 0.0, key="b.flac"))
    assert np.max(np.abs(a)) <= 0.99 + 1e-6
    s_part, n_part = mix_components(speech, src.segment(len(speech), "a.flac"), 0.0)
    assert np.max(np.abs(s_part)) < np.max(np.abs(speech))  # scaled down together...
    assert measured_snr_db(s_part, n_part) == pytest.approx(0.0, abs=0.01)  # ...at the same SNR


def test_recorded_noise_from_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "hum.wav", (0.1 * rng.standard_normal(8000)).astype(np.float32), RATE, subtype="FLOAT")
    sf.write(tmp_path / "silent.wav", np.zeros(8000, np.float32), RATE, subtype="FLOAT")
    (tmp_path / "broken.flac").write_bytes(b"fLaC" + bytes(100))
    src = load_noise(tmp_path, seed=1)
    assert [p.name for p in src.paths] == ["hum.wav"]
    assert {Path(p).name for p, _ in src.unreadable} == {"silent.wav", "broken.flac"}
    seg = src.segment(20000, "k")  # longer than the recording: looped
    assert seg.shape == (20000,) and np.array_equal(seg, src.segment(20000, "k"))
    with pytest.raises(AudioFileError, match="no usable noise"):
        load_noise(tmp_path / "silent.wav")


@pytest.mark.shared_data
def test_real_background_noise_mixes(noise_data: Path) -> None:
    src = load_noise(noise_data / "background", seed=0)
    assert len(src.paths) > 100
    speech = _speech_like(1)
    s_part, n_part = mix_components(speech, src.segment(len(speech), "x"), 5.0)
    assert np.array_equal(src.mix(speech, 5.0, key="x"), (s_part + n_part).astype(np.float32))
    assert measured_snr_db(s_part, n_part) == pytest.approx(5.0, abs=0.01)
