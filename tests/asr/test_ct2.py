"""The CTranslate2 model.bin reader: the shipped file, and truncated/corrupt files written here."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from edge_assistant.core.errors import ModelFileError
from edge_assistant.modelbuild.asr.ct2 import read_ct2_model


def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _ct2_bytes(variables: dict[str, np.ndarray], aliases: dict[str, str] | None = None, version: int = 6) -> bytes:
    """A model.bin in CTranslate2's layout (the test's own writer, used to make small files)."""
    ids = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}
    out = struct.pack("<I", version) + _string("WhisperSpec") + struct.pack("<II", 3, len(variables))
    for name, value in variables.items():
        out += _string(name) + struct.pack("<B", value.ndim) + b"".join(struct.pack("<I", d) for d in value.shape)
        out += struct.pack("<BI", ids[value.dtype.name], value.nbytes) + value.tobytes()
    aliases = aliases or {}
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        out += _string(alias) + _string(target)
    return out


SMALL = {
    "a/weight": np.arange(6, dtype=np.float16).reshape(2, 3),
    "a/num_heads": np.array(6, dtype=np.int16),
    "b/bias": np.array([1.5, -2.0], dtype=np.float32),
}


def test_shipped_model_names_shapes_dtypes(ct2_model):
    m = ct2_model
    assert (m.binary_version, m.spec_name, m.spec_revision) == (6, "WhisperSpec", 3)
    assert m.variables["encoder/conv1/weight"].shape == (384, 80, 3)
    assert m.variables["encoder/conv1/weight"].dtype == np.float16
    assert m.variables["encoder/conv2/weight"].shape == (384, 384, 3)
    assert m.variables["encoder/position_encodings/encodings"].shape == (1500, 384)
    assert m.variables["decoder/position_encodings/encodings"].shape == (448, 384)
    assert m.variables["decoder/embeddings/weight"].shape == (51864, 384)
    assert m.variables["encoder/layer_3/self_attention/linear_0/weight"].shape == (1152, 384)
    assert m.variables["decoder/layer_0/attention/linear_1/weight"].shape == (768, 384)
    assert m.scalar("encoder/num_heads") == 6 and m.scalar("decoder/num_heads") == 6
    assert "encoder/layer_4/ffn/linear_0/weight" not in m
    # The tied output projection is stored as an alias of the embedding table.
    assert m.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    np.testing.assert_array_equal(m.get("decoder/projection/weight"), m.get("decoder/embeddings/weight"))
    assert m.get("encoder/conv1/bias").dtype == np.float32


def test_small_file_roundtrip(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(_ct2_bytes(SMALL, {"c/weight": "a/weight"}))
    m = read_ct2_model(path)
    for name, value in SMALL.items():
        np.testing.assert_array_equal(m.get(name, dtype=None), value)
        assert m.get(name, dtype=None).dtype == value.dtype
    np.testing.assert_array_equal(m.get("c/weight"), SMALL["a/weight"].astype(np.float32))
    assert m.names() == ["a/num_heads", "a/weight", "b/bias", "c/weight"]
    with pytest.raises(ModelFileError, match="no variable 'zzz'"):
        m.get("zzz")


@pytest.mark.parametrize("cut", [0, 2, 7, 20, 40, -30, -9, -1])
def test_truncated_file_names_the_file_and_offset(tmp_path, cut):
    data = _ct2_bytes(SMALL, {"c/weight": "a/weight"})
    path = tmp_path / "model.bin"
    path.write_bytes(data[:cut] if cut >= 0 else data[: len(data) + cut])
    with pytest.raises(ModelFileError) as info:
        read_ct2_model(path)
    assert str(path) in str(info.value)
    assert "truncated" in str(info.value)


def test_shipped_model_truncated_copy(tmp_path, ct2_model):
    data = ct2_model.path.read_bytes()
    path = tmp_path / "model.bin"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"truncated at byte \d+ reading data of 'decoder/"):
        read_ct2_model(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: struct.pack("<I", 99) + d[4:], "binary version 99 not supported"),
        (lambda d: d + b"xx", "2 unexpected trailing bytes"),
        (lambda d: d.replace(b"a/weight\0\x02", b"a/weight\0\x09", 1), "rank 9"),
        (lambda d: d.replace(b"\x03\x00\x00\x00\x04\x0c\x00\x00\x00", b"\x03\x00\x00\x00\x07\x0c\x00\x00\x00", 1),
         "unknown dtype id 7"),
        (lambda d: d.replace(b"\x03\x00\x00\x00\x04\x0c\x00\x00\x00", b"\x03\x00\x00\x00\x04\x0e\x00\x00\x00", 1),
         "14 bytes for shape"),
    ],
)
def test_corrupt_file_is_a_clear_error(tmp_path, mutate, message):
    path = tmp_path / "model.bin"
    path.write_bytes(mutate(_ct2_bytes(SMALL)))
    with pytest.raises(ModelFileError, match=message):
        read_ct2_model(path)


def test_dangling_alias(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(_ct2_bytes(SMALL, {"c/weight": "nope"}))
    with pytest.raises(ModelFileError, match="alias 'c/weight' points to unknown variable 'nope'"):
        read_ct2_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read"):
        read_ct2_model(tmp_path / "absent.bin")
