"""Build ONNX graphs for Whisper from CTranslate2 weights, with ``onnx.helper`` (no torch).

Three graphs, batch 1 (one microphone stream) except the decoder's hypotheses, float32 at the interfaces:

* ``encoder``: ``mel`` (1, 80, N) with any even N <= 3000 -> ``encoder_out`` (1, N/2, d). conv1 (k3) + GELU,
  conv2 (k3, stride 2) + GELU, the first N/2 learned/sinusoidal positions, pre-LN transformer, final LN.
  Variable N is what lets the recogniser encode only the utterance instead of a padded 30 s window.
* ``cross_kv``: ``encoder_out`` -> ``cross_k_i``/``cross_v_i`` (1, H, T, dh) for every decoder layer i:
  the cross-attention keys and values, computed once per utterance.
* ``decoder``: one step. ``tokens`` (B, n), ``past_k_i``/``past_v_i`` (B, H, P, dh), ``cross_k_i``/``cross_v_i``
  (1, H, T, dh, shared by the B hypotheses of a beam search through MatMul's broadcasting) -> ``logits`` (B, V)
  of the last token and ``present_k_i``/``present_v_i`` (B, H, P+n, dh). The positions of
  the n new tokens are P..P+n-1; a causal mask lets the prompt be fed in one call. One tensor per layer
  (not one stacked tensor) so that no step copies the whole cache to slice a layer out of it.

Weight MatMul nodes are named ``*_matmul`` so quantisation can select them (see :mod:`.quantize`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_assistant.core.errors import ModelFileError
from edge_assistant.modelbuild.asr.ct2 import CT2Model

log = logging.getLogger(__name__)

OPSET = 17
LN_EPS = 1e-5
N_MELS = 80


@dataclass(frozen=True)
class WhisperDims:
    """Sizes read from the model file."""

    n_mels: int
    d_model: int
    n_heads_enc: int
    n_heads_dec: int
    n_layers_enc: int
    n_layers_dec: int
    n_audio_ctx: int
    n_text_ctx: int
    n_vocab: int

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads_dec


def _count_layers(model: CT2Model, prefix: str) -> int:
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in model:
        n += 1
    return n


def whisper_dims(model: CT2Model) -> WhisperDims:
    """Read and check the model's sizes; :class:`ModelFileError` if it is not a Whisper spec we can build."""
    if model.spec_name != "WhisperSpec":
        raise ModelFileError(model.path, f"spec {model.spec_name!r}; expected WhisperSpec")
    conv1 = model.get("encoder/conv1/weight", None)
    emb = model.get("decoder/embeddings/weight", None)
    enc_pos = model.get("encoder/position_encodings/encodings", None)
    dec_pos = model.get("decoder/position_encodings/encodings", None)
    dims = WhisperDims(
        n_mels=int(conv1.shape[1]),
        d_model=int(conv1.shape[0]),
        n_heads_enc=int(model.scalar("encoder/num_heads")),
        n_heads_dec=int(model.scalar("decoder/num_heads")),
        n_layers_enc=_count_layers(model, "encoder"),
        n_layers_dec=_count_layers(model, "decoder"),
        n_audio_ctx=int(enc_pos.shape[0]),
        n_text_ctx=int(dec_pos.shape[0]),
        n_vocab=int(emb.shape[0]),
    )
    if dims.n_mels != N_MELS or conv1.shape[2] != 3:
        raise ModelFileError(model.path, f"encoder/conv1/weight shape {conv1.shape}; expected (d, 80, 3)")
    if dims.d_model % dims.n_heads_enc or dims.d_model % dims.n_heads_dec:
        raise ModelFileError(model.path, f"d_model {dims.d_model} not divisible by the head count")
    if emb.shape[1] != dims.d_model or dec_pos.shape[1] != dims.d_model or enc_pos.shape[1] != dims.d_model:
        raise ModelFileError(model.path, "embedding/position widths differ from d_model")
    if not dims.n_layers_enc or not dims.n_layers_dec:
        raise ModelFileError(model.path, "no encoder or decoder layers found")
    return dims


