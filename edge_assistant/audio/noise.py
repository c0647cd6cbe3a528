"""Car-cabin noise: a seeded generator, recorded-noise loading, and speech/noise mixing at a given SNR.

Car-cabin spectrum (16 kHz, all components summed; levels are dBFS RMS, given at 100 km/h)
-------------------------------------------------------------------------------------------
* **Road/tyre rumble** - Gaussian noise shaped by a 4th-order low-pass at 150 Hz, a 20 Hz high-pass and
  a +6 dB tyre-cavity resonance at 220 Hz (40 Hz wide): about 90 % of its power lies below 500 Hz.
  Level -32 dBFS at 100 km/h, power proportional to speed^3 (+30 dB per decade of speed).
* **Wind** - broadband noise band-passed 300 Hz .. 2.5 kHz (1st-order skirts), level -36 dBFS at
  100 km/h, power proportional to speed^6 (+60 dB/decade): negligible in town, dominant on the motorway.
* **Motor** - ``ev=True``: electric-motor whine, two tones at the 8th (electromagnetic) and 24th (gear
  mesh) orders of the motor speed; the motor turns at ``speed / (2 pi 0.33 m) x 9`` (9:1 reduction,
  0.33 m tyre radius), so about 965 Hz and 2.9 kHz at 100 km/h, moving up with speed, with a 0.3 %
  slow frequency wander. Each tone -40 dBFS at 100 km/h, +20 dB/decade of speed.
  ``ev=False``: a combustion engine, firing order 2 of a four-cylinder (rpm = 1500 + 10 x km/h, capped
  at 3500) with 2nd and 3rd harmonics, -38 dBFS, and no whine.
* **HVAC fan** - broadband 200 Hz .. 1.5 kHz plus a blade-pass tone at ``100 + 200 x hvac_level`` Hz and
  its 2nd harmonic; level -36 dBFS at ``hvac_level = 1``, +40 dB/decade of level, off at 0.

Everything is drawn from ``numpy.random.default_rng(seed)`` in a fixed order: the same arguments give
the same samples on every machine.

SNR convention used by :func:`mix_at_snr`
-----------------------------------------
SNR = 10 log10(P_speech / P_noise) where P_speech is the mean power of the *active* speech only (20 ms
frames whose energy is within 40 dB of the loudest frame, a simplified ITU-T P.56 active level), and
P_noise is the mean power of the noise segment actually added (over the full clip length). Leading
and trailing silence of a clip therefore does not change the SNR. When the mix would clip, speech and
noise are scaled down together (SNR unchanged) to a peak of 0.99.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_assistant.core.errors import AudioFileError, ConfigError

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
TYRE_RADIUS_M = 0.33
REDUCTION_RATIO = 9.0
ACTIVE_FRAME_S = 0.02
ACTIVE_RANGE_DB = 40.0


@dataclass(frozen=True)
class CarNoiseConfig:
    """Car-cabin noise settings."""

    speed_kmh: float = 100.0  # vehicle speed: 0 .. 250 km/h
    hvac_level: float = 0.5  # fan level: 0 (off) .. 1 (full)
    ev: bool = True  # electric motor whine (True) or combustion-engine orders (False)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.speed_kmh) <= 250.0:
            raise ConfigError(f"car_noise.speed_kmh: {self.speed_kmh}; expected 0 .. 250")
        if not 0.0 <= float(self.hvac_level) <= 1.0:
            raise ConfigError(f"car_noise.hvac_level: {self.hvac_level}; expected 0 .. 1")


def _db(x: float) -> float:
    return 10.0 ** (x / 20.0)


def _shaped(rng: np.random.Generator, n: int, shape: np.ndarray) -> np.ndarray:
    """Gaussian noise with power spectrum ``shape`` (on the rfft grid), scaled to unit RMS."""
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white) * np.sqrt(shape)
    y = np.fft.irfft(spec, n)
    rms = float(np.sqrt(np.mean(y * y)))
    return y / rms if rms > 0 else y


def _tone(rng: np.random.Generator, n: int, freq_hz: float, wander: float = 0.003) -> np.ndarray:
    """Unit-RMS sinusoid at ``freq_hz`` with a slow random frequency wander (relative, 0.3 %)."""
    t = np.arange(n) / SAMPLE_RATE_HZ
    phase0 = rng.uniform(0, 2 * np.pi)
    rate = rng.uniform(0.2, 0.6)  # Hz of the wander
    wphase = rng.uniform(0, 2 * np.pi)
    inst = freq_hz * (1.0 + wander * np.sin(2 * np.pi * rate * t + wphase))
    phase = phase0 + 2 * np.pi * np.cumsum(inst) / SAMPLE_RATE_HZ
    return np.sqrt(2.0) * np.sin(phase)


def motor_whine_hz(speed_kmh: float) -> tuple[float, float]:
    """The two EV whine frequencies (8th and 24th motor orders) at ``speed_kmh``."""
    motor_hz = (speed_kmh / 3.6) / (2 * np.pi * TYRE_RADIUS_M) * REDUCTION_RATIO
    return 8.0 * motor_hz, 24.0 * motor_hz


def car_cabin_noise(duration_s: float, config: CarNoiseConfig | None = None, seed: int = 0) -> np.ndarray:
    """``duration_s`` of car-cabin noise, float32 at 16 kHz, absolute levels as in the module docstring."""
    cfg = config or CarNoiseConfig()
    n = int(round(duration_s * SAMPLE_RATE_HZ))
    if n <= 0:
        raise ConfigError(f"duration_s: {duration_s}; expected > 0")
    rng = np.random.default_rng(seed)
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE_HZ)
    f = np.maximum(f, 1e-3)
    v = max(float(cfg.speed_kmh), 0.0) / 100.0
    out = np.zeros(n, dtype=np.float64)
    # Every component is drawn even when silent, so each keeps its random stream whatever the settings.
    road_shape = (1.0 / (1.0 + (f / 150.0) ** 4)) * (1.0 / (1.0 + (20.0 / f) ** 4))
    road_shape *= 1.0 + 3.0 * np.exp(-0.5 * ((f - 220.0) / 20.0) ** 2)
    road = _shaped(rng, n, road_shape)
    wind = _shaped(rng, n, (1.0 / (1.0 + (300.0 / f) ** 2)) * (1.0 / (1.0 + (f / 2500.0) ** 2)))
    hvac_shape = (1.0 / (1.0 + (200.0 / f) ** 2)) * (1.0 / (1.0 + (f / 1500.0) ** 2))
    hvac = _shaped(rng, n, hvac_shape)
    if v > 0:
        out += _db(-32.0) * v**1.5 * road
        out += _db(-36.0) * v**3.0 * wind
    if cfg.ev:
        if cfg.speed_kmh >= 5.0:
            for fw in motor_whine_hz(cfg.speed_kmh):
                if fw < 0.45 * SAMPLE_RATE_HZ:
                    out += _db(-40.0) * v * _tone(rng, n, fw)
    else:
        rpm = min(1500.0 + 10.0 * float(cfg.speed_kmh), 3500.0)
        firing = rpm / 60.0 * 2.0
        for k, rel_db in ((1, 0.0), (2, -6.0), (3, -12.0)):
            out += _db(-38.0 + rel_db) * _tone(rng, n, firing * k, wander=0.01)
    if cfg.hvac_level > 0:
        lvl = float(cfg.hvac_level)
        gain = _db(-36.0) * lvl**2
        blade = 100.0 + 200.0 * lvl
        out += gain * hvac
        out += gain * _db(-6.0) * _tone(rng, n, blade, wander=0.005)
        out += gain * _db(-12.0) * _tone(rng, n, 2 * blade, wander=0.005)
    return out.astype(np.float32)


def active_speech_power(x: np.ndarray) -> float:
    """Mean power of the active part of ``x`` (20 ms frames within 40 dB of the loudest frame)."""
    y = np.asarray(x, dtype=np.float64)
    hop = int(ACTIVE_FRAME_S * SAMPLE_RATE_HZ)
    n = len(y) // hop
    if n == 0:
        return float(np.mean(y * y)) if len(y) else 0.0
    e = np.mean(y[: n * hop].reshape(n, hop) ** 2, axis=1)
    peak = float(e.max())
    if peak <= 0:
        return 0.0
    active = e >= peak * 10 ** (-ACTIVE_RANGE_DB / 10)
    return float(e[active].mean())


def _take(noise: np.ndarray, n: int, offset: int) -> np.ndarray:
    """``n`` samples of ``noise`` from ``offset``, looping when the noise is shorter."""
    if len(noise) == 0:
        raise ConfigError("noise: empty noise signal")
    idx = (offset + np.arange(n)) % len(noise)
    return noise[idx]


def mix_components(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, np.ndarray]:
    """The two parts of :func:`mix_at_snr` (scaled speech, scaled noise); their sum is the mix."""
    s = np.asarray(speech, dtype=np.float64)
    nz = np.asarray(noise, dtype=np.float64)
    if len(nz) != len(s):
        raise ValueError(f"noise has {len(nz)} samples, speech {len(s)}; cut the noise first")
    ps = active_speech_power(s)
    pn = float(np.mean(nz * nz))
    if ps <= 0 or pn <= 0:
        return s, np.zeros_like(s)
    nz = nz * np.sqrt(ps / (pn * 10 ** (snr_db / 10)))
    peak = float(np.max(np.abs(s + nz)))
    if peak > 0.99:
        s, nz = s * (0.99 / peak), nz * (0.99 / peak)
    return s, nz


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Add ``noise`` (already cut to ``len(speech)``) to ``speech`` at ``snr_db`` (see module docstring).

    Both are float in [-1, 1). Returns float32 of the speech's length.
    """
    s, nz = mix_components(speech, noise, snr_db)
    return (s + nz).astype(np.float32)


