"""int8 weights for the Whisper graphs with onnxruntime's dynamic quantisation.

Per-channel 8-bit weights on the weight MatMuls (nodes named ``*_matmul`` by :mod:`.export`);
activations are quantised per call (dynamic), so no calibration set is needed and nothing about the
input level is baked in. Weights are *unsigned* (uint8 with a zero point, onnxruntime's U8U8 kernels):
x86-64 CPUs with AVX2 but without VNNI (many EPYC/Xeon hosts, older laptops) multiply uint8 x int8 pairs
into saturating int16 sums, and with int8 weights the graphs drifted there (on a voiced test signal:
encoder cosine 0.981, decoder logit correlation 0.989 against float); 7-bit int8 weights
(``reduce_range``) gave 0.996 and 0.981; uint8 weights give 0.9975 and 0.998 (measured 2026-12-01 on
an AVX2 EPYC, `tests/asr/test_graphs.py`). On VNNI CPUs and on ARM (Pi, Jetson) all three are close. What stays float and why (figures in benchmarks/RESULTS.md):

* the conv front end (``conv1``/``conv2``): measured with it int8 too (ConvInteger), WER rose from
  12.1 % to 13.2 % (+7 errors on 612 words) and latency rose ~30 %, since onnxruntime has no fast
  ConvInteger kernel on x86_64;
* the attention score/context MatMuls (activation x activation): both operands change every call,
  so there is no weight to store in int8; at a few hundred frames they are a small share of the work
  (not measured separately);
* the token embedding (a gather of n rows, stored fp16 exactly as shipped: lossless);
* LayerNorm, softmax, GELU: float by construction.

The output projection (``logits_matmul``, 384 x 51864, the largest weight) IS quantised: kept float it
made the p50 latency of short clips ~1.9x longer (it is most of each decoder step) for the same WER
(12.25 % float vs 12.09 % int8, one error apart). ``keep_float`` excludes named nodes to re-measure.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

import onnx

log = logging.getLogger(__name__)


def weight_matmul_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the MatMul nodes whose second input is an initialiser (a weight)."""
    inits = {t.name for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in inits]


def quantize_int8(model: onnx.ModelProto, out_path: str | Path, keep_float: Iterable[str] = ()) -> list[str]:
    """Write the int8 version of ``model`` to ``out_path``; return the quantised node names."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = set(keep_float)
    nodes = [n for n in weight_matmul_nodes(model) if n not in keep]
    out_path = Path(out_path)
    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory(dir=out_path.parent) as tmp:
        src = Path(tmp) / "float.onnx"
        onnx.save(model, src)
        # onnxruntime.quantization logs advice and per-tensor notes on the root logger: keep them out.
        root.setLevel(max(level, logging.ERROR))
        try:
            quantize_dynamic(
                src,
                out_path,
                op_types_to_quantize=["MatMul"],
                nodes_to_quantize=nodes,
                per_channel=True,
                reduce_range=False,
                weight_type=QuantType.QUInt8,  # U8U8: no int16 saturation on AVX2 without VNNI
            )
        finally:
            root.setLevel(level)
    log.info("%s: %d weight MatMuls int8, %d kept float", out_path.name, len(nodes), len(keep))
    return nodes
