"""Dependencies point one way (see STYLE.md): a package may import only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "edge_assistant"

#: package -> the internal packages it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "_native": {"core"},
    "audio": {"core", "_native"},
    "wakeword": {"core", "audio"},
    "vad": {"core", "audio"},
    "asr": {"core", "audio", "wakeword"},  # asr's model build also quantizes the wake embedding
    "intents": {"core"},
    "vehicle": {"core"},
    "gnss": {"core"},
    "diagnostics": {"core", "vehicle"},  # reads recorded sessions through vehicle.logs
    "agents": {"core", "intents", "vehicle", "diagnostics", "gnss"},
    "pipeline": {"core", "audio", "wakeword", "vad", "asr", "intents", "vehicle", "diagnostics", "gnss", "agents"},
    # the composition root: builds every stage and producer from the device configuration
    "app": {"core", "audio", "wakeword", "vad", "asr", "intents", "vehicle", "diagnostics", "gnss", "agents",
            "pipeline", "uplink"},
    "bench": {"core", "_native", "audio", "wakeword", "vad", "asr", "intents", "vehicle", "diagnostics", "agents",
              "pipeline", "app"},
    "update": {"core"},  # signed bundles, A/B slots, sd_notify
    "uplink": {"core"},  # fleet MQTT uplink: schema, disk queue, publisher
    "cli": set(),  # the top: may import anything
}


def _internal_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "edge_assistant" and len(parts) > 1:
                found.add(parts[1])
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if p.parent != PKG)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_down(path: Path) -> None:
    layer = path.relative_to(PKG).parts[0]
    assert layer in ALLOWED, f"{layer}/ is not in the layer table of this test; add it with its allowed imports"
    if layer == "cli":
        return
    bad = {m for m in _internal_imports(path) if m != layer and m not in ALLOWED[layer] and m != "__init__"}
    assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}, which {layer}/ must not depend on"