def measured_snr_db(speech_part: np.ndarray, noise_part: np.ndarray) -> float:
    """SNR of a mix from its parts, by the module's convention (active speech power / noise power)."""
    nz = np.asarray(noise_part, dtype=np.float64)
    return float(10 * np.log10(active_speech_power(speech_part) / float(np.mean(nz * nz))))


class NoiseSource:
    """Deterministic noise for mixing: ``segment(n, key)`` gives the same samples for the same key."""

    name = "noise"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def _rng(self, key: str) -> np.random.Generator:
        digest = hashlib.sha256(f"{self.seed}\0{key}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def segment(self, n_samples: int, key: str = "") -> np.ndarray:
        raise NotImplementedError

    def mix(self, speech: np.ndarray, snr_db: float, key: str = "") -> np.ndarray:
        """``speech`` (float) mixed with this source's segment for ``key`` at ``snr_db``."""
        return mix_at_snr(speech, self.segment(len(speech), key), snr_db)


class CarNoiseSource(NoiseSource):
    """The car-cabin generator as a noise source (a fresh seeded segment per key)."""

    name = "car"

    def __init__(self, config: CarNoiseConfig | None = None, seed: int = 0) -> None:
        super().__init__(seed)
        self.config = config or CarNoiseConfig()

    def segment(self, n_samples: int, key: str = "") -> np.ndarray:
        sub_seed = int(self._rng(key).integers(0, 2**63 - 1))
        return car_cabin_noise(n_samples / SAMPLE_RATE_HZ, self.config, sub_seed)[:n_samples]


class RecordedNoiseSource(NoiseSource):
    """Noise from recordings: per key, a seeded choice of file and start offset (looped if short)."""

    def __init__(self, paths: Iterable[str | Path], seed: int = 0) -> None:
        from edge_assistant.audio.io import iter_audio_files, read_audio

        super().__init__(seed)
        self.recordings: list[np.ndarray] = []
        self.paths: list[Path] = []
        self.unreadable: list[tuple[str, str]] = []
        for p in iter_audio_files(list(paths)):
            try:
                x = read_audio(p, "float32")
            except AudioFileError as exc:
                log.warning("noise: skipping %s", exc)
                self.unreadable.append((str(p), exc.reason))
                continue
            if float(np.mean(x.astype(np.float64) ** 2)) <= 0:
                self.unreadable.append((str(p), "digital silence; expected noise"))
                continue
            self.recordings.append(x)
            self.paths.append(p)
        if not self.recordings:
            raise AudioFileError(", ".join(str(p) for p in paths), "no usable noise recording (WAV/FLAC) found")
        self.name = "recorded"

    def segment(self, n_samples: int, key: str = "") -> np.ndarray:
        rng = self._rng(key)
        rec = self.recordings[int(rng.integers(0, len(self.recordings)))]
        return _take(rec, n_samples, int(rng.integers(0, len(rec))))


def load_noise(spec: str | Path, seed: int = 0, car: CarNoiseConfig | None = None) -> NoiseSource:
    """``"car"`` -> the generator; a folder or file of WAV/FLAC recordings -> :class:`RecordedNoiseSource`."""
    if str(spec) == "car":
        return CarNoiseSource(car, seed)
    return RecordedNoiseSource([spec], seed)


__all__ = [
    "CarNoiseConfig",
    "CarNoiseSource",
    "NoiseSource",
    "RecordedNoiseSource",
    "active_speech_power",
    "car_cabin_noise",
    "load_noise",
    "measured_snr_db",
    "mix_at_snr",
    "mix_components",
    "motor_whine_hz",
]
