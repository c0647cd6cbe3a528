"""The shared backbone: mel features and the speech-embedding network, through onnxruntime.

Two mel sources produce the same stream of 32-band frames (already ``x/10 + 2``), frame ``k``
covering samples ``[160 k, 160 k + 512)`` of the stream:

* the C front end (``edge_assistant.audio.frontend.OwwMelFrontend``), the default;
* :class:`OnnxMelFrontend`, ``melspectrogram.onnx`` driven exactly the way openWakeWord's
  ``AudioFeatures`` drives it (one call per 80 ms of audio on the last 1760 samples). It is the reference
  the C features are checked against and the peer in ``bench latency``.

The embedding network is run *fully convolutionally* and *streaming*: its time axis uses only
unpadded convolutions and three time-stride-2 max-pools, so on ``76 + 8 (k - 1)`` mel frames it yields
the ``k`` embeddings of the windows at stride 8 in one pass, bit-identical to ``k`` separate 76-frame
calls. The rewrite replaces the two layout ``Reshape`` nodes (which hard-code 76 frames) by the
equivalent ``Transpose`` nodes (:func:`fully_convolutional`) and then gives every time convolution a
2-frame cache (:func:`streaming_embedding`), so each 80 ms step computes only the new frames of each
layer: about 5x less work per step than the window model, with identical output.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edge_assistant.core.errors import ModelFileError
from edge_assistant.wakeword.manifest import shipped_manifest

log = logging.getLogger(__name__)

MEL_BANDS = 32
HOP_SAMPLES = 160
MEL_FRAME_SAMPLES = 512
WINDOW_MEL_FRAMES = 76
STEP_MEL_FRAMES = 8
STEP_SAMPLES = HOP_SAMPLES * STEP_MEL_FRAMES  # 1280 samples = 80 ms
EMBEDDING_DIM = 96
#: Value of a mel band for digital silence after ``x/10 + 2`` (10*log10(1e-10) = -100 dB).
SILENCE_MEL = -8.0


def session_options(threads: int = 1, quiet: bool = False) -> Any:
    """onnxruntime options: ``threads`` intra- and inter-op threads (1 = the benchmark setting).

    ``quiet`` silences onnxruntime's own error log (for probes whose failure is expected and handled).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = int(threads)
    so.log_severity_level = 4 if quiet else 3  # warnings about unused initialisers after our edits are noise
    # the streaming embedding and batched heads see as many shapes as chunk sizes: no pattern kept per shape
    # (see WhisperRecognizer)
    so.enable_mem_pattern = False
    return so


def open_session(model: str | Path | bytes, name: str | Path, threads: int = 1, quiet: bool = False) -> Any:
    """An onnxruntime CPU session; a missing or corrupt model raises :class:`ModelFileError` naming it."""
    import onnxruntime as ort

    if isinstance(model, (str, Path)) and not Path(model).is_file():
        raise ModelFileError(name, "not found")
    try:
        return ort.InferenceSession(
            model if isinstance(model, bytes) else str(model),
            sess_options=session_options(threads, quiet),
            providers=["CPUExecutionProvider"],
        )
    except Exception as exc:
        raise ModelFileError(name, f"onnxruntime cannot load it ({_first_line(exc)})") from exc


