"""Only here because setuptools reads ``cffi_modules`` from setup(), not from pyproject.toml, and because
the device wheel leaves out a package.

cffi compiles native/ into ``edge_assistant/_native/_frontend*.so`` at build time (API mode).

A file ``WHEEL_FLAVOUR`` containing ``runtime`` beside this file makes the device wheel: the same
distribution without the build tools (``edge_assistant.modelbuild``: Whisper conversion, quantization,
head training), which only make model files and must not reach the device. firmware/image/build-image.sh
writes it into the source snapshot it builds from (a file, not an environment variable, because that
build may run in a chroot with a cleared environment). Without it: everything, for development machines
(``pip install -e '.[build]'``).
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

#: Subpackages the device wheel leaves out.
BUILD_ONLY = ["edge_assistant.modelbuild", "edge_assistant.modelbuild.*"]

flavour_file = Path(__file__).resolve().with_name("WHEEL_FLAVOUR")
flavour = flavour_file.read_text(encoding="utf-8").strip() if flavour_file.is_file() else ""
if flavour not in ("", "runtime"):
    raise SystemExit(f"{flavour_file}: {flavour!r}; expected 'runtime' (the device wheel) or no file (everything)")

setup(
    cffi_modules=["native/build_frontend.py:ffibuilder"],
    # namespace discovery, as pyproject's packages.find does: data folders without __init__.py are included
    packages=find_namespace_packages(include=["edge_assistant*"], exclude=BUILD_ONLY if flavour == "runtime" else []),
    # nor as package data of edge_assistant (include-package-data reads a manifest an earlier build may have left)
    exclude_package_data={"edge_assistant": ["modelbuild/**"]} if flavour == "runtime" else {},
)
