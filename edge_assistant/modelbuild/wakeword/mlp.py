"""Wake-word heads as numpy MLPs (build time only): read and write the ONNX form the engine loads, train.

The form is openWakeWord's: ``Flatten -> (Gemm -> Relu)* -> Gemm -> Sigmoid``, input ``[1, window, 96]``
embeddings, output ``[1, 1]`` score. :func:`write_mlp_head` puts new weights into an existing head's graph
(a copy of a shipped head); :func:`write_new_mlp_head` writes a graph of that form from nothing. Training is
Adam on weighted binary cross-entropy with an L2 pull towards an anchor (a teacher's weights, or zero);
several heads merge into one of the same form whose logit is their mean (:func:`mean_logit_head`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_assistant.core.errors import ModelFileError

EMBEDDING_DIM = 96
#: ONNX opset of the written graphs (the shipped heads' own).
OPSET = 13


@dataclass
class MlpHead:
    """An openWakeWord-style head: Flatten -> (Gemm -> Relu)* -> Gemm -> Sigmoid, weights as (in, out)."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def copy(self) -> MlpHead:
        return MlpHead([w.copy() for w in self.weights], [b.copy() for b in self.biases])

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = x.reshape(len(x), -1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0]

    def scores(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(x)))


def init_mlp_head(inputs: int, hidden: tuple[int, ...], seed: int) -> MlpHead:
    """A new head: He-initialised hidden layers, a small last layer, zero biases (seeded)."""
    rng = np.random.default_rng([seed, 0x1417])
    sizes = (inputs, *hidden, 1)
    weights = [rng.normal(0.0, np.sqrt(2.0 / a), (a, b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    weights[-1] *= 0.1
    return MlpHead(weights, [np.zeros(b) for b in sizes[1:]])


def read_mlp_head(path: str | Path) -> MlpHead:
    """The weights of a single-output MLP head ONNX; :class:`ModelFileError` for any other graph."""
    import onnx
    from onnx import numpy_helper

    p = Path(path)
    try:
        model = onnx.load(str(p))
    except Exception as exc:
        raise ModelFileError(p, f"not a readable ONNX model ({exc})") from exc
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    ops = [n.op_type for n in model.graph.node]
    expect = "Flatten, then Gemm/Relu pairs, a last Gemm with one output and a Sigmoid"
    if len(ops) < 3 or ops[0] != "Flatten" or ops[-1] != "Sigmoid" or ops[-2] != "Gemm" or any(
        op not in ("Gemm", "Relu") for op in ops[1:-1]
    ):
        raise ModelFileError(p, f"graph is {' -> '.join(ops)}; adaptation needs {expect}")
    weights, biases = [], []
    for node in model.graph.node:
        if node.op_type != "Gemm":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            raise ModelFileError(p, f"Gemm {node.name or node.output[0]} has alpha/beta/transA; expected a plain layer")
        if len(node.input) < 3 or node.input[1] not in init or node.input[2] not in init:
            raise ModelFileError(p, f"Gemm {node.name or node.output[0]} has no constant weight and bias")
        w = np.asarray(init[node.input[1]], np.float64)
        weights.append(w.T.copy() if attrs.get("transB", 0) else w.copy())
        biases.append(np.asarray(init[node.input[2]], np.float64).reshape(-1).copy())
    if weights[-1].shape[1] != 1:
        raise ModelFileError(p, f"last layer has {weights[-1].shape[1]} outputs; adaptation needs {expect}")
    return MlpHead(weights, biases)


def _save(model: object, out_path: str | Path) -> None:
    import onnx

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.tmp")
    onnx.save(model, str(tmp))  # type: ignore[arg-type]
    os.replace(tmp, out)


def write_mlp_head(head: MlpHead, teacher_path: str | Path, out_path: str | Path,
                   doc: str = "noise-adapted wake-word head (edge_assistant.wakeword.adapt)") -> None:
    """Write ``head`` as a copy of the teacher's ONNX graph with the weights replaced.

    The default ``doc`` keeps the module's name from before it moved to ``modelbuild``: it is written into
    the file, and heads built before and after the move stay byte-identical.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(teacher_path))
    names: dict[str, np.ndarray] = {}
    layer = 0
    for node in model.graph.node:
        if node.op_type != "Gemm":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w = head.weights[layer]
        names[node.input[1]] = w.T if attrs.get("transB", 0) else w
        names[node.input[2]] = head.biases[layer]
        layer += 1
    for t in model.graph.initializer:
        if t.name in names:
            t.CopyFrom(numpy_helper.from_array(np.asarray(names[t.name], np.float32), t.name))
    model.doc_string = doc
    _save(model, out_path)


def write_new_mlp_head(head: MlpHead, window: int, out_path: str | Path, doc: str) -> None:
    """Write ``head`` as a new ONNX graph of the shipped heads' form (``[1, window, 96]`` -> ``[1, 1]``)."""
    from onnx import TensorProto, helper, numpy_helper

    if head.weights[0].shape[0] != window * EMBEDDING_DIM:
        raise ValueError(f"first layer takes {head.weights[0].shape[0]} values; a window of {window} has "
                         f"{window * EMBEDDING_DIM}")
    nodes = [helper.make_node("Flatten", ["embeddings"], ["h0"], axis=1)]
    inits = []
    last = len(head.weights) - 1
    for i, (w, b) in enumerate(zip(head.weights, head.biases, strict=True)):
        inits += [numpy_helper.from_array(np.asarray(w.T, np.float32), f"layer{i}.weight"),
                  numpy_helper.from_array(np.asarray(b, np.float32), f"layer{i}.bias")]
        out = "logit" if i == last else f"g{i}"
        nodes.append(helper.make_node("Gemm", [f"h{i}", f"layer{i}.weight", f"layer{i}.bias"], [out], transB=1))
        if i < last:
            nodes.append(helper.make_node("Relu", [out], [f"h{i + 1}"]))
    nodes.append(helper.make_node("Sigmoid", ["logit"], ["score"]))
    graph = helper.make_graph(
        nodes, "wake_head", [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, [1, window, EMBEDDING_DIM])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edge-assistant",
                              doc_string=doc)
    model.ir_version = 7  # what onnxruntime builds of the last years all read, as the shipped heads
    _save(model, out_path)


# -- training ------------------------------------------------------------------------------------------------
def bce(head: MlpHead, x: np.ndarray, t: np.ndarray, w: np.ndarray) -> float:
    """Weighted binary cross-entropy of ``head`` on windows ``x`` against soft targets ``t``."""
    z = head.logits(x)
    # log(sigmoid(z)) and log(1 - sigmoid(z)) without overflow
    ls, l1s = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
    return float(-(w * (t * ls + (1 - t) * l1s)).sum() / w.sum())


def gradients(head: MlpHead, x: np.ndarray, t: np.ndarray, w: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Gradients of :func:`bce` with respect to every weight and bias."""
    acts = [x]
    h = x
    for i, (wt, b) in enumerate(zip(head.weights, head.biases, strict=True)):
        h = h @ wt + b
        if i < len(head.weights) - 1:
            h = np.maximum(h, 0.0)
        acts.append(h)
    p = 1.0 / (1.0 + np.exp(-acts[-1][:, 0]))
    d = ((p - t) * w / w.sum())[:, None]
    gw: list[np.ndarray] = [np.empty(0)] * len(head.weights)
    gb: list[np.ndarray] = [np.empty(0)] * len(head.weights)
    for i in range(len(head.weights) - 1, -1, -1):
        gw[i] = acts[i].T @ d
        gb[i] = d.sum(axis=0)
        if i:
            d = (d @ head.weights[i].T) * (acts[i] > 0)
    return gw, gb


def fit_adam(
    head: MlpHead, x: np.ndarray, t: np.ndarray, w: np.ndarray, *, epochs: int, learning_rate: float,
    batch_size: int, rng: np.random.Generator, l2: float = 0.0, anchor: MlpHead | None = None,
    progress: Callable[[int, int], None] | None = None, rows: np.ndarray | None = None,
) -> MlpHead:
    """Train ``head`` in place (and return it): Adam on :func:`bce` over shuffled batches, plus
    ``l2 * (param - anchor)`` (anchor ``None``: zero, plain weight decay). ``x`` rows are flat windows.
    ``rows``: train on ``x[rows]``, ``t[rows]`` and ``w[rows]`` without copying ``x`` (the same batches and the
    same result as passing those copies)."""
    params = head.weights + head.biases
    pull = [p.copy() for p in (anchor.weights + anchor.biases)] if anchor is not None else [0.0] * len(params)
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    k = 0
    if rows is not None:
        t, w = t[rows], w[rows]
    for epoch in range(epochs):
        order = rng.permutation(len(t))
        for start in range(0, len(order), batch_size):
            j = order[start : start + batch_size]
            gw, gb = gradients(head, x[j if rows is None else rows[j]], t[j], w[j])
            k += 1
            for i, g in enumerate(gw + gb):
                g = g + l2 * (params[i] - pull[i])
                m1[i] = 0.9 * m1[i] + 0.1 * g
                m2[i] = 0.999 * m2[i] + 0.001 * g * g
                params[i] -= learning_rate * (m1[i] / (1 - 0.9**k)) / (np.sqrt(m2[i] / (1 - 0.999**k)) + 1e-8)
        if progress:
            progress(epoch + 1, epochs)
    return head


def mean_logit_head(heads: list[MlpHead]) -> MlpHead:
    """One MLP whose logit is the mean of ``heads``' logits (same depth; layers side by side, block-diagonal)."""
    depth = len(heads[0].weights)
    if any(len(h.weights) != depth for h in heads):
        raise ValueError("heads of different depth cannot be merged")
    weights, biases = [], []
    for layer in range(depth):
        ws = [h.weights[layer] for h in heads]
        if layer == 0:
            w = np.concatenate(ws, axis=1)
        elif layer == depth - 1:
            w = np.concatenate([x / len(heads) for x in ws], axis=0)
        else:
            w = np.zeros((sum(x.shape[0] for x in ws), sum(x.shape[1] for x in ws)))
            r = c = 0
            for x in ws:
                w[r : r + x.shape[0], c : c + x.shape[1]] = x
                r, c = r + x.shape[0], c + x.shape[1]
        weights.append(w)
        if layer == depth - 1:
            biases.append(np.mean([h.biases[layer] for h in heads], axis=0))
        else:
            biases.append(np.concatenate([h.biases[layer] for h in heads]))
    return MlpHead(weights, biases)


def bags(groups: np.ndarray, count: int, fraction: float, rng: np.random.Generator) -> list[np.ndarray | None]:
    """Per ensemble member, a row mask over ``groups`` (one utterance id per row) holding a seeded
    ``fraction`` of the groups; ``None`` = all rows (one member, or a fraction of 1)."""
    if count == 1 or fraction >= 1.0:
        return [None] * count
    ids = np.unique(groups)
    out: list[np.ndarray | None] = []
    for _ in range(count):
        chosen = rng.choice(ids, size=max(1, int(round(fraction * len(ids)))), replace=False)
        out.append(np.isin(groups, chosen))
    return out
