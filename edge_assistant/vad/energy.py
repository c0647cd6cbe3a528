"""A cheap energy gate in front of the neural VAD.

Per window it measures the level in dBFS (RMS relative to a full-scale sine, so a full-scale square wave
reads +3 dB) and tracks the background level with an asymmetric follower: it drops to a quieter window
quickly and climbs only slowly (``floor_rise_db_per_s``), so speech, which is loud for a few seconds at a
time, cannot lift it much. A window is *clearly silence* when it is below ``floor + margin_db`` or below
``silence_dbfs``, and no window in the last ``hangover_ms`` was louder: the neural VAD then need not run.

The gate stays open for the first ``warmup_ms`` of a stream, so a stream that begins in the middle of
speech does not take the talker's level for the floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_assistant.core.errors import ConfigError

# 20*log10(sqrt(2)): a full-scale sine has RMS 1/sqrt(2) and reads 0 dBFS.
_SINE_REF_DB = 3.0103
_FLOOR_DBFS = -120.0


@dataclass(frozen=True)
class EnergyGateConfig:
    """Settings of :class:`EnergyGate`. Times in milliseconds, levels in dBFS / dB."""

    margin_db: float = 6.0
    """A window this far or less above the tracked noise floor counts as silence."""
    silence_dbfs: float = -60.0
    """A window below this level counts as silence whatever the floor (digital or near-digital silence)."""
    floor_rise_db_per_s: float = 2.0
    """How fast the floor may climb when the level stays above it (slow, so speech does not raise it)."""
    floor_fall_time_ms: float = 40.0
    """Time constant with which the floor follows a quieter window down (fast)."""
    hangover_ms: float = 256.0
    """Keep the neural VAD running this long after the last window that passed the gate."""
    warmup_ms: float = 480.0
    """Gate held open for this long at the start of a stream, while the floor settles."""
    resume_context_ms: float = 128.0
    """When the gate reopens, the neural VAD restarts from a fresh state and first re-reads this much of
    the audio before the reopening window, so it does not resume with the state it had before the gap."""

    def __post_init__(self) -> None:
        for name in ("margin_db", "floor_rise_db_per_s", "floor_fall_time_ms", "hangover_ms", "warmup_ms",
                     "resume_context_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"energy gate {name}={value!r}: expected a finite number >= 0")
        if not (math.isfinite(self.silence_dbfs) and self.silence_dbfs <= 0):
            raise ConfigError(f"energy gate silence_dbfs={self.silence_dbfs!r}: expected a level <= 0 dBFS")


def level_dbfs(window: np.ndarray) -> float:
    """RMS level of a float window in dBFS (full-scale sine = 0 dBFS); -120 for digital silence."""
    if window.size == 0:
        return _FLOOR_DBFS
    power = float(np.dot(window, window)) / window.size
    if power <= 1e-14:
        return _FLOOR_DBFS
    return max(_FLOOR_DBFS, 10.0 * math.log10(power) + _SINE_REF_DB)


class EnergyGate:
    """Decides per window whether the neural VAD must run. One instance per stream; not thread-safe."""

    def __init__(self, config: EnergyGateConfig | None = None, *, window_samples: int = 512,
                 sample_rate_hz: int = 16000) -> None:
        self.config = config or EnergyGateConfig()
        if window_samples <= 0 or sample_rate_hz <= 0:
            raise ConfigError(f"window_samples={window_samples}, sample_rate_hz={sample_rate_hz}: expected > 0")
        window_s = window_samples / sample_rate_hz
        cfg = self.config
        self._rise_db = cfg.floor_rise_db_per_s * window_s
        self._fall_alpha = 1.0 if cfg.floor_fall_time_ms == 0 else 1.0 - math.exp(
            -window_s * 1000.0 / cfg.floor_fall_time_ms)
        self._hangover_windows = int(math.ceil(cfg.hangover_ms / 1000.0 / window_s))
        self._warmup_windows = int(math.ceil(cfg.warmup_ms / 1000.0 / window_s))
        self.reset()

    def reset(self) -> None:
        """Start afresh: no floor, warm-up again, counters to zero."""
        self.floor_dbfs: float | None = None
        self.last_level_dbfs = _FLOOR_DBFS
        self._windows = 0
        self._hold = 0
        self.windows_total = 0
        self.windows_open = 0

    def update(self, window: np.ndarray) -> bool:
        """Measure one window, update the floor; True when the neural VAD should run on it."""
        level = level_dbfs(window)
        self.last_level_dbfs = level
        cfg = self.config
        if self.floor_dbfs is None:
            self.floor_dbfs = level
        elif level < self.floor_dbfs:
            self.floor_dbfs += self._fall_alpha * (level - self.floor_dbfs)
        else:
            self.floor_dbfs = min(level, self.floor_dbfs + self._rise_db)
        self._windows += 1
        quiet = level < cfg.silence_dbfs or level <= self.floor_dbfs + cfg.margin_db
        if not quiet:
            self._hold = self._hangover_windows
            open_ = True
        elif self._hold > 0:
            self._hold -= 1
            open_ = True
        else:
            open_ = self._windows <= self._warmup_windows
        self.windows_total += 1
        self.windows_open += int(open_)
        return open_

    @property
    def skipped_fraction(self) -> float:
        """Share of windows on which the neural VAD was skipped so far."""
        return 0.0 if self.windows_total == 0 else 1.0 - self.windows_open / self.windows_total
