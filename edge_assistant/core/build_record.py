"""What a model build was made from, and the checks that a model cache still matches it.

Every build that writes into the model cache records, in its manifest, each file it wrote (size and
SHA-256) and the inputs it was built from (source files' SHA-256, package versions, recipe revisions,
seeds). ``edge-assistant models verify`` recomputes both: a file that changed is *corrupt*, an input
that changed makes the build *stale*.

Reproducibility: builds are seeded and run with fixed thread counts (onnxruntime and BLAS one thread
each while features are computed and heads trained), and read files in sorted order, so the same inputs
give the same files on CPUs that run the same numeric kernels. OpenBLAS and onnxruntime's MLAS pick
their kernels by CPU (AVX2, AVX-512, VNNI, ...); other kernels round differently in the last bits, and a
trained file then hashes differently although it is an equally honest build. :func:`environment` records
what decides the kernels, so that a manifest says on which machines its hashes are expected to repeat.
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

#: The CPU features that change which float kernels OpenBLAS and onnxruntime run.
KERNEL_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile",
                "asimd", "sve")

BIT_EXACT_SCOPE = ("bit-exact for the same inputs on CPUs with the same kernel flags and BLAS core; "
                   "elsewhere the files differ in float rounding only (see 'environment')")


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 of a whole file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def file_entry(path: str | Path) -> dict[str, Any]:
    """``{"bytes": ..., "sha256": ...}`` of one built file."""
    p = Path(path)
    return {"bytes": p.stat().st_size, "sha256": sha256_file(p)}


def file_problem(path: Path, entry: Mapping[str, Any]) -> str | None:
    """Why ``path`` does not match its recorded entry, or None when it does."""
    if not path.is_file():
        return f"{path}: missing"
    size = path.stat().st_size
    if "bytes" in entry and size != entry["bytes"]:
        return f"{path}: {size} bytes, recorded {entry['bytes']} (corrupt or truncated)"
    digest = sha256_file(path)
    if digest != entry.get("sha256"):
        return f"{path}: SHA-256 {digest[:16]}... differs from the recorded {str(entry.get('sha256'))[:16]}..."
    return None


def input_changes(recorded: Mapping[str, Any], current: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The keys (dotted) whose values differ between two input records."""
    out = []
    for key in sorted(set(recorded) | set(current)):
        a, b = recorded.get(key), current.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(input_changes(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: built from {a!r}, now {b!r}")
    return out


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of Python distributions ("not installed" for missing ones)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _cpu() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "CPU part") and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    return model, [f for f in KERNEL_FLAGS if f in flags]


def blas_info() -> list[dict[str, Any]]:
    """The BLAS libraries numpy runs (via threadpoolctl when installed): API, core type, threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    import numpy  # noqa: F401  (loads numpy's BLAS so that it is listed)

    return [{k: d.get(k) for k in ("internal_api", "architecture", "version", "num_threads")}
            for d in threadpool_info() if d.get("user_api") == "blas"]


def environment() -> dict[str, Any]:
    """What decides the float kernels of a build (recorded, not compared: see the module docstring)."""
    model, flags = _cpu()
    return {
        "machine": platform.machine(),
        "cpu": model,
        "kernel_flags": flags,
        "blas": [{k: v for k, v in b.items() if k != "num_threads"} for b in blas_info()],
        "python": platform.python_version(),
        **package_versions("numpy", "onnxruntime", "onnx"),
        "reproducibility": BIT_EXACT_SCOPE,
    }


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run numpy's BLAS on one thread inside the block (fixed thread count: fixed summation order)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # then the BLAS keeps its default; environment() shows no BLAS entry either
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
