"""The energy gate: levels in dBFS, the noise-floor tracker, hangover and warm-up."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_assistant.core.errors import ConfigError
from edge_assistant.vad.energy import EnergyGate, EnergyGateConfig, level_dbfs

SR = 16000
W = 512


def _sine(dbfs: float, n: int = W, f: float = 1000.0) -> np.ndarray:
    return (10 ** (dbfs / 20) * np.sin(2 * np.pi * f * np.arange(n) / SR)).astype(np.float32)


def _noise(dbfs: float, n: int, seed: int = 0) -> np.ndarray:
    # white noise whose RMS reads ``dbfs`` on the sine-referenced scale
    return (np.random.default_rng(seed).standard_normal(n) * 10 ** (dbfs / 20) / math.sqrt(2)).astype(np.float32)


def _windows(x: np.ndarray) -> list[np.ndarray]:
    return [x[i:i + W] for i in range(0, len(x) - W + 1, W)]


def test_levels() -> None:
    assert level_dbfs(_sine(0.0)) == pytest.approx(0.0, abs=0.05)
    assert level_dbfs(_sine(-20.0)) == pytest.approx(-20.0, abs=0.05)
    assert level_dbfs(np.ones(W, np.float32)) == pytest.approx(3.01, abs=0.01)
    assert level_dbfs(np.zeros(W, np.float32)) == -120.0


def test_floor_follows_noise_and_gate_closes_on_it() -> None:
    gate = EnergyGate()
    opens = [gate.update(w) for w in _windows(_noise(-50.0, 3 * SR))]
    assert gate.floor_dbfs == pytest.approx(-50.0, abs=3.0)
    warm = math.ceil(0.48 * SR / W)
    assert all(opens[:warm])
    assert sum(opens[warm + 10:]) <= 0.05 * len(opens[warm + 10:])


def test_gate_opens_on_a_loud_window_and_holds_for_the_hangover() -> None:
    cfg = EnergyGateConfig()
    gate = EnergyGate(cfg)
    for w in _windows(_noise(-60.0, 2 * SR)):
        gate.update(w)
    assert gate.update(_sine(-20.0)) is True
    hang = math.ceil(cfg.hangover_ms / 1000 * SR / W)
    after = [gate.update(w) for w in _windows(_noise(-60.0, 40 * W, seed=5))]
    assert after[:hang] == [True] * hang
    assert not any(after[hang + 2:])


def test_floor_rises_only_at_the_configured_rate() -> None:
    cfg = EnergyGateConfig(floor_rise_db_per_s=2.0)
    gate = EnergyGate(cfg)
    for w in _windows(_noise(-70.0, SR)):
        gate.update(w)
    start = gate.floor_dbfs
    loud = _windows(_noise(-30.0, 5 * SR, seed=1))
    for w in loud:
        gate.update(w)
    rose = gate.floor_dbfs - start
    assert rose == pytest.approx(2.0 * len(loud) * W / SR, rel=0.1)


def test_digital_silence_is_always_silence() -> None:
    gate = EnergyGate(EnergyGateConfig(warmup_ms=0.0))
    assert [gate.update(np.zeros(W, np.float32)) for _ in range(20)] == [False] * 20
    assert gate.skipped_fraction == 1.0


def test_reset() -> None:
    gate = EnergyGate()
    for w in _windows(_noise(-40.0, SR)):
        gate.update(w)
    gate.reset()
    assert gate.floor_dbfs is None and gate.windows_total == 0


@pytest.mark.parametrize("field", ["margin_db", "hangover_ms", "warmup_ms", "resume_context_ms"])
def test_config_errors_name_the_key(field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        EnergyGateConfig(**{field: -1.0})
    with pytest.raises(ConfigError, match="silence_dbfs"):
        EnergyGateConfig(silence_dbfs=6.0)
