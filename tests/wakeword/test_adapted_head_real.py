"""The car-adapted head (``alexa_car``, built by ``make models``) on the real alexa clips and negatives,
in generated car-cabin noise at 5 dB SNR and in quiet, against the shipped head in the same run."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.bench.wake import WakeBenchConfig, run_wake_bench
from edge_assistant.wakeword.manifest import adapted_manifest_path

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def folders(wakeword_data: Path, speech_data: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if adapted_manifest_path("alexa_car") is None:
        pytest.skip("alexa_car is not in the model cache: `make models` (or `edge-assistant models adapt`) builds it")
    negatives = tuple(str(wakeword_data / d) for d in ("jarvis", "smart_mirror", "snowboy", "view_glass"))
    return (str(wakeword_data / "alexa"),), negatives + (str(speech_data / "negatives"),)


def _bench(model: str, folders, noise: str | None) -> dict:
    pos, neg = folders
    return run_wake_bench(WakeBenchConfig(model=model, positives=pos, negatives=neg, noise=noise,
                                          snr_db=(5.0,) if noise else (), progress=False))


@pytest.fixture(scope="module")
def stock_quiet(folders) -> dict:
    return _bench("alexa", folders, None)


@pytest.fixture(scope="module")
def adapted_car(folders) -> dict:
    return _bench("alexa_car", folders, "car")


def test_adapted_head_wakes_in_car_noise_without_more_false_accepts(stock_quiet: dict, adapted_car: dict) -> None:
    """Issue 2's car target: >= 99 % of the real alexa clips at 5 dB, no more false accepts than in quiet."""
    assert adapted_car["noise_suppression"] is True and adapted_car["patience_frames"] == 2  # from its manifest
    assert adapted_car["positives"] == stock_quiet["positives"] == 315
    assert adapted_car["wake_rate"] >= 0.99, adapted_car["missed"]
    assert adapted_car["false_accepts"] <= stock_quiet["false_accepts"], adapted_car["false_accept_files"]


def test_adapted_head_keeps_quiet_performance(folders, stock_quiet: dict) -> None:
    quiet = _bench("alexa_car", folders, None)
    assert quiet["detected"] >= stock_quiet["detected"] - 1, quiet["missed"]
    assert quiet["false_accepts"] <= stock_quiet["false_accepts"], quiet["false_accept_files"]