class _Graph:
    """A tiny builder: unique names, initialisers from numpy, nodes appended in order."""

    def __init__(self, model: CT2Model) -> None:
        self.model = model
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, onnx.TensorProto] = {}
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: np.ndarray | float | int | list, hint: str = "c") -> str:
        arr = np.asarray(value)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        name = self.name(hint)
        self.inits[name] = numpy_helper.from_array(arr, name)
        return name

    def weight(self, var: str, transpose: bool = False, dtype: str = "float32") -> str:
        """A model variable as an initialiser (cached by variable name)."""
        key = var + ("^T" if transpose else "") + ":" + dtype
        if key not in self.inits:
            arr = self.model.get(var).astype(dtype)
            if transpose:
                arr = np.ascontiguousarray(arr.T)
            self.inits[key] = numpy_helper.from_array(arr, key)
        return key

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, n_out: int = 1, **attrs) -> str | list[str]:
        base = self.name(hint or op_type.lower())
        outs = [base] if n_out == 1 else [f"{base}:{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=base, **attrs))
        return outs[0] if n_out == 1 else outs

    # --- layers -------------------------------------------------------------------------------------
    def linear(self, x: str, prefix: str, rows: slice | None = None, hint: str = "linear") -> str:
        """x @ W^T + b with CT2's (out, in) weight; ``rows`` selects part of a fused weight."""
        w = self.model.get(f"{prefix}/weight")
        b = self.model.get(f"{prefix}/bias") if f"{prefix}/bias" in self.model else None
        if rows is not None:
            w = w[rows]
            b = b[rows] if b is not None else None
        wt = self.const(np.ascontiguousarray(w.T.astype(np.float32)), f"{hint}_w")
        y = self.op("MatMul", [x, wt], hint=f"{hint}_matmul")
        if b is not None and np.any(b):
            y = self.op("Add", [y, self.const(b.astype(np.float32), f"{hint}_b")], hint=f"{hint}_bias")
        return y

    def split_heads(self, x: str, parts: int, n_heads: int, head_dim: int) -> list[str]:
        """(1, T, parts*d) from one fused projection -> ``parts`` tensors (1, H, T, dh)."""
        d = n_heads * head_dim
        pieces = self.op("Split", [x, self.const(np.array([d] * parts, np.int64))], n_out=parts, axis=-1)
        return [self.heads(p, n_heads, head_dim) for p in pieces]

    def layer_norm(self, x: str, prefix: str) -> str:
        return self.op(
            "LayerNormalization",
            [x, self.weight(f"{prefix}/gamma"), self.weight(f"{prefix}/beta")],
            hint="ln",
            axis=-1,
            epsilon=LN_EPS,
        )

    def gelu(self, x: str) -> str:
        """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)); onnxruntime fuses this pattern into its Gelu kernel."""
        t = self.op("Div", [x, self.const(np.float32(math.sqrt(2.0)))])
        t = self.op("Erf", [t])
        t = self.op("Add", [t, self.const(np.float32(1.0))])
        t = self.op("Mul", [x, t])
        return self.op("Mul", [t, self.const(np.float32(0.5))], hint="gelu")

    def heads(self, x: str, n_heads: int, head_dim: int) -> str:
        """(1, T, d) -> (1, H, T, dh)."""
        r = self.op("Reshape", [x, self.const(np.array([0, -1, n_heads, head_dim], np.int64))])
        return self.op("Transpose", [r], perm=[0, 2, 1, 3])

    def merge_heads(self, x: str, d_model: int) -> str:
        """(1, H, T, dh) -> (1, T, d)."""
        t = self.op("Transpose", [x], perm=[0, 2, 1, 3])
        return self.op("Reshape", [t, self.const(np.array([0, -1, d_model], np.int64))])

    def attend(self, q: str, k: str, v: str, head_dim: int, mask: str | None = None) -> str:
        """softmax(q k^T / sqrt(dh) + mask) v over (1, H, ., dh) tensors."""
        kt = self.op("Transpose", [k], perm=[0, 1, 3, 2])
        q = self.op("Mul", [q, self.const(np.float32(1.0 / math.sqrt(head_dim)))])
        s = self.op("MatMul", [q, kt], hint="scores")
        if mask is not None:
            s = self.op("Add", [s, mask])
        p = self.op("Softmax", [s], axis=-1)
        return self.op("MatMul", [p, v], hint="context")

    def ffn(self, x: str, prefix: str) -> str:
        h = self.layer_norm(x, f"{prefix}/layer_norm")
        h = self.linear(h, f"{prefix}/linear_0", hint="ffn0")
        h = self.gelu(h)
        h = self.linear(h, f"{prefix}/linear_1", hint="ffn1")
        return self.op("Add", [x, h], hint="residual")

    def finish(self, name: str, inputs: list, outputs: list) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, list(self.inits.values()))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edge-assistant")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=False)
        return model


