"""Wake-word heads: a window of speech embeddings -> one score per label.

Heads are loaded from their manifest (:mod:`edge_assistant.wakeword.manifest`). Most openWakeWord heads
declare a batch size of 1 although their graph is batch-agnostic; when the batch dimension can be freed
(checked at load time against single-window runs, bit for bit) several 80 ms steps are scored in one call,
otherwise the head is run once per step.
"""

from __future__ import annotations

import logging

import numpy as np

from edge_assistant.core.errors import ModelFileError
from edge_assistant.wakeword.backbone import EMBEDDING_DIM, load_onnx, open_session
from edge_assistant.wakeword.manifest import HEAD_TYPE, ModelManifest

log = logging.getLogger(__name__)


class HeadModel:
    """One head: ``score(windows)`` with ``windows`` ``(k, window_embeddings, 96)`` -> ``(k, len(labels))``."""

    def __init__(self, manifest: ModelManifest, threads: int = 1) -> None:
        if manifest.type != HEAD_TYPE:
            raise ModelFileError(manifest.path, f"manifest type {manifest.type!r}; expected {HEAD_TYPE!r}")
        self.manifest = manifest
        self.name = manifest.name
        self.window = int(manifest.window_embeddings)
        self.label_indices = np.array(sorted(manifest.labels), dtype=np.intp)
        self.labels = [manifest.labels[i] for i in sorted(manifest.labels)]
        model = load_onnx(manifest.path)
        self._single = open_session(model.SerializeToString(), manifest.path, threads)
        inp = self._single.get_inputs()[0]
        out = self._single.get_outputs()[0]
        if len(inp.shape) != 3 or inp.shape[1] != self.window or inp.shape[2] != EMBEDDING_DIM:
            raise ModelFileError(
                manifest.path, f"input shape {inp.shape}; expected [1, {self.window}, {EMBEDDING_DIM}] per its manifest"
            )
        n_out = out.shape[1] if len(out.shape) == 2 and isinstance(out.shape[1], int) else None
        if n_out is None or int(self.label_indices.max()) >= n_out:
            raise ModelFileError(manifest.path, f"output shape {out.shape}; manifest labels need {self.label_indices.max() + 1} outputs")
        self._input = inp.name
        self._batched = self._try_batched(model, threads)

    def _try_batched(self, model: object, threads: int) -> object | None:
        import onnx

        m = onnx.ModelProto()
        m.CopyFrom(model)  # type: ignore[arg-type]
        for value in (m.graph.input[0], m.graph.output[0]):
            dim = value.type.tensor_type.shape.dim[0]
            dim.ClearField("dim_value")
            dim.dim_param = "batch"
        try:
            sess = open_session(m.SerializeToString(), self.manifest.path, threads, quiet=True)
            probe = np.random.default_rng(0).standard_normal((3, self.window, EMBEDDING_DIM)).astype(np.float32)
            got = sess.run(None, {self._input: probe})[0]
            want = np.concatenate([self._single.run(None, {self._input: probe[i : i + 1]})[0] for i in range(3)])
            if got.shape == want.shape and np.array_equal(got, want):
                return sess
        except Exception as exc:  # a graph that needs batch 1 (e.g. an If on a scalar) stays unbatched
            log.debug("head %s cannot be batched: %s", self.name, exc)
        log.debug("head %s runs one window per call", self.name)
        return None

    def score(self, windows: np.ndarray) -> np.ndarray:
        """Scores ``(k, len(labels))`` for ``k`` windows of embeddings."""
        x = np.ascontiguousarray(windows, dtype=np.float32)
        if x.shape[0] == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if self._batched is not None and x.shape[0] > 1:
            out = self._batched.run(None, {self._input: x})[0]  # type: ignore[attr-defined]
        else:
            out = np.concatenate([self._single.run(None, {self._input: x[i : i + 1]})[0] for i in range(x.shape[0])])
        return np.asarray(out, dtype=np.float32)[:, self.label_indices]
