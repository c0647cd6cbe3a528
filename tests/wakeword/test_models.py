"""Manifests, user heads and bad model files (clear ModelFileError at construction)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.core.errors import ModelFileError
from edge_assistant.wakeword.engine import build_engine
from edge_assistant.wakeword.manifest import SHIPPED_HEADS, load_manifest, manifest_to_dict, shipped_manifest


@pytest.mark.parametrize("name", SHIPPED_HEADS)
def test_shipped_manifests_match_their_onnx(name: str) -> None:
    m = shipped_manifest(name)
    assert m.path.is_file() and m.type == "oww-head" and m.source == "shipped"
    assert m.licence == "CC-BY-NC-SA-4.0" and m.threshold == 0.5
    assert (m.sample_rate_hz, m.frame_samples, m.embedding_dim) == (16000, 1280, 96)
    derived = load_manifest(m.path)  # from the ONNX shapes alone
    assert derived.window_embeddings == m.window_embeddings
    assert derived.labels.keys() == m.labels.keys() or name != "timer"
    if name == "timer":  # the output name carries openWakeWord's class map
        assert derived.labels == m.labels and 0 not in m.labels


def test_backbone_manifests_are_apache() -> None:
    for name in ("embedding_model", "melspectrogram"):
        m = shipped_manifest(name)
        assert m.licence == "Apache-2.0" and m.path.is_file()


def test_user_head_without_manifest_is_derived(tmp_path: Path) -> None:
    head = tmp_path / "my_wake.onnx"
    shutil.copy(shipped_manifest("alexa").path, head)
    m = load_manifest(head)
    assert (m.name, m.window_embeddings, m.labels, m.source) == ("my_wake", 16, {0: "my_wake"}, "derived")
    x = (np.random.default_rng(3).standard_normal(3 * 16000) * 2000).astype(np.int16)
    assert np.array_equal(build_engine(str(head)).feed(x).scores, build_engine("alexa").feed(x).scores)


def test_user_head_with_manifest_beside_it(tmp_path: Path) -> None:
    head = tmp_path / "computer.onnx"
    shutil.copy(shipped_manifest("hey_jarvis").path, head)
    meta = manifest_to_dict(load_manifest(head))
    meta.update(name="computer", labels={"0": "computer"}, threshold=0.7, licence="MIT")
    (tmp_path / "computer.json").write_text(json.dumps(meta))
    engine = build_engine(str(head))
    assert engine.labels == ["computer"] and engine._labels[0].threshold == 0.7  # noqa: SLF001
    assert load_manifest(tmp_path / "computer.json").licence == "MIT"


def test_missing_model_named_at_construction(tmp_path: Path) -> None:
    missing = tmp_path / "gone.onnx"
    with pytest.raises(ModelFileError) as exc:
        build_engine(["alexa", str(missing)])
    assert str(missing) in str(exc.value) and "not found" in str(exc.value)
    with pytest.raises(ModelFileError, match="no shipped model"):
        build_engine("hey_kitt")


def test_corrupt_model_named_at_construction(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(shipped_manifest("alexa").path.read_bytes()[:500])
    with pytest.raises(ModelFileError) as exc:
        build_engine(str(bad))
    assert str(bad) in str(exc.value)


def test_wrong_shape_model_rejected(tmp_path: Path) -> None:
    wrong = tmp_path / "mel.onnx"
    shutil.copy(shipped_manifest("melspectrogram").path, wrong)
    with pytest.raises(ModelFileError, match=r"expected \[batch, N, 96\]") as exc:
        build_engine(str(wrong))
    assert str(wrong) in str(exc.value)


def test_bad_manifest_key_named(tmp_path: Path) -> None:
    head = tmp_path / "h.onnx"
    shutil.copy(shipped_manifest("alexa").path, head)
    (tmp_path / "h.json").write_text(json.dumps({"name": "h", "type": "tflite", "labels": {"0": "h"}}))
    with pytest.raises(ModelFileError, match="key 'type'"):
        build_engine(str(head))
    (tmp_path / "h.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        build_engine(str(head))


def test_missing_int8_model_named(tmp_path: Path) -> None:
    missing = tmp_path / "int8.onnx"
    with pytest.raises(ModelFileError, match="models quantize") as exc:
        build_engine("alexa", int8_embedding=True, int8_model_path=str(missing))
    assert str(missing) in str(exc.value)


@pytest.mark.parametrize("file", ["/etc/passwd", "../alexa_v0.1.onnx", "heads/../../x.onnx", "", ".", "a\x00.onnx", 7])
def test_manifest_file_outside_its_folder_is_rejected(tmp_path: Path, file: object) -> None:
    manifest = tmp_path / "evil.json"
    manifest.write_text(json.dumps({"name": "evil", "type": "oww-head", "labels": {"0": "evil"}, "file": file}))
    with pytest.raises(ModelFileError, match="key 'file'") as exc:
        load_manifest(manifest)
    assert str(manifest) in str(exc.value)
    (tmp_path / "sub").mkdir()
    manifest.write_text(json.dumps({"name": "ok", "type": "oww-head", "labels": {"0": "ok"}, "file": "sub/h.onnx"}))
    assert load_manifest(manifest).path == tmp_path / "sub" / "h.onnx"
