"""The wake-word files built into the model cache: where they live and ``models verify`` for them.

Two kinds of file are built (by the build tools in :mod:`edge_assistant.modelbuild`, which the device
does not have) and loaded here at run time:

* the int8 streaming embedding, ``<cache>/wakeword/embedding_model.int8.onnx`` (+ ``.json`` manifest);
* adapted heads, ``<cache>/wakeword/heads/<head>_car.onnx`` (+ ``.json`` manifest).

Verification needs nothing from the build side: every file's size and SHA-256 against its manifest, and
for the int8 embedding the recorded inputs (source model, recipe, onnxruntime, calibration speech when
its folders are still there). Re-deriving an adapted head's inputs needs the build tools (its word lists
come from the ``build`` extra); the caller passes that step in, and without it the inputs are reported
as unchecked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edge_assistant.core.build_record import file_problem, input_changes, sha256_file
from edge_assistant.core.errors import ConfigError
from edge_assistant.core.paths import model_cache_dir

INT8_FILENAME = "embedding_model.int8.onnx"
#: The int8 embedding's recipe (modelbuild.wakeword.quantize); bumped when it changes, so models built
#: by an older recipe show as stale and are rebuilt.
INT8_RECIPE_VERSION = 3
#: Name suffix of a head adapted to car noise (``alexa`` -> ``alexa_car``).
ADAPTED_SUFFIX = "_car"


def default_int8_path(cache_dir: str | Path | None = None) -> Path:
    """Where the int8 embedding model lives in the model cache."""
    return Path(cache_dir or model_cache_dir()) / "wakeword" / INT8_FILENAME


def adapted_dir(cache_dir: str | Path | None = None) -> Path:
    """Where adapted heads live: ``<model cache>/wakeword/heads``."""
    return Path(cache_dir or model_cache_dir()) / "wakeword" / "heads"


def files_digest(files: Sequence[Path]) -> str:
    """One SHA-256 over the calibration files' names and contents, in the (sorted) order given."""
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.name}\0{sha256_file(p)}\n".encode())
    return h.hexdigest()


def ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def check_int8(cache_dir: str | Path | None = None) -> dict[str, Any] | None:
    """``models verify`` for the int8 embedding: the file against its manifest, the inputs against now.

    None when no int8 embedding was built. The calibration speech is re-read when its folders are still
    where the build found them; otherwise that input is reported as unchecked.
    """
    from edge_assistant.audio.io import iter_audio_files
    from edge_assistant.wakeword.backbone import embedding_model_path

    out_path = default_int8_path(cache_dir)
    manifest_path = out_path.with_suffix(".json")
    if not manifest_path.is_file() and not out_path.is_file():
        return None
    res: dict[str, Any] = {"artifact": "embedding_model_int8", "path": str(out_path), "files": 1, "corrupt": [],
                           "stale": [], "unchecked": []}
    try:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        key = dict(old["key"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        res["corrupt"].append(f"{manifest_path}: unreadable manifest ({exc})")
        res["ok"] = False
        return res
    problem = file_problem(out_path, {"sha256": old.get("sha256")})
    if problem:
        res["corrupt"].append(problem)
    now = dict(key, recipe=INT8_RECIPE_VERSION, source_sha256=sha256_file(embedding_model_path()),
               onnxruntime=ort_version())
    dirs = [Path(d) for d in old.get("calibration_dirs", [])]
    if key.get("calibration_steps") and dirs and all(d.exists() for d in dirs):
        now["calibration_sha256"] = files_digest(sorted(iter_audio_files(dirs)))
    elif key.get("calibration_steps"):
        res["unchecked"].append("calibration speech: its folders are not here; not re-read")
    res["stale"] = input_changes(key, now)
    res["ok"] = not res["corrupt"] and not res["stale"]
    return res


def check_adapted(cache_dir: str | Path | None = None,
                  inputs_now: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """``models verify`` for every adapted head in the cache: its files against the manifest, and the
    inputs recorded there against what is installed now.

    ``inputs_now(recorded_inputs)`` re-derives the inputs from the build tools
    (:func:`edge_assistant.modelbuild.wakeword.adapt.current_inputs`); it raises :class:`ConfigError` when
    they cannot be derived here and ``KeyError``/``TypeError``/``ValueError`` for a record written by an
    older build. None (no build tools, e.g. on the device): the inputs are reported as unchecked.
    """
    out = []
    for json_path in sorted(adapted_dir(cache_dir).glob(f"*{ADAPTED_SUFFIX}.json")):
        res: dict[str, Any] = {"artifact": json_path.stem, "path": str(json_path.with_suffix(".onnx")), "files": 0,
                               "corrupt": [], "stale": [], "unchecked": []}
        out.append(res)
        try:
            manifest = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            res["corrupt"].append(f"{json_path}: unreadable manifest ({exc})")
            res["ok"] = False
            continue
        try:
            files, recorded = dict(manifest["files"]), dict(manifest["inputs"])
            dict(recorded["config"])
        except (KeyError, TypeError, ValueError) as exc:
            res["stale"].append(f"{json_path}: written by an older build (no {exc}); `models build` rebuilds it")
            res["ok"] = False
            continue
        res["files"] = len(files)
        res["corrupt"] = [p for name, entry in sorted(files.items()) if (p := file_problem(json_path.parent / name, entry))]
        if inputs_now is None:
            res["unchecked"].append("inputs not re-derived here: the build tools (edge_assistant.modelbuild) "
                                    "are not installed")
        else:
            try:
                res["stale"] = input_changes(recorded, inputs_now(recorded))
            except ConfigError as exc:  # e.g. the build extra's word lists are not installed
                res["unchecked"].append(f"inputs not re-derived here: {exc}")
            except (KeyError, TypeError, ValueError) as exc:
                res["stale"].append(f"{json_path}: written by an older build (no {exc}); `models build` rebuilds it")
        res["ok"] = not res["corrupt"] and not res["stale"]
    return out
