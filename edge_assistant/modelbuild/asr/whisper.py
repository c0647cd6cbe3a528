"""Build the ASR model cache: convert + quantise Whisper once, with a manifest of SHA-256 checksums.

The layout and the checks live in :mod:`edge_assistant.asr.model_cache` (run time); this is the build.
A build is written into a temporary sibling directory and renamed into place, so a crash never leaves a
half-written model set. :func:`build_whisper` skips the work when the cache is up to date
(:func:`~edge_assistant.asr.model_cache.is_up_to_date`).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

from edge_assistant.asr.model_cache import (
    MANIFEST,
    MODEL_NAME,
    graph_file,
    is_up_to_date,
    source_fingerprint,
    whisper_dir,
)
from edge_assistant.core.build_record import environment, file_entry
from edge_assistant.core.paths import whisper_package_dir

log = logging.getLogger(__name__)


def build_whisper(cache_root: Path | None = None, force: bool = False, progress=None) -> tuple[Path, bool]:
    """Convert + quantise into the cache; return (directory, built). ``built`` is False when skipped.

    ``progress(step_name)`` is called before each step (the CLI drives a progress bar with it).
    """
    import onnx
    import onnxruntime

    from edge_assistant import __version__
    from edge_assistant.modelbuild.asr.ct2 import read_ct2_model
    from edge_assistant.modelbuild.asr.export import (
        build_cross_kv,
        build_decoder,
        build_encoder,
        whisper_dims,
    )
    from edge_assistant.modelbuild.asr.quantize import quantize_int8

    source_dir = whisper_package_dir()
    fingerprint = source_fingerprint(source_dir)
    directory = whisper_dir(cache_root)
    if not force and is_up_to_date(cache_root, fingerprint):
        log.info("%s is up to date", directory)
        return directory, False
    t0 = time.perf_counter()
    step = progress or (lambda name: None)
    step("read model.bin")
    model = read_ct2_model(source_dir / "model.bin")
    dims = whisper_dims(model)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.", dir=directory.parent))
    try:
        quantized: dict[str, list[str]] = {}
        for name, builder in (("encoder", build_encoder), ("cross_kv", build_cross_kv), ("decoder", build_decoder)):
            step(f"export {name}")
            graph = builder(model)
            onnx.save(graph, tmp / graph_file(name, False))
            step(f"quantise {name}")
            quantized[name] = quantize_int8(graph, tmp / graph_file(name, True))
            del graph
        for name in ("tokenizer.json", "config.json"):
            shutil.copyfile(source_dir / name, tmp / name)
        step("checksums")
        files = {p.name: file_entry(p) for p in sorted(tmp.iterdir())}
        manifest = {
            "format": 1,
            "name": MODEL_NAME,
            "type": "whisper-onnx",
            "licence": "MIT (OpenAI Whisper weights, via Systran/faster-whisper-tiny.en)",
            "sample_rate_hz": 16000,
            "source": fingerprint,
            "built_by": {"edge_assistant": __version__, "onnx": onnx.__version__,
                         "onnxruntime": onnxruntime.__version__},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "environment": environment(),
            "build_seconds": round(time.perf_counter() - t0, 1),
            "dims": dims.__dict__,
            "int8_nodes": quantized,
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("built %s in %.1f s", directory, time.perf_counter() - t0)
    return directory, True
