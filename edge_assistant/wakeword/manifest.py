"""Model manifests: every model file travels with a small JSON description, and loaders dispatch on it.

A manifest says what a model is (``type``), what it expects (sample rate, frame size, window) and under
which licence it may be used. The shipped ones live in ``edge_assistant/wakeword/manifests/*.json`` and
point at the ONNX files inside the ``openwakeword==0.4.0`` wheel. For a user's head ``foo.onnx`` the
manifest is ``foo.json`` beside it when present, otherwise it is derived from the ONNX input/output shapes.

Types:

``oww-head``
    a wake-word head: input ``[batch, window_embeddings, 96]`` embeddings, output ``[batch, n_outputs]``
    scores in [0, 1]; ``labels`` maps output index -> reported name (outputs not listed are ignored,
    e.g. the background class 0 of a multi-class head). Optional: ``verifier`` (``"whisper"``: a second
    stage confirms each detection, :mod:`edge_assistant.wakeword.verifier`; ``"off"`` or absent: none)
    and ``phrase`` (what the verifier listens for; default: the label with ``_`` read as a space);
    ``verified_threshold`` and ``verified_patience_frames``: the operating point while a verifier runs (the
    head then only proposes, so it may fire more readily; absent: ``threshold`` and ``patience_frames``).
``oww-embedding``
    the shared backbone: ``[batch, 76, 32, 1]`` mel window -> ``[batch, 1, 1, 96]``.
``oww-melspectrogram``
    the reference log-mel model: ``[batch, samples]`` -> ``[frames, 1, 1, 32]`` (dB).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from edge_assistant.core.errors import ModelFileError
from edge_assistant.core.paths import model_cache_dir, openwakeword_model_dir

log = logging.getLogger(__name__)

#: Second-stage verifiers a head's manifest may name (:mod:`edge_assistant.wakeword.verifier`).
VERIFIERS = ("whisper",)

HEAD_TYPE = "oww-head"
EMBEDDING_TYPE = "oww-embedding"
MELSPEC_TYPE = "oww-melspectrogram"
KNOWN_TYPES = (HEAD_TYPE, EMBEDDING_TYPE, MELSPEC_TYPE)
#: Heads shipped by openwakeword 0.4.0 and described by our manifests.
SHIPPED_HEADS: tuple[str, ...] = ("alexa", "hey_jarvis", "hey_mycroft", "hey_marvin", "timer", "weather")
EMBEDDING_DIM = 96
SAMPLE_RATE_HZ = 16000
FRAME_SAMPLES = 1280


@dataclass(frozen=True)
class ModelManifest:
    """What one model file is and expects. ``path`` is the resolved ONNX file."""

    name: str
    type: str
    path: Path
    sample_rate_hz: int = SAMPLE_RATE_HZ
    frame_samples: int = FRAME_SAMPLES  # audio samples per model step (80 ms for the heads)
    window_embeddings: int = 0  # heads: embeddings per input window
    embedding_dim: int = EMBEDDING_DIM
    labels: dict[int, str] = field(default_factory=dict)  # heads: output index -> label
    threshold: float = 0.5  # heads: default detection threshold on the score
    patience_frames: int = 1  # heads: default consecutive steps at/above the threshold before an event
    noise_suppression: bool = False  # heads: trained to run behind the C noise suppressor
    verifier: str | None = None  # heads: second stage that confirms proposals ("whisper"); None = none
    # heads: the operating point while a verifier confirms each proposal (a lower threshold: the verifier turns
    # the extra near-misses down); None = the head-alone point above
    verified_threshold: float | None = None
    verified_patience_frames: int | None = None
    phrase: str = ""  # heads: the spoken wake phrase the verifier listens for; "" = the label, "_" as space
    licence: str = "unknown"
    description: str = ""
    source: str = "derived"  # "shipped", "json" (beside the .onnx) or "derived" (from the ONNX shapes)

    @property
    def is_head(self) -> bool:
        return self.type == HEAD_TYPE


def _manifest_dir() -> Path:
    return Path(str(resources.files("edge_assistant.wakeword") / "manifests"))


def adapted_manifest_path(name: str) -> Path | None:
    """The manifest of a head built into the model cache (``alexa_car``: ``models adapt``), if any."""
    if not name or "/" in name or name in SHIPPED_HEADS:
        return None
    path = model_cache_dir() / "wakeword" / "heads" / f"{name}.json"
    return path if path.is_file() else None


def shipped_manifest(name: str) -> ModelManifest:
    """The manifest of a shipped model (``alexa``, ``timer``, ``embedding_model``, ...)."""
    path = _manifest_dir() / f"{name}.json"
    if not path.is_file():
        known = ", ".join(SHIPPED_HEADS)
        raise ModelFileError(
            name,
            f"no shipped model of that name; expected one of {known}, a head built into the model cache "
            "(e.g. alexa_car: `edge-assistant models adapt alexa`) or a path to a .onnx head",
        )
    data = _read_json(path)
    model_path = openwakeword_model_dir() / str(data.get("file", ""))
    return _from_dict(data, model_path, path, source="shipped")


def load_manifest(name_or_path: str | Path) -> ModelManifest:
    """Resolve a shipped head name or a ``.onnx``/``.json`` path to its manifest.

    Raises :class:`ModelFileError` naming the file when it is missing, not ONNX, or of the wrong shape.
    """
    try:
        return _load_manifest(name_or_path)
    except OSError as exc:  # a name too long for the file system (ENAMETOOLONG), a folder without access...
        raise ModelFileError(str(name_or_path)[:200], f"cannot look it up: {exc.strerror or exc}; expected a "
                                                      "shipped name or a path to a .onnx/.json file") from exc


def _load_manifest(name_or_path: str | Path) -> ModelManifest:
    text = str(name_or_path)
    p = Path(text)
    if p.suffix.lower() not in (".onnx", ".json") and not p.exists():
        adapted = adapted_manifest_path(text)
        if adapted is None:
            return shipped_manifest(text)
        p = adapted  # a head built into the model cache: read like any manifest file
    if p.suffix.lower() == ".json":
        if not p.is_file():
            raise ModelFileError(p, "manifest not found")
        data = _read_json(p)
        return _from_dict(data, (p.parent / str(data.get("file", p.stem + ".onnx"))), p, source="json")
    if not p.is_file():
        raise ModelFileError(p, "not found (expected an ONNX wake-word head or a shipped name such as 'alexa')")
    beside = p.with_suffix(".json")
    if beside.is_file():
        return _from_dict(_read_json(beside), p, beside, source="json")
    return derive_manifest(p)


def derive_manifest(path: str | Path) -> ModelManifest:
    """Build a head manifest from an ONNX file's input/output shapes (``[1, N, 96]`` -> ``[1, K]``)."""
    import onnx

    p = Path(path)
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:
        raise ModelFileError(p, f"not a readable ONNX model ({_first_line(exc)})") from exc
    if len(model.graph.input) < 1 or len(model.graph.output) < 1:
        raise ModelFileError(p, "has no input or output; expected a head [1, N, 96] -> [1, K]")
    inp = [d.dim_value if d.HasField("dim_value") else None for d in model.graph.input[0].type.tensor_type.shape.dim]
    out = [d.dim_value if d.HasField("dim_value") else None for d in model.graph.output[0].type.tensor_type.shape.dim]
    if len(inp) != 3 or inp[2] != EMBEDDING_DIM or not inp[1]:
        raise ModelFileError(
            p, f"input shape {_shape(inp)}; expected [batch, N, {EMBEDDING_DIM}] speech embeddings (an openWakeWord-style head)"
        )
    if len(out) != 2 or not out[1]:
        raise ModelFileError(p, f"output shape {_shape(out)}; expected [batch, K] scores")
    n_out = int(out[1])
    labels = _labels_from_output_name(model.graph.output[0].name, n_out)
    if labels is None:
        labels = {0: p.stem} if n_out == 1 else {i: f"{p.stem}:{i}" for i in range(n_out)}
    return ModelManifest(
        name=p.stem,
        type=HEAD_TYPE,
        path=p,
        window_embeddings=int(inp[1]),
        labels=labels,
        threshold=0.5,
        licence="unknown (user model)",
        description=f"user head derived from {p.name}: {inp[1]} embeddings -> {n_out} output(s)",
        source="derived",
    )


