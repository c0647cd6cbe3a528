"""The developer commands' gate to the build tools (:mod:`edge_assistant.modelbuild`).

The device image leaves the build tools out, so ``models build|adapt|quantize|train-wakeword`` there stop
with one clear message instead of an ImportError traceback. Command modules import the build package only
inside ``run`` (after :func:`require_build_tools`), never at module level: ``--help`` and every other
command work without it.
"""

from __future__ import annotations

import importlib.util

from edge_assistant.core.errors import EdgeAssistantError

BUILD_PACKAGE = "edge_assistant.modelbuild"


def build_tools_installed() -> bool:
    """True when the build package is importable here (a development install, not the device)."""
    return importlib.util.find_spec(BUILD_PACKAGE) is not None


def require_build_tools(command: str) -> None:
    """Raise :class:`EdgeAssistantError` naming what is missing when ``command`` cannot run here."""
    if not build_tools_installed():
        raise EdgeAssistantError(
            f"`edge-assistant {command}` needs the build tools ({BUILD_PACKAGE}), which are not installed here: "
            "the device image carries the built models only. Build on a development machine "
            "(pip install -e '.[build]') and copy the model cache over.")
