"""Model cache: manifest checksums, start-up verification naming the bad file, idempotent build."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from edge_assistant.asr.model_cache import (
    MANIFEST,
    MODEL_NAME,
    is_up_to_date,
    load_whisper_files,
    verify,
    whisper_dir,
)
from edge_assistant.core.errors import ModelFileError
from edge_assistant.modelbuild.asr.whisper import build_whisper


@pytest.fixture()
def cache_copy(asr_cache, tmp_path) -> Path:
    """A copy of the cache: symlinks to the big files, real copies of the small ones (edited by tests)."""
    src = whisper_dir(asr_cache)
    dst = tmp_path / MODEL_NAME
    dst.mkdir()
    for f in src.iterdir():
        if f.stat().st_size < 5_000_000:
            shutil.copyfile(f, dst / f.name)
        else:
            os.symlink(f, dst / f.name)
    return tmp_path


def _replace_with_copy(path: Path) -> None:
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data)


def test_manifest_lists_every_file_with_checksums(asr_cache):
    d = whisper_dir(asr_cache)
    manifest = verify(d)
    names = {p.name for p in d.iterdir()} - {MANIFEST}
    assert set(manifest["files"]) == names
    assert {"encoder.int8.onnx", "cross_kv.int8.onnx", "decoder.int8.onnx", "encoder.onnx", "tokenizer.json"} <= names
    assert all(len(e["sha256"]) == 64 for e in manifest["files"].values())
    assert set(manifest["source"]["files"]) == {"model.bin", "config.json", "tokenizer.json"}
    assert manifest["dims"]["n_vocab"] == 51864


def test_build_is_idempotent(asr_cache):
    assert is_up_to_date(asr_cache)
    directory, built = build_whisper(asr_cache)
    assert directory == whisper_dir(asr_cache) and built is False


def test_corrupt_file_is_named(cache_copy):
    f = whisper_dir(cache_copy) / "cross_kv.int8.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"cross_kv\.int8\.onnx: SHA-256 .* does not match"):
        load_whisper_files(cache_copy, int8=True)
    # The float set does not use that file and still loads.
    assert load_whisper_files(cache_copy, int8=False).encoder.name == "encoder.onnx"


def test_truncated_file_is_named(cache_copy):
    f = whisper_dir(cache_copy) / "encoder.int8.onnx"
    _replace_with_copy(f)
    with open(f, "r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(ModelFileError, match=r"encoder\.int8\.onnx: 1000 bytes, expected \d+: corrupt or truncated"):
        verify(whisper_dir(cache_copy))


def test_missing_file_is_named(cache_copy):
    (whisper_dir(cache_copy) / "tokenizer.json").unlink()
    with pytest.raises(ModelFileError, match=r"tokenizer\.json: missing"):
        load_whisper_files(cache_copy)


def test_missing_or_broken_manifest(cache_copy):
    m = whisper_dir(cache_copy) / MANIFEST
    m.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"manifest\.json: not valid JSON"):
        verify(whisper_dir(cache_copy))
    m.unlink()
    with pytest.raises(ModelFileError, match=r"manifest\.json: missing; run `edge-assistant models build`"):
        load_whisper_files(cache_copy)
    assert not is_up_to_date(cache_copy)


def test_recogniser_start_up_refuses_corrupt_cache(cache_copy):
    from edge_assistant.asr.recognizer import WhisperRecognizer

    f = whisper_dir(cache_copy) / "config.json"
    f.write_text(f.read_text(encoding="utf-8").replace("50257", "50258"), encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"config\.json: SHA-256"):
        WhisperRecognizer(cache_root=cache_copy)


def test_stale_source_fingerprint_is_rebuilt_detected(cache_copy):
    m = whisper_dir(cache_copy) / MANIFEST
    manifest = json.loads(m.read_text(encoding="utf-8"))
    manifest["source"]["export_revision"] = -1
    m.write_text(json.dumps(manifest), encoding="utf-8")
    assert verify(whisper_dir(cache_copy))  # files intact...
    assert not is_up_to_date(cache_copy)  # ...but built by another exporter
