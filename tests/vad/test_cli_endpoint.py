"""``edge-assistant endpoint``: human and JSON output, and a bad file among good ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge_assistant.cli import main

from .conftest import SR, silence


@pytest.fixture()
def speech_file(tmp_path: Path, short_clips: list[np.ndarray]) -> Path:
    """Two sentences 1.5 s apart, written as a 16 kHz WAV (generated here from the real clips)."""
    x = np.concatenate([silence(0.5), short_clips[0], silence(1.5), short_clips[1], silence(1.0)])
    path = tmp_path / "two.wav"
    sf.write(path, x, SR, subtype="PCM_16")
    return path


def test_json_output(speech_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["endpoint", str(speech_file), "--json", "--stats"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (entry,) = doc["files"]
    assert entry["file"] == str(speech_file)
    spans = [(u["start_s"], u["end_s"]) for u in entry["utterances"]]
    assert len(spans) == 2 and spans[0][1] < spans[1][0]
    assert doc["config"]["trailing_silence_ms"] == 700.0
    assert 0.0 < entry["stats"]["skipped_fraction"] < 1.0


def test_human_output_and_options(speech_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["endpoint", str(speech_file), "--trailing-silence-ms", "2000", "--no-gate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{speech_file}: 1 utterance: ")  # a 1.5 s pause no longer splits


def test_bad_file_is_named_and_the_rest_goes_on(speech_file: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    out_json = tmp_path / "out.json"
    assert main(["endpoint", str(bad), str(speech_file), "--json", str(out_json)]) == 1
    captured = capsys.readouterr()
    assert "broken.wav" in captured.err
    doc = json.loads(out_json.read_text())
    assert "error" in doc["files"][0] and len(doc["files"][1]["utterances"]) == 2


def test_bad_option_is_a_clear_error(speech_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["endpoint", str(speech_file), "--onset", "0.2", "--offset", "0.4"]) == 1
    assert "offset_threshold" in capsys.readouterr().err
