"""Dependencies point one way (see STYLE.md): a package may import only the layers below it; and the build
tools (``modelbuild``, left out of the device wheel) are imported by nothing that runs on the device."""

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
    "asr": {"core", "audio"},
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
    "uplink": {"core"},  # fleet MQTT uplink: schema, disk queue, publisher
    "cli": set(),  # the top: may import anything (modelbuild only as the rules below allow)
    # build time only: makes the model files the run-time packages load; not in the device wheel
    "modelbuild": {"core", "_native", "audio", "wakeword", "vad", "asr", "intents"},
}

BUILD = "modelbuild"
#: The developer commands that run the build tools; they import them inside run(), never at module level.
BUILD_CLI = {"models_build.py", "models_adapt.py", "models_quantize.py", "models_train_wakeword.py",
             "models_verify.py", "bench_latency.py"}


def _imported_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level:
        raise AssertionError(f"line {node.lineno}: relative import; the layer rules need absolute imports")
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return []


def _internal_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        for name in _imported_names(node)[:1] if isinstance(node, ast.ImportFrom) else _imported_names(node):
            parts = name.split(".")
            if parts[0] == "edge_assistant" and len(parts) > 1:
                found.add(parts[1])
    return found


def _build_imports(path: Path) -> tuple[list[int], list[int]]:
    """Lines importing the build package: (at module level, inside a function)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    in_function: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            in_function.update(id(n) for n in ast.walk(fn))
    top: list[int] = []
    inner: list[int] = []
    for node in ast.walk(tree):
        if any(n == f"edge_assistant.{BUILD}" or n.startswith(f"edge_assistant.{BUILD}.") for n in _imported_names(node)):
            (inner if id(node) in in_function else top).append(node.lineno)
    return top, inner


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


@pytest.mark.parametrize("path", [p for p in _modules() if p.relative_to(PKG).parts[0] != BUILD] + [PKG / "__init__.py"],
                         ids=lambda p: str(p.relative_to(PKG)))
def test_nothing_on_the_device_imports_the_build_tools(path: Path) -> None:
    """The device wheel leaves out edge_assistant/modelbuild: run-time code must never import it, and the
    developer commands only lazily (inside run), so --help and every other command work without it."""
    top, inner = _build_imports(path)
    rel = path.relative_to(PKG)
    assert not top, f"{rel} imports edge_assistant.{BUILD} at module level (lines {top}); it is not on the device"
    allowed = rel.parts[0] == "cli" and rel.name in BUILD_CLI
    assert allowed or not inner, (f"{rel} imports edge_assistant.{BUILD} (lines {inner}); only the developer "
                                  f"commands {sorted(BUILD_CLI)} may, after cli._build_tools.require_build_tools")


def test_the_scan_sees_build_imports(tmp_path: Path) -> None:
    """The rule above is only as good as its scan: every import form is found, at its level."""
    src = tmp_path / "m.py"
    src.write_text("import edge_assistant.modelbuild\nfrom edge_assistant import modelbuild\n"
                   "def f():\n    from edge_assistant.modelbuild.wakeword import adapt\n"
                   "    import edge_assistant.modelbuild.asr.whisper as w\n"
                   "from edge_assistant.wakeword import model_cache\n")
    assert _build_imports(src) == ([1, 2], [4, 5])