def _labels_from_output_name(name: str, n_out: int) -> dict[int, str] | None:
    """openWakeWord multi-class heads name their output with a JSON ``{"index": "label"}`` map."""
    if not name.startswith("{"):
        return None
    try:
        raw = json.loads(name)
        labels = {int(k): str(v) for k, v in raw.items()}
    except (ValueError, AttributeError):
        return None
    return labels if labels and all(0 <= k < n_out for k in labels) else None


def _from_dict(data: dict[str, Any], model_path: Path, manifest_path: Path, source: str) -> ModelManifest:
    def need(key: str) -> Any:
        if key not in data:
            raise ModelFileError(manifest_path, f"key {key!r} is missing")
        return data[key]

    file = data.get("file")
    if file is not None and not _inside_folder(file):
        raise ModelFileError(manifest_path, f"key 'file' is {file!r}; expected a file name inside the manifest's "
                                            "folder (not an absolute path, no '..')")
    mtype = need("type")
    if mtype not in KNOWN_TYPES:
        raise ModelFileError(manifest_path, f"key 'type' is {mtype!r}; expected one of {', '.join(KNOWN_TYPES)}")
    labels: dict[int, str] = {}
    verifier = data.get("verifier")
    if verifier is not None and verifier not in ("off", *VERIFIERS):
        raise ModelFileError(manifest_path, f"key 'verifier' is {verifier!r}; expected 'off' or one of "
                                            f"{', '.join(VERIFIERS)}")
    phrase = data.get("phrase", "")
    if not isinstance(phrase, str) or any(ord(c) < 0x20 for c in phrase):
        raise ModelFileError(manifest_path, f"key 'phrase' is {phrase!r}; expected the spoken wake phrase as text")
    verified = {}
    for key, ok, expected in (("verified_threshold", lambda v: 0.0 < float(v) <= 1.0, "a score in (0, 1]"),
                              ("verified_patience_frames", lambda v: int(v) == v and 1 <= int(v) <= 10,
                               "an integer 1 .. 10")):
        value = data.get(key)
        if value is None:
            continue
        try:
            good = not isinstance(value, bool) and ok(value)
        except (TypeError, ValueError, OverflowError):
            good = False
        if not good:
            raise ModelFileError(manifest_path, f"key {key!r} is {value!r}; expected {expected}")
        verified[key] = float(value) if key == "verified_threshold" else int(value)
    if mtype == HEAD_TYPE:
        try:
            labels = {int(k): str(v) for k, v in dict(need("labels")).items()}
        except (TypeError, ValueError) as exc:
            raise ModelFileError(manifest_path, "key 'labels' must map output indices to names") from exc
        if not labels:
            raise ModelFileError(manifest_path, "key 'labels' is empty; expected at least one output")
    try:
        return ModelManifest(
            name=str(need("name")),
            type=mtype,
            path=Path(model_path),
            sample_rate_hz=int(data.get("sample_rate_hz", SAMPLE_RATE_HZ)),
            frame_samples=int(data.get("frame_samples", FRAME_SAMPLES)),
            window_embeddings=int(data.get("window_embeddings", 0)),
            embedding_dim=int(data.get("embedding_dim", EMBEDDING_DIM)),
            labels=labels,
            threshold=float(data.get("threshold", 0.5)),
            patience_frames=int(data.get("patience_frames", 1)),
            noise_suppression=bool(data.get("noise_suppression", False)),
            verifier=None if verifier in (None, "off") else str(verifier),
            **verified,
            phrase=phrase.strip(),
            licence=str(data.get("licence", "unknown")),
            description=str(data.get("description", "")),
            source=source,
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelFileError(manifest_path, f"bad value: {exc}") from exc


def _inside_folder(file: object) -> bool:
    """True for a relative path that stays inside its folder: not absolute, no '..', no NUL byte."""
    if not isinstance(file, str) or "\x00" in file:
        return False
    p = Path(file)
    return bool(p.parts) and not p.is_absolute() and ".." not in p.parts


def manifest_to_dict(m: ModelManifest) -> dict[str, Any]:
    """JSON-ready form (as written by ``derive`` for a user head)."""
    return {
        "name": m.name,
        "type": m.type,
        "file": m.path.name,
        "sample_rate_hz": m.sample_rate_hz,
        "frame_samples": m.frame_samples,
        "window_embeddings": m.window_embeddings,
        "embedding_dim": m.embedding_dim,
        "labels": {str(k): v for k, v in sorted(m.labels.items())},
        "threshold": m.threshold,
        "patience_frames": m.patience_frames,
        "noise_suppression": m.noise_suppression,
        **({"verifier": m.verifier} if m.verifier else {}),
        **({"verified_threshold": m.verified_threshold} if m.verified_threshold is not None else {}),
        **({"verified_patience_frames": m.verified_patience_frames} if m.verified_patience_frames is not None else {}),
        **({"phrase": m.phrase} if m.phrase else {}),
        "licence": m.licence,
        "description": m.description,
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError includes UnicodeDecodeError
        raise ModelFileError(path, f"manifest is not valid JSON ({_first_line(exc)})") from exc
    if not isinstance(data, dict):
        raise ModelFileError(path, "manifest must be a JSON object")
    return data


def _shape(dims: list[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]
