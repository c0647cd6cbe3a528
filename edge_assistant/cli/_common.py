"""Helpers shared by the subcommands: JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def write_json(data: Any, path: str | None) -> None:
    """Write ``data`` as indented JSON to ``path`` (``-`` for stdout); nothing when ``path`` is None."""
    if path is None:
        return
    text = json.dumps(data, indent=2, default=_default)
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")


def _default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