def load_onnx(path: str | Path) -> Any:
    """``onnx.load`` with a :class:`ModelFileError` naming the file on failure."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(p, "not found")
    try:
        return onnx.load(str(p))
    except Exception as exc:
        raise ModelFileError(p, f"not a readable ONNX model ({_first_line(exc)})") from exc


def fully_convolutional(model: Any, name: str | Path = "embedding_model.onnx") -> Any:
    """Return a copy of the embedding model whose time axis is free (see the module docstring).

    Input ``[batch, T, 32, 1]`` with ``T = 76 + 8 (k - 1)``; output ``[batch, k, 1, 96]``.
    Raises :class:`ModelFileError` when the graph is not the known speech-embedding layout.
    """
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    reshapes = [(i, n) for i, n in enumerate(g.node) if n.op_type == "Reshape"]
    if len(reshapes) != 2:
        raise ModelFileError(name, f"has {len(reshapes)} Reshape nodes; expected the 2 of the speech-embedding layout")
    (i_in, n_in), (i_out, n_out) = reshapes
    if list(inits.get(n_in.input[1], [])) != [-1, 1, WINDOW_MEL_FRAMES, MEL_BANDS + 2] or list(
        inits.get(n_out.input[1], [])
    ) != [-1, 1, 1, EMBEDDING_DIM]:
        raise ModelFileError(name, "layout Reshape nodes are not [-1,1,76,34] / [-1,1,1,96] as expected")
    # NHWC [b, T, 34, 1] -> NCHW [b, 1, T, 34]: with one channel this is what the Reshape did.
    t_in = helper.make_node("Transpose", [n_in.input[0]], list(n_in.output), name=n_in.name, perm=[0, 3, 1, 2])
    # NCHW [b, 96, k, 1] -> [b, k, 1, 96]: for k = 1 this equals the Reshape to [-1, 1, 1, 96].
    t_out = helper.make_node("Transpose", [n_out.input[0]], list(n_out.output), name=n_out.name, perm=[0, 2, 3, 1])
    g.node.remove(n_in)
    g.node.insert(i_in, t_in)
    g.node.remove(g.node[i_out])
    g.node.insert(i_out, t_out)
    for init in list(g.initializer):
        if init.name in (n_in.input[1], n_out.input[1]):
            g.initializer.remove(init)
    g.input[0].type.tensor_type.shape.dim[1].ClearField("dim_value")
    g.input[0].type.tensor_type.shape.dim[1].dim_param = "mel_frames"
    g.output[0].type.tensor_type.shape.dim[1].ClearField("dim_value")
    g.output[0].type.tensor_type.shape.dim[1].dim_param = "steps"
    return m


def embedding_model_path() -> Path:
    """The float embedding model shipped in openwakeword 0.4.0."""
    return shipped_manifest("embedding_model").path


def melspectrogram_model_path() -> Path:
    """The reference ``melspectrogram.onnx`` shipped in openwakeword 0.4.0."""
    return shipped_manifest("melspectrogram").path


def streaming_embedding(model: Any, name: str | Path = "embedding_model.onnx") -> Any:
    """The embedding model as a *stateful streaming* graph (built on :func:`fully_convolutional`).

    Before each convolution with a time kernel of 3, the graph concatenates a cached context (graph
    input ``state_in_i``, ``[1, C, 2, F]``) with its new input frames along time and returns the last 2
    frames as ``state_out_i``. The time-stride-2 max-pools need no state because every call brings a
    multiple of 8 mel frames, which keeps their pairing grid aligned.

    * With empty states (``[1, C, 0, F]``) and ``76 + 8 (k - 1)`` frames it is the fully convolutional
      model (``k`` embeddings) and returns the states that follow.
    * With states and ``8 k`` new frames it returns the next ``k`` embeddings: per 80 ms step it only
      computes the new frames of each layer (about 1/9 of a 76-frame window), bit-identical to the
      window-at-a-time model.
    """
    import onnx
    from onnx import TensorProto, helper, shape_inference

    fc = fully_convolutional(model, name)
    probe = onnx.ModelProto()
    probe.CopyFrom(fc)
    dims = probe.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value = 1
    dims[1].dim_value = WINDOW_MEL_FRAMES
    inferred = shape_inference.infer_shapes(probe)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in list(inferred.graph.value_info) + list(inferred.graph.input)
    }
    m = onnx.ModelProto()
    m.CopyFrom(fc)
    g = m.graph
    g.initializer.extend(
        [
            helper.make_tensor("state_starts", TensorProto.INT64, [1], [-2]),
            helper.make_tensor("state_ends", TensorProto.INT64, [1], [2**62]),
            helper.make_tensor("state_axes", TensorProto.INT64, [1], [2]),
        ]
    )
    nodes = list(g.node)
    rebuilt = []
    k = 0
    for node in nodes:
        if node.op_type == "Conv":
            kernel = next(a.ints for a in node.attribute if a.name == "kernel_shape")
            pads = next((list(a.ints) for a in node.attribute if a.name == "pads"), [0, 0, 0, 0])
            if pads[0] or pads[2]:
                raise ModelFileError(name, f"Conv {node.name} pads the time axis; cannot stream it")
            if kernel[0] > 1:
                if kernel[0] != 3:
                    raise ModelFileError(name, f"Conv {node.name} has time kernel {kernel[0]}; expected 1 or 3")
                src = node.input[0]
                c, f = shapes[src][1], shapes[src][3]
                s_in, s_out, cat = f"state_in_{k}", f"state_out_{k}", f"state_cat_{k}"
                g.input.append(helper.make_tensor_value_info(s_in, TensorProto.FLOAT, [1, c, f"context_{k}", f]))
                g.output.append(helper.make_tensor_value_info(s_out, TensorProto.FLOAT, [1, c, 2, f]))
                rebuilt.append(helper.make_node("Concat", [s_in, src], [cat], axis=2, name=f"state_concat_{k}"))
                rebuilt.append(
                    helper.make_node(
                        "Slice", [cat, "state_starts", "state_ends", "state_axes"], [s_out], name=f"state_slice_{k}"
                    )
                )
                node.input[0] = cat
                k += 1
        rebuilt.append(node)
    del g.node[:]
    g.node.extend(rebuilt)
    g.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    g.input[0].type.tensor_type.shape.dim[0].ClearField("dim_param")
    return m


def float_streaming_model_bytes() -> bytes:
    """The shipped float embedding model rewritten by :func:`streaming_embedding`, serialised."""
    path = embedding_model_path()
    return streaming_embedding(load_onnx(path), path).SerializeToString()


class EmbeddingBackbone:
    """Mel frames -> 96-value speech embeddings through the streaming graph, float or int8.

    ``int8_path`` selects a quantized streaming model (as written by
    :func:`edge_assistant.modelbuild.wakeword.quantize.quantize_embedding`); otherwise the shipped float model is
    rewritten in memory. The object is stateless: callers keep the :class:`State` returned by
    :meth:`start` and :meth:`step`.
    """

    def __init__(self, int8_path: str | Path | None = None, threads: int = 1) -> None:
        if int8_path is not None:
            self.path = Path(int8_path)
            if not self.path.is_file():
                raise ModelFileError(
                    self.path, "int8 embedding model not found; build it with `edge-assistant models quantize`"
                )
            self._session = open_session(self.path, self.path, threads)
        else:
            self.path = embedding_model_path()
            self._session = open_session(float_streaming_model_bytes(), self.path, threads)
        self.int8 = int8_path is not None
        inputs = self._session.get_inputs()
        if len(inputs) < 2 or len(inputs[0].shape) != 4 or inputs[0].shape[2] != MEL_BANDS:
            raise ModelFileError(self.path, "not a streaming embedding model ([1, frames, 32, 1] + state inputs)")
        self._input = inputs[0].name
        self._state_names = [i.name for i in inputs[1:]]
        self._empty = [np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32) for i in inputs[1:]]

    def _run(self, mel: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        feed = {self._input: np.ascontiguousarray(mel, dtype=np.float32)[None, :, :, None]}
        feed.update(zip(self._state_names, states, strict=True))
        out = self._session.run(None, feed)
        return out[0].reshape(-1, EMBEDDING_DIM), out[1:]

    def start(self, mel: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """From nothing: ``76 + 8 (k - 1)`` frames -> ``(k, 96)`` embeddings and the state after them."""
        frames = mel.shape[0]
        if frames < WINDOW_MEL_FRAMES or (frames - WINDOW_MEL_FRAMES) % STEP_MEL_FRAMES:
            raise ValueError(f"start() needs 76 + 8*(k-1) mel frames, got {frames}")
        return self._run(mel, self._empty)

    def step(self, mel: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Continue a stream: ``8 k`` new frames -> ``(k, 96)`` embeddings and the new state."""
        if mel.shape[0] == 0 or mel.shape[0] % STEP_MEL_FRAMES:
            raise ValueError(f"step() needs a positive multiple of 8 mel frames, got {mel.shape[0]}")
        return self._run(mel, state)

    def embed(self, mel: np.ndarray) -> np.ndarray:
        """Stateless: ``76 + 8 (k - 1)`` frames -> ``(k, 96)`` embeddings of the windows at stride 8."""
        return self.start(mel)[0]


