"""A plain numpy Whisper forward pass over CTranslate2 weights: the oracle the ONNX graphs are checked against.

Written for clarity, not speed (float64 throughout, no cache tricks beyond what the interface needs).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from edge_assistant.modelbuild.asr.ct2 import CT2Model
from edge_assistant.modelbuild.asr.export import LN_EPS, whisper_dims


def _w(model: CT2Model, name: str) -> np.ndarray:
    return model.get(name, dtype="float64")


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _ln(model: CT2Model, x: np.ndarray, prefix: str) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * _w(model, f"{prefix}/gamma") + _w(model, f"{prefix}/beta")


def _linear(model: CT2Model, x: np.ndarray, prefix: str) -> np.ndarray:
    y = x @ _w(model, f"{prefix}/weight").T
    if f"{prefix}/bias" in model:
        y = y + _w(model, f"{prefix}/bias")
    return y


def _conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    """x (C_in, N), w (C_out, C_in, 3), padding 1 -> (C_out, N_out)."""
    xp = np.pad(x, ((0, 0), (1, 1)))
    n_out = (x.shape[1] + 2 - 3) // stride + 1
    cols = np.stack([xp[:, k : k + stride * n_out : stride] for k in range(3)], axis=-1)  # (C_in, N_out, 3)
    return np.einsum("cnk,ock->on", cols, w) + b[:, None]


def _attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, n_heads: int, causal_offset: int | None) -> np.ndarray:
    """q (n, d), k/v (m, d) -> (n, d); causal_offset P masks key j > P + i."""
    n, d = q.shape
    dh = d // n_heads
    qh = q.reshape(n, n_heads, dh).transpose(1, 0, 2)
    kh = k.reshape(-1, n_heads, dh).transpose(1, 0, 2)
    vh = v.reshape(-1, n_heads, dh).transpose(1, 0, 2)
    s = qh @ kh.transpose(0, 2, 1) / math.sqrt(dh)
    if causal_offset is not None:
        j = np.arange(kh.shape[1])[None, :]
        i = np.arange(n)[:, None] + causal_offset
        s = np.where(j > i, -np.inf, s)
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    return (p @ vh).transpose(1, 0, 2).reshape(n, d)


def encode(model: CT2Model, mel: np.ndarray) -> np.ndarray:
    """mel (80, N) -> encoder output (N/2, d)."""
    dims = whisper_dims(model)
    x = _gelu(_conv1d(mel.astype(np.float64), _w(model, "encoder/conv1/weight"), _w(model, "encoder/conv1/bias"), 1))
    x = _gelu(_conv1d(x, _w(model, "encoder/conv2/weight"), _w(model, "encoder/conv2/bias"), 2)).T
    x = x + _w(model, "encoder/position_encodings/encodings")[: x.shape[0]]
    d = dims.d_model
    for i in range(dims.n_layers_enc):
        p = f"encoder/layer_{i}"
        a = _ln(model, x, f"{p}/self_attention/layer_norm")
        qkv = _linear(model, a, f"{p}/self_attention/linear_0")
        ctx = _attention(qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :], dims.n_heads_enc, None)
        x = x + _linear(model, ctx, f"{p}/self_attention/linear_1")
        x = x + _linear(model, _gelu(_linear(model, _ln(model, x, f"{p}/ffn/layer_norm"), f"{p}/ffn/linear_0")),
                        f"{p}/ffn/linear_1")
    return _ln(model, x, "encoder/layer_norm")


def decode_logits(model: CT2Model, tokens: list[int], encoder_out: np.ndarray) -> np.ndarray:
    """Logits (n, V) for every position of ``tokens`` given the encoder output (no cache)."""
    dims = whisper_dims(model)
    d = dims.d_model
    x = _w(model, "decoder/embeddings/weight")[tokens] + _w(model, "decoder/position_encodings/encodings")[: len(tokens)]
    for i in range(dims.n_layers_dec):
        p = f"decoder/layer_{i}"
        a = _ln(model, x, f"{p}/self_attention/layer_norm")
        qkv = _linear(model, a, f"{p}/self_attention/linear_0")
        ctx = _attention(qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :], dims.n_heads_dec, 0)
        x = x + _linear(model, ctx, f"{p}/self_attention/linear_1")
        a = _ln(model, x, f"{p}/attention/layer_norm")
        q = _linear(model, a, f"{p}/attention/linear_0")
        kv = _linear(model, encoder_out.astype(np.float64), f"{p}/attention/linear_1")
        ctx = _attention(q, kv[:, :d], kv[:, d:], dims.n_heads_dec, None)
        x = x + _linear(model, ctx, f"{p}/attention/linear_2")
        x = x + _linear(model, _gelu(_linear(model, _ln(model, x, f"{p}/ffn/layer_norm"), f"{p}/ffn/linear_0")),
                        f"{p}/ffn/linear_1")
    x = _ln(model, x, "decoder/layer_norm")
    return x @ _w(model, "decoder/projection/weight").T