def build_encoder(model: CT2Model) -> onnx.ModelProto:
    """The encoder graph; input ``mel`` (1, 80, N), N even and <= 2 * n_audio_ctx."""
    dims = whisper_dims(model)
    g = _Graph(model)
    d, h = dims.d_model, dims.n_heads_enc
    dh = d // h
    x = g.op("Conv", ["mel", g.weight("encoder/conv1/weight"), g.weight("encoder/conv1/bias")],
             hint="conv1", kernel_shape=[3], pads=[1, 1], strides=[1])
    x = g.gelu(x)
    x = g.op("Conv", [x, g.weight("encoder/conv2/weight"), g.weight("encoder/conv2/bias")],
             hint="conv2", kernel_shape=[3], pads=[1, 1], strides=[2])
    x = g.gelu(x)
    x = g.op("Transpose", [x], perm=[0, 2, 1])  # (1, T, d)
    t_len = g.op("Slice", [g.op("Shape", [x]), g.const(np.array([1], np.int64)), g.const(np.array([2], np.int64))])
    pos = g.op("Slice", [g.weight("encoder/position_encodings/encodings"), g.const(np.array([0], np.int64)), t_len,
                         g.const(np.array([0], np.int64))], hint="positions")
    x = g.op("Add", [x, pos])
    for i in range(dims.n_layers_enc):
        p = f"encoder/layer_{i}"
        a = g.layer_norm(x, f"{p}/self_attention/layer_norm")
        q, k, v = g.split_heads(g.linear(a, f"{p}/self_attention/linear_0", hint=f"enc{i}_qkv"), 3, h, dh)
        ctx = g.merge_heads(g.attend(q, k, v, dh), d)
        x = g.op("Add", [x, g.linear(ctx, f"{p}/self_attention/linear_1", hint=f"enc{i}_o")], hint="residual")
        x = g.ffn(x, f"{p}/ffn")
    g.nodes.append(helper.make_node(
        "LayerNormalization", [x, g.weight("encoder/layer_norm/gamma"), g.weight("encoder/layer_norm/beta")],
        ["encoder_out"], name="ln_post", axis=-1, epsilon=LN_EPS))
    return g.finish(
        "whisper_encoder",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, [1, dims.n_mels, "n_frames"])],
        [helper.make_tensor_value_info("encoder_out", TensorProto.FLOAT, [1, "n_ctx", d])],
    )


def build_cross_kv(model: CT2Model) -> onnx.ModelProto:
    """Cross-attention keys/values of every decoder layer from ``encoder_out``."""
    dims = whisper_dims(model)
    g = _Graph(model)
    d, h = dims.d_model, dims.n_heads_dec
    dh = d // h
    outputs = []
    for i in range(dims.n_layers_dec):
        kv = g.linear("encoder_out", f"decoder/layer_{i}/attention/linear_1", hint=f"cross{i}_kv")
        k, v = g.split_heads(kv, 2, h, dh)
        g.nodes.append(helper.make_node("Identity", [k], [f"cross_k_{i}"], name=f"cross_k_{i}_out"))
        g.nodes.append(helper.make_node("Identity", [v], [f"cross_v_{i}"], name=f"cross_v_{i}_out"))
        outputs += [helper.make_tensor_value_info(f"cross_{kind}_{i}", TensorProto.FLOAT, [1, h, "n_ctx", dh])
                    for kind in ("k", "v")]
    return g.finish(
        "whisper_cross_kv",
        [helper.make_tensor_value_info("encoder_out", TensorProto.FLOAT, [1, "n_ctx", d])],
        outputs,
    )