class OnnxMelFrontend:
    """Streaming mel features from ``melspectrogram.onnx``, aligned exactly like openWakeWord.

    Every time the stream crosses a multiple of 1280 samples the model runs on the last 1760 samples
    (480 of history), giving 8 frames (5 on the first call); its per-call clamp to 80 dB below the
    call's maximum is therefore the reference's. ``process`` accepts any chunk size and returns the new
    ``(n, 32)`` frames, already ``x/10 + 2``.
    """

    HISTORY_SAMPLES = 3 * HOP_SAMPLES

    def __init__(self, threads: int = 1) -> None:
        path = melspectrogram_model_path()
        self._session = open_session(path, path, threads)
        self._input = self._session.get_inputs()[0].name
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(0, dtype=np.float32)
        self._samples = 0

    def process(self, pcm: np.ndarray) -> np.ndarray:
        x = np.asarray(pcm)
        if x.dtype != np.int16:
            raise TypeError(f"OnnxMelFrontend.process expects int16 PCM, got {x.dtype}")
        out: list[np.ndarray] = []
        pos = 0
        while pos < x.size:
            to_boundary = STEP_SAMPLES - (self._samples % STEP_SAMPLES)
            take = min(to_boundary, x.size - pos)
            self._buf = np.concatenate((self._buf, x[pos : pos + take].astype(np.float32)))
            self._samples += take
            pos += take
            if self._samples % STEP_SAMPLES == 0:
                window = self._buf[-(STEP_SAMPLES + self.HISTORY_SAMPLES) :]
                spec = self._session.run(None, {self._input: window[None, :]})[0]
                out.append(spec.reshape(-1, MEL_BANDS) / 10.0 + 2.0)
                self._buf = self._buf[-self.HISTORY_SAMPLES :]
        if not out:
            return np.zeros((0, MEL_BANDS), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)


def make_mel_frontend(kind: str, threads: int = 1) -> Any:
    """``"c"``: the C ``OwwMelFrontend``; ``"onnx"``: :class:`OnnxMelFrontend`."""
    if kind == "onnx":
        return OnnxMelFrontend(threads)
    if kind == "c":
        from edge_assistant.audio.frontend import OwwMelFrontend

        return OwwMelFrontend()
    raise ValueError(f"features must be 'c' or 'onnx', not {kind!r}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]
