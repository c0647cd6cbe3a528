"""cffi builder for the C audio front end (build time only; not shipped).

Out-of-line API mode: the generated extension includes the real header, so the C compiler checks
every declaration in ``frontend_cdef.h`` against ``include/ea/frontend.h``.
"""

from __future__ import annotations

import glob
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ffibuilder = FFI()
with open(os.path.join(HERE, "frontend_cdef.h"), encoding="utf-8") as f:
    ffibuilder.cdef(f.read())

# setuptools wants source paths relative to the project root (where setup.py is).
_sources = sorted(os.path.relpath(p, ROOT).replace(os.sep, "/") for p in glob.glob(os.path.join(HERE, "src", "*.c")))
ffibuilder.set_source(
    "edge_assistant._native._frontend",
    '#include "ea/frontend.h"',
    sources=_sources,
    include_dirs=["native/include"],
    extra_compile_args=["-std=c11", "-O3", "-fno-math-errno", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