def build_decoder(model: CT2Model) -> onnx.ModelProto:
    """One decoder step with self-attention KV cache in/out and precomputed cross K/V."""
    dims = whisper_dims(model)
    g = _Graph(model)
    d, h = dims.d_model, dims.n_heads_dec
    dh = d // h
    i64 = np.int64
    # Token embedding: the fp16 table as stored (lossless), cast after the gather of n rows.
    emb16 = g.weight("decoder/embeddings/weight", dtype="float16")
    x = g.op("Cast", [g.op("Gather", [emb16, "tokens"], hint="embed")], to=TensorProto.FLOAT)
    # Positions past..past+n-1.
    past_len = g.op("Slice", [g.op("Shape", ["past_k_0"]), g.const(np.array([2], i64)), g.const(np.array([3], i64))])
    n_new = g.op("Slice", [g.op("Shape", ["tokens"]), g.const(np.array([1], i64)), g.const(np.array([2], i64))])
    total = g.op("Add", [past_len, n_new])
    pos = g.op("Slice", [g.weight("decoder/position_encodings/encodings"), past_len, total, g.const(np.array([0], i64))],
               hint="positions")
    x = g.op("Add", [x, pos])
    # Causal mask (n, P+n): key j is visible to new token i when j <= P + i.
    zero = g.const(np.array(0, i64))
    one = g.const(np.array(1, i64))
    past_s = g.op("Squeeze", [past_len, g.const(np.array([0], i64))])
    total_s = g.op("Squeeze", [total, g.const(np.array([0], i64))])
    rows = g.op("Unsqueeze", [g.op("Range", [past_s, total_s, one]), g.const(np.array([1], i64))])
    cols = g.op("Unsqueeze", [g.op("Range", [zero, total_s, one]), g.const(np.array([0], i64))])
    mask = g.op("Where", [g.op("Greater", [cols, rows]), g.const(np.float32(-1e9)), g.const(np.float32(0.0))],
                hint="causal_mask")
    for i in range(dims.n_layers_dec):
        p = f"decoder/layer_{i}"
        a = g.layer_norm(x, f"{p}/self_attention/layer_norm")
        q, k, v = g.split_heads(g.linear(a, f"{p}/self_attention/linear_0", hint=f"dec{i}_qkv"), 3, h, dh)
        g.nodes.append(helper.make_node("Concat", [f"past_k_{i}", k], [f"present_k_{i}"], name=f"present_k_{i}", axis=2))
        g.nodes.append(helper.make_node("Concat", [f"past_v_{i}", v], [f"present_v_{i}"], name=f"present_v_{i}", axis=2))
        k, v = f"present_k_{i}", f"present_v_{i}"
        ctx = g.merge_heads(g.attend(q, k, v, dh, mask), d)
        x = g.op("Add", [x, g.linear(ctx, f"{p}/self_attention/linear_1", hint=f"dec{i}_o")], hint="residual")
        a = g.layer_norm(x, f"{p}/attention/layer_norm")
        q = g.heads(g.linear(a, f"{p}/attention/linear_0", hint=f"dec{i}_xq"), h, dh)
        ctx = g.merge_heads(g.attend(q, f"cross_k_{i}", f"cross_v_{i}", dh), d)
        x = g.op("Add", [x, g.linear(ctx, f"{p}/attention/linear_2", hint=f"dec{i}_xo")], hint="residual")
        x = g.ffn(x, f"{p}/ffn")
    x = g.op("Gather", [x, g.const(np.array(-1, i64))], axis=1)  # last token: (1, d)
    x = g.layer_norm(x, "decoder/layer_norm")
    proj = g.const(np.ascontiguousarray(model.get("decoder/projection/weight").T), "logits_w")
    g.nodes.append(helper.make_node("MatMul", [x, proj], ["logits"], name="logits_matmul"))
    L = dims.n_layers_dec
    kv = ["batch", h, "n_past", dh]
    inputs = [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "n_new"])]
    inputs += [helper.make_tensor_value_info(f"past_{kind}_{i}", TensorProto.FLOAT, kv) for i in range(L) for kind in "kv"]
    inputs += [helper.make_tensor_value_info(f"cross_{kind}_{i}", TensorProto.FLOAT, [1, h, "n_ctx", dh])
               for i in range(L) for kind in "kv"]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", dims.n_vocab])]
    outputs += [helper.make_tensor_value_info(f"present_{kind}_{i}", TensorProto.FLOAT, ["batch", h, "n_total", dh])
                for i in range(L) for kind in "kv"]
    return g.finish("whisper_decoder_step", inputs, outputs)
