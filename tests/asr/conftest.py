"""ASR fixtures: the model cache built once per session (the Makefile builds it before pytest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_assistant.core.paths import model_cache_dir


@pytest.fixture(scope="session")
def asr_cache() -> Path:
    """The model cache root with an up-to-date Whisper build (built here if `make models` did not run)."""
    from edge_assistant.modelbuild.asr.whisper import build_whisper

    build_whisper()
    return model_cache_dir()


@pytest.fixture(scope="session")
def recognizer(asr_cache):
    """The default recogniser (int8, one thread)."""
    from edge_assistant.asr.recognizer import WhisperRecognizer

    return WhisperRecognizer()


@pytest.fixture(scope="session")
def ct2_model():
    from edge_assistant.core.paths import whisper_package_dir
    from edge_assistant.modelbuild.asr.ct2 import read_ct2_model

    return read_ct2_model(whisper_package_dir() / "model.bin")
