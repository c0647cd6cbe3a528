"""Only here because setuptools reads ``cffi_modules`` from setup(), not from pyproject.toml.

cffi compiles native/ into ``edge_assistant/_native/_frontend*.so`` at build time (API mode).
"""

from setuptools import setup

setup(cffi_modules=["native/build_frontend.py:ffibuilder"])
